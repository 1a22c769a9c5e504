"""Reported URLs coming in: one at a time (CLI, API) or a CSV file, each with a case.

A CSV file has a header row naming at least ``url`` (and ``case`` unless one case is
given for the whole file); other columns are ignored. Rows are checked first, all of
them: a bad URL or case stops the import with its row number and nothing is added
(``--skip-invalid`` adds the good rows and lists the others). Limits: ``MAX_ROWS`` rows,
a field at most 128 KiB (Python's csv limit), the file read as UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from vigil.banks.text import FieldError, label
from vigil.takedown import repo
from vigil.takedown.repo import UrlRow
from vigil.takedown.urls import UrlError, host_of, normalise, registrable_domain, url_key

MAX_ROWS = 100_000


class IntakeError(ValueError):
    """A reported URL or file that cannot be taken; the message names the row or field."""


@dataclass(frozen=True, slots=True)
class Reported:
    url: str
    case: str


def check_case(case: str) -> str:
    """A case reference: one line of visible text, 1-200 characters."""
    try:
        return label(case, "case", 200)
    except FieldError as exc:
        raise IntakeError(str(exc)) from None


def check(url: str, case: str) -> Reported:
    """A reported URL and its case, checked and normalised (``IntakeError`` if bad)."""
    try:
        norm = normalise(url)
    except UrlError as exc:
        raise IntakeError(f"url: {exc}") from None
    return Reported(norm, check_case(case))


def add(engine: Engine, reported: Reported, by: str | None, now: datetime,
        ) -> tuple[UrlRow, bool]:
    """Store a checked URL, due for a check now; (row, False) if it was already known."""
    host = host_of(reported.url)
    return repo.add_url(engine, reported.url, url_key(reported.url), host,
                        registrable_domain(host), reported.case, by, now)


def read_csv(path: Path, case: str | None = None, skip_invalid: bool = False,
             ) -> tuple[list[Reported], list[str]]:
    """The rows of a CSV file of URLs, and the problems of the rows skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise IntakeError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise IntakeError(f"{path}: {exc.strerror or exc}") from None
    return parse_csv(text, str(path), case, skip_invalid)


def parse_csv(text: str, name: str, case: str | None = None, skip_invalid: bool = False,
              ) -> tuple[list[Reported], list[str]]:
    if case is not None:
        case = check_case(case)
    reader = csv.DictReader(io.StringIO(text))
    try:
        fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise IntakeError(f"{name}: {exc}") from None
    if "url" not in fields:
        raise IntakeError(f"{name}: the header row must name a 'url' column")
    if case is None and "case" not in fields:
        raise IntakeError(f"{name}: the header row must name a 'case' column, or give "
                          "one case for the whole file (--case)")
    reader.fieldnames = fields
    out: list[Reported] = []
    skipped: list[str] = []
    try:
        for i, row in enumerate(reader, start=2):
            if i - 1 > MAX_ROWS:
                raise IntakeError(f"{name}: more than {MAX_ROWS:,} rows")
            try:
                out.append(check(row.get("url") or "", case or row.get("case") or ""))
            except IntakeError as exc:
                problem = f"{name}: row {i}: {exc}"
                if not skip_invalid:
                    raise IntakeError(problem) from None
                skipped.append(problem)
    except csv.Error as exc:
        raise IntakeError(f"{name}: row {reader.line_num}: {exc}") from None
    return out, skipped


def add_all(engine: Engine, rows: Iterable[Reported], by: str | None, now: datetime,
            ) -> tuple[int, int]:
    """Store rows; (added, already known)."""
    added = known = 0
    for r in rows:
        if add(engine, r, by, now)[1]:
            added += 1
        else:
            known += 1
    return added, known

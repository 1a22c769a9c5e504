"""Decisions out of the review: entries in a chosen bank, and an updated ``case.vics.json``.

Bank entries: every item decided with a category becomes the same entries ``vigil bank
add`` makes of a file (``vigil.banks.files.records_of_file``: MD5, SHA-1, SHA-256, PDQ for
an image, vPDQ for a video, one source id), labelled with the decided category, its
series (if the reviewer put it in one) and the tag ``reviewed``. The signals come from
``scan.db``; the evidence is not read again. Exporting again is harmless: unchanged
entries stay unchanged, and a changed decision updates their labels.

Items decided *not relevant* are not banked: a bank entry says what something is, and
"not relevant to this case" is not a category. They appear in the VICS case as
non-pertinent (Project VIC 5).

The VICS case is rewritten whole (``vigil.triage.exports.write_vics_case``) with the
decisions laid over the matches: ``Category`` mapped to Project VIC, ``Series``, and a
comment naming the scheme and value decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.banks import Banks, EntryRecord, Labels
from vigil.banks.files import records_of_file
from vigil.review.store import Decision
from vigil.schemes import map_category
from vigil.triage.exports import write_vics_case
from vigil.triage.rows import signals_of
from vigil.triage.scandb import ScanDB

#: the tag every entry a review made carries
REVIEW_TAG = "reviewed"


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export did: entries added/updated/unchanged, items banked, the case file."""

    bank: str
    items: int
    added: int
    updated: int
    unchanged: int
    not_relevant: int
    last_seq: int
    case_file: Path


def _records(db: ScanDB, decisions: dict[str, Decision], series: dict[str, str]
             ) -> list[EntryRecord]:
    wanted = {s for s, d in decisions.items() if d.kind == "category"}
    recs: list[EntryRecord] = []
    for chunk in db.iter_items():
        for it in chunk:
            if it.sha256 not in wanted:
                continue
            d = decisions[it.sha256]
            assert d.scheme is not None and d.category is not None
            labels = Labels(category=(d.scheme, d.category), series=series.get(it.sha256),
                            tags=(REVIEW_TAG,))
            recs.extend(records_of_file(signals_of(it), labels))
    return recs


def vics_overrides(decisions: dict[str, Decision], series: dict[str, str]
                   ) -> dict[str, dict[str, Any]]:
    """The Media fields a review sets in the VICS case, per item."""
    out: dict[str, dict[str, Any]] = {}
    for sha, d in decisions.items():
        fields: dict[str, Any] = {"IsPrecategorized": "false"}
        if d.kind == "not_relevant":
            fields["Category"] = 5
            fields["Comments"] = "Vigil review: not relevant"
        else:
            assert d.scheme is not None and d.category is not None
            us = map_category(d.scheme, d.category, to="us")
            fields["Category"] = int(us) if us is not None else 0
            fields["Comments"] = f"Vigil review: {d.scheme}:{d.category}"
        if sha in series:
            fields["Series"] = series[sha]
        out[sha] = fields
    return out


def export_decisions(db_path: Path, decisions: dict[str, Decision], series: dict[str, str],
                     banks: Banks, bank: str) -> ExportResult:
    """Bank the decided items into ``bank`` (one transaction) and rewrite the case file
    next to ``scan.db``. ``BankError`` for an unknown or read-only bank."""
    banks.require(bank)  # unknown bank: BankError naming the banks there are
    db = ScanDB(db_path)
    try:
        recs = _records(db, decisions, series)
        result = banks.apply(bank, recs, source="review") if recs else None
        case = write_vics_case(db, db_path.parent / "case.vics.json",
                               overrides=vics_overrides(decisions, series))
    finally:
        db.close()
    items = sum(1 for d in decisions.values() if d.kind == "category")
    return ExportResult(bank, items, result.added if result else 0,
                        result.updated if result else 0, result.unchanged if result else 0,
                        sum(1 for d in decisions.values() if d.kind == "not_relevant"),
                        banks.last_seq(bank), case)

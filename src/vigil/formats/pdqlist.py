"""[pdq-list] Plain PDQ lists as python-threatexchange and the PDQ tools write them.

Accepted (reader): one ``hex[,quality]`` per line: 64 hex digits (any case), optionally a
comma (spaces around it allowed) and a quality 0..100. Blank lines and lines starting with
``#`` are skipped; surrounding whitespace is ignored; UTF-8 with or without BOM. Every
record is ``pdq``, ``op="add"``, without labels. Locations are ``line N``.

Writer: ``hex,quality`` per line, or just ``hex`` when quality is None. The format has no
labels and no deletions: labels are not written, and a ``remove`` record is an error
rather than silently becoming an addition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from vigil.banks.entry import EntryRecord
from vigil.formats._common import (
    FormatError,
    Lines,
    OnError,
    Reporter,
    Sink,
    Source,
    open_text,
    text_sink,
)
from vigil.formats.limits import Limits, setting

NAME = "pdq-list"


def read(source: Source, *, on_error: OnError = None, name: str | None = None,
         limits: Limits | None = None) -> Iterator[EntryRecord]:
    """Stream a PDQ list, one EntryRecord per hash line."""
    lim = limits or Limits.from_env()
    with open_text(source, name) as (f, fname):
        report = Reporter(fname, on_error, lim)
        lines = Lines(f, fname, lim)
        n = 0
        try:
            for raw in lines:
                lines.record_done()
                lineno = lines.lineno
                line = raw.strip().lstrip("\ufeff").strip()
                if not line or line.startswith("#"):
                    continue
                n += 1
                if n > lim.max_records:
                    raise FormatError(fname, f"line {lineno}", None,
                                      f"more than {lim.max_records:,} records "
                                      f"({setting('max_records')})")
                hex_part, sep, q_part = line.partition(",")
                quality = None
                if sep:
                    q = q_part.strip()
                    if not q.isdigit() or not 0 <= int(q) <= 100:
                        report(FormatError(fname, f"line {lineno}", "quality",
                                           "must be an integer 0..100"))
                        continue
                    quality = int(q)
                try:
                    rec = EntryRecord("pdq", hex_part.strip(), quality=quality)
                except ValueError as exc:
                    report(FormatError(fname, f"line {lineno}", "pdq", str(exc)))
                    continue
                yield rec
        except UnicodeDecodeError:
            raise FormatError(fname, f"after line {lines.lineno}", None,
                              "not valid UTF-8") from None


def write(records: Iterable[EntryRecord], sink: Sink) -> int:
    """Write ``hex[,quality]`` lines; only PDQ additions can be written."""
    n = 0
    with text_sink(sink) as f:
        for n, rec in enumerate(records, 1):
            if rec.signal_type != "pdq":
                raise ValueError(f"record {n}: a PDQ list holds only pdq, not {rec.signal_type}")
            if rec.op != "add":
                raise ValueError(f"record {n}: a PDQ list cannot express a removal")
            f.write(rec.value if rec.quality is None else f"{rec.value},{rec.quality}")
            f.write("\n")
    return n

"""Interchange formats: readers and writers between files and ``EntryRecord`` (``vigil.banks``).

Every format converts to and from EntryRecord only, never format to format, so N formats
need N converters. Each format module has the same two functions:

``read(source, *, on_error=None, name=None, limits=None) -> Iterator[EntryRecord]``
    Streams (memory stays flat however large the file). ``source`` is a path or a binary
    file. A malformed record raises :class:`FormatError` when ``on_error`` is None (the
    caller rolls the whole import back); otherwise ``on_error(err)`` is called and reading
    goes on with the next record, so the caller can report exactly which records it
    skipped. A record that yields several signals (a VICS Media with MD5 and SHA-1) is
    skipped whole. Damage no reader can step over (a JSON syntax error, invalid UTF-8)
    always raises, after the records before it were yielded.

    ``limits`` (:class:`vigil.formats.limits.Limits`; default: from the environment)
    bound each record's nesting, bytes and values, the records of a file and the records
    that may be skipped. Crossing one always raises, naming the record and the setting
    that raises the limit: a file that does is not a hash list, and nothing past the
    limit is ever built in memory.

``write(records, sink) -> int``
    Writes to a path, a text or a binary file (left open) and returns the number of
    records written. Records that came from one source record (consecutive, same
    ``source_id``) are written back as one record where the format groups hashes.

Errors name file, location, field and reason, never hash values: hash lists are sensitive.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from types import ModuleType

from vigil.banks.entry import EntryRecord
from vigil.formats import csvlist, entries, ncmec, pdqlist, stopncii, vics, vpdqtext
from vigil.formats._common import BOM, FormatError, OnError
from vigil.formats.limits import Limits

#: Format name (as ``vigil bank import --format`` takes it) -> module with read/write.
FORMATS: dict[str, ModuleType] = {
    "csv": csvlist,
    "vics": vics,
    "ncmec": ncmec,
    "stopncii": stopncii,
    "pdq-list": pdqlist,
    "vpdq": vpdqtext,
    "vigil": entries,
}

_KEYS = {
    "vics": ("odata.metadata", "@odata.context", "mediaid", "media", "photodna",
             "alternativehashes", "caseid"),
    "stopncii": ("hashstatus", "signaltype", "hashvalue", "casenumbers", "hashid"),
    "ncmec": ("fingerprints", "classification"),
    "vigil": (entries.HEADER_KEY,),
}
_PDQ_LINE = re.compile(r"^[0-9a-fA-F]{64}\s*(,\s*\d{1,3})?$")
_VPDQ_LINE = re.compile(r"^\d+\s*,\s*\d{1,3}\s*,\s*[0-9a-fA-F]{64}(\s*,\s*[\d.]+)?$")


def detect_format(path: str | os.PathLike[str]) -> str:
    """The registry name of the format of the file at ``path``, from its content.

    Looks at the first 64 KiB: XML -> ncmec; JSON -> whichever format's characteristic
    keys appear first (``vigil_entries``, the header of Vigil's own list, among them);
    text -> csv if the first line is a header naming ``signal_type``, pdq-list if the
    first data line is 64 hex digits. Raises FormatError otherwise.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise FormatError(name, "file", None, f"cannot open: {exc.strerror}") from exc
    if head.startswith(BOM):
        head = head[3:]
    text = head.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return "ncmec"
    if stripped[:1] in ("[", "{"):
        low = stripped.lower()
        best: tuple[int, str] | None = None
        for fmt, keys in _KEYS.items():
            for k in keys:
                m = re.search(r'"' + re.escape(k) + r'"\s*:', low)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), fmt)
        if best is not None:
            return best[1]
        raise FormatError(name, "start of file", None,
                          "JSON, but not recognisably VICS, NCMEC or StopNCII")
    for line in stripped.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        cols = [c.strip().strip('"').lower() for c in s.split(",")]
        if "signal_type" in cols:
            return "csv"
        if _PDQ_LINE.match(s):
            return "pdq-list"
        if _VPDQ_LINE.match(s):
            return "vpdq"
        break
    raise FormatError(name, "start of file", None, "unrecognised format; give --format")


def read(path: str | os.PathLike[str], fmt: str | None = None, *, on_error: OnError = None,
         name: str | None = None, limits: Limits | None = None) -> Iterator[EntryRecord]:
    """Read ``path`` in format ``fmt``, or in the format :func:`detect_format` finds."""
    records: Iterator[EntryRecord] = get(fmt or detect_format(path)).read(
        path, on_error=on_error, name=name, limits=limits)
    return records


def get(name: str) -> ModuleType:
    """The format module registered as ``name``; ValueError listing the known names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


__all__ = ["FORMATS", "FormatError", "Limits", "detect_format", "get", "read"]

"""[vpdq] One video's vPDQ frame hashes, as Meta's vpdq writes them.

Accepted (reader): one ``frame,quality,pdq_hex,seconds`` line per sampled frame (the
older 3-field form and python-threatexchange's compact form are read too; see
``vigil.signals.vpdq.read_vpdq``). The whole file is ONE record: a ``vpdq`` entry whose
value is the SHA-256 of the canonical text and whose frames travel in ``extra["vpdq"]``.
The format has no labels. A malformed line makes the file's only record malformed.

Writer: the frames of one ``vpdq`` entry (a vPDQ file describes one video); an empty list
gives an empty file.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from vigil.banks.entry import EntryRecord
from vigil.formats._common import (
    FormatError,
    OnError,
    Reporter,
    Sink,
    Source,
    open_text,
    text_sink,
)
from vigil.formats.limits import Limits, setting
from vigil.signals.vpdq import VpdqFormatError, read_vpdq, vpdq_digest, write_vpdq

NAME = "vpdq"


def read(source: Source, *, on_error: OnError = None, name: str | None = None,
         limits: Limits | None = None) -> Iterator[EntryRecord]:
    """The file's single video as one ``vpdq`` EntryRecord."""
    lim = limits or Limits.from_env()
    with open_text(source, name) as (f, fname):
        try:
            text = f.read(lim.max_record_bytes + 1)
        except UnicodeDecodeError:
            raise FormatError(fname, "file", None, "not valid UTF-8") from None
    if len(text) > lim.max_record_bytes:
        raise FormatError(fname, "record 1", "frames",
                          f"more than {lim.max_record_bytes:,} characters for one video "
                          f"({setting('max_record_bytes')})")
    try:
        frames = read_vpdq(io.StringIO(text.lstrip("\ufeff")))
    except (VpdqFormatError, ValueError) as exc:
        Reporter(fname, on_error, lim)(
            FormatError(fname, "record 1", "frames", str(exc).split(":")[-1].strip()))
        return
    if not frames:
        return  # an empty file: no video (what writing an empty list gives)
    yield EntryRecord("vpdq", vpdq_digest(frames), extra={"vpdq": write_vpdq(frames)})


def write(records: Iterable[EntryRecord], sink: Sink) -> int:
    """Write the frames of the one ``vpdq`` entry in ``records``."""
    records = list(records)
    videos = [r for r in records if r.signal_type == "vpdq" and r.op == "add"]
    if len(videos) != len(records):
        raise ValueError("a vPDQ file holds only one video's frames (vpdq additions)")
    if len(videos) > 1:
        raise ValueError(f"a vPDQ file holds one video; {len(videos)} given (export one "
                         "entry, or use csv/vics for many)")
    if not videos:
        with text_sink(sink):
            return 0
    text = videos[0].extra.get("vpdq")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the vpdq entry carries no frames")
    with text_sink(sink) as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return 1

"""Plumbing shared by the format modules: errors, opening sources and sinks, JSON streaming.

Everything here exists so that each format module reads like a description of its format:
the error policy, BOM handling, streaming and grouping are written (and tested) once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, BinaryIO, TextIO, cast

from vigil.banks.entry import VICTIM_STATUSES, EntryRecord, Labels, VictimStatus

# A field-level problem inside one record, which the reader turns into a FormatError; the
# same class as the door's (``Labels`` and ``EntryRecord`` raise it), so a label refused
# there is reported with its record's location like any other bad field.
from vigil.banks.text import FieldError as FieldError
from vigil.banks.travel import without_derived
from vigil.formats.limits import Limits, setting
from vigil.schemes import check_category, parse_category

Source = str | os.PathLike[str] | BinaryIO | IO[bytes]
Sink = str | os.PathLike[str] | BinaryIO | TextIO | IO[Any]
OnError = Callable[["FormatError"], None] | None

BOM = b"\xef\xbb\xbf"
#: How far a reader may look ahead (and buffer) to decide a file's shape before streaming.
SNIFF_LIMIT = 8 << 20
CHUNK = 1 << 16


class FormatError(ValueError):
    """A record (or the whole file) does not follow its format.

    It names the file, where in it (``line 12``, ``record 17 (MediaID 4411)``), the field
    and the reason, but never the offending value: hash lists are sensitive, and these
    messages end up in logs and import reports.
    """

    def __init__(self, file: str, location: str, field: str | None, reason: str) -> None:
        self.file = file
        self.location = location
        self.field = field
        self.reason = reason
        parts = [file, location] + ([field] if field else []) + [reason]
        super().__init__(": ".join(parts))

    def __reduce__(self) -> tuple[Any, ...]:  # keep picklable across processes
        return (type(self), (self.file, self.location, self.field, self.reason))


class Reporter:
    """The one error policy: raise (the caller rolls back) or hand the error to
    ``on_error`` and go on — up to ``max_skipped`` errors, after which the file is more
    likely in another format than a list with a few bad records, and reading stops."""

    def __init__(self, fname: str, on_error: OnError, limits: Limits) -> None:
        self.fname, self.on_error, self.max_skipped = fname, on_error, limits.max_skipped
        self.skipped = 0

    def __call__(self, err: FormatError) -> None:
        if self.on_error is None:
            raise err
        self.skipped += 1
        if self.skipped > self.max_skipped:
            raise FormatError(self.fname, err.location, None,
                              f"more than {self.max_skipped:,} malformed records "
                              f"({setting('max_skipped')}); is this the right format?")
        self.on_error(err)


# --------------------------------------------------------------------------- sources


def source_name(source: object, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    n = getattr(source, "name", None)
    return n if isinstance(n, str) else "<stream>"


class Rewindable(io.RawIOBase):
    """A binary reader that can replay what it read while recording, then streams.

    Readers look at the start of a file (BOM, top-level shape) before choosing how to
    stream it. Recording keeps that look-ahead replayable on pipes and sockets too; once
    recording stops the buffer is dropped, so memory stays flat for the rest of the file.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._buf = bytearray()
        self._pos = 0
        self._start = 0
        self._recording = True

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = len(b)
        if self._pos < len(self._buf):
            chunk = self._buf[self._pos:self._pos + n]
            self._pos += len(chunk)
            b[:len(chunk)] = chunk
            return len(chunk)
        if not self._recording and self._buf:
            self._buf = bytearray()
            self._pos = 0
        data = self._raw.read(n)
        if not data:
            return 0
        if self._recording:
            self._buf += data
            self._pos += len(data)
        b[:len(data)] = data
        return len(data)

    @property
    def recorded(self) -> int:
        return len(self._buf)

    def rewind(self) -> None:
        """Go back to the start (after any BOM); only while recording."""
        if not self._recording:
            raise RuntimeError("cannot rewind after recording stopped")
        self._pos = self._start

    def stream(self) -> None:
        """Rewind and stop recording: from here on the file is read once, in chunks."""
        self.rewind()
        self._recording = False

    def head(self, n: int) -> bytes:
        """Up to ``n`` bytes from the start, without consuming them."""
        self.rewind()
        out = bytearray()
        while len(out) < n:
            chunk = self.read(min(CHUNK, n - len(out)))
            if not chunk:
                break
            out += chunk
        self.rewind()
        return bytes(out)

    def skip_bom(self) -> None:
        if self.head(3) == BOM:
            self._start = 3
        self.rewind()

    def first_line(self, limit: int = 1 << 20) -> bytes:
        """The first line (without consuming it), or ``limit`` bytes if no newline before."""
        self.rewind()
        out = bytearray()
        while len(out) < limit:
            chunk = self.read(min(CHUNK, limit - len(out)))
            if not chunk:
                break
            i = chunk.find(b"\n")
            if i >= 0:
                out += chunk[:i]
                break
            out += chunk
        self.rewind()
        return bytes(out)


@contextlib.contextmanager
def open_binary(source: Source, name: str | None = None) -> Iterator[tuple[Rewindable, str]]:
    """Open ``source`` (path or binary file) as a BOM-skipping :class:`Rewindable`.

    Files we open we close; file objects the caller passed stay open.
    """
    fname = source_name(source, name)
    if isinstance(source, str | os.PathLike):
        try:
            raw: IO[bytes] = open(source, "rb", buffering=CHUNK)  # noqa: SIM115
        except OSError as exc:
            raise FormatError(fname, "file", None, f"cannot open: {exc.strerror}") from exc
        close = True
    else:
        raw = source
        close = False
    try:
        r = Rewindable(raw)
        r.skip_bom()
        yield r, fname
    finally:
        if close:
            raw.close()


@contextlib.contextmanager
def open_text(source: Source | TextIO, name: str | None = None) -> Iterator[tuple[TextIO, str]]:
    """Open ``source`` as UTF-8 text with universal newlines handled by the caller (csv)."""
    fname = source_name(source, name)
    if isinstance(source, str | os.PathLike):
        try:
            f = open(source, encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as exc:
            raise FormatError(fname, "file", None, f"cannot open: {exc.strerror}") from exc
        with f:
            yield f, fname
    elif isinstance(source, io.TextIOBase):
        yield cast(TextIO, source), fname
    else:
        # Via Rewindable: anything with read() works (progress wrappers, pipes), and
        # closing our wrappers never closes the caller's file.
        r = Rewindable(cast(IO[bytes], source))
        r.stream()
        yield io.TextIOWrapper(io.BufferedReader(r, CHUNK), encoding="utf-8-sig",
                               newline=""), fname


class Lines:
    """The lines of a text file for a line-based reader, within the limits: no line, and
    no record of several lines (a CSV row with quoted newlines), longer than
    ``max_record_bytes`` characters or holding more than ``max_record_values`` commas
    (the fields of a row are counted before the csv module splits them: it would build
    them all first). The reader calls :meth:`record_done` after each record."""

    def __init__(self, f: TextIO, fname: str, limits: Limits) -> None:
        self.f, self.fname, self.lim = f, fname, limits
        self.lineno = 0
        self._chars = self._commas = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        lim = self.lim
        line = self.f.readline(lim.max_record_bytes + 1)
        if not line:
            raise StopIteration
        self.lineno += 1
        self._chars += len(line)
        self._commas += line.count(",")
        if self._chars > lim.max_record_bytes:
            raise FormatError(self.fname, f"line {self.lineno}", None,
                              f"a line or row longer than {lim.max_record_bytes:,} characters "
                              f"({setting('max_record_bytes')})")
        if self._commas > lim.max_record_values:
            raise FormatError(self.fname, f"line {self.lineno}", None,
                              f"more than {lim.max_record_values:,} fields in one row "
                              f"({setting('max_record_values')})")
        return line

    def record_done(self) -> None:
        self._chars = self._commas = 0


@contextlib.contextmanager
def text_sink(sink: Sink) -> Iterator[TextIO]:
    """A text view of ``sink`` (path, text or binary file); the caller's file stays open."""
    if isinstance(sink, str | os.PathLike):
        with open(sink, "w", encoding="utf-8", newline="") as f:
            yield f
    elif isinstance(sink, io.TextIOBase):
        yield cast(TextIO, sink)
        sink.flush()
    else:
        w = io.TextIOWrapper(cast(BinaryIO, sink), encoding="utf-8", newline="")
        try:
            yield w
        finally:
            w.flush()
            w.detach()


# --------------------------------------------------------------------------- writing


def dumps_json(obj: Any) -> str:
    """One record as JSON text for a writer: UTF-8 as it is, unless it holds what UTF-8
    cannot carry (a lone surrogate, e.g. in a field a foreign file gave as ``\\ud800``);
    then ASCII with ``\\u`` escapes, which every JSON reader turns back into the same
    text. Without this one record would stop the whole file mid-way."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(obj, default=str)
    return text


# --------------------------------------------------------------------------- values


def parse_bool(value: object) -> bool | None:
    """JSON true/false, "true"/"false" in any case, 1/0, "yes"/"no"; None/"" -> None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value in (0, 1):
            return bool(value)
    elif isinstance(value, str):
        v = value.strip().lower()
        if v == "":
            return None
        if v in ("true", "1", "yes", "y", "t"):
            return True
        if v in ("false", "0", "no", "n", "f"):
            return False
    raise ValueError("must be true or false")


def parse_int(value: object) -> int | None:
    """An integer given as a JSON number or a decimal string; None/"" -> None."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        v = value.strip()
        if v == "":
            return None
        try:
            return int(v)
        except ValueError:
            pass
    raise ValueError("must be an integer")


def text_or_none(value: object) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def ci(obj: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Keys folded to lower case -> (original key, value): formats differ in key case."""
    return {k.lower(): (k, v) for k, v in obj.items()}


# --------------------------------------------------------------------------- grouping


def groups(records: Iterable[EntryRecord]) -> Iterator[list[EntryRecord]]:
    """Consecutive records that came from one source record, for writers that regroup.

    Records group when they share a non-empty ``source_id`` and the same labels, op and
    extra (a source record has one set of those); anything else starts a new group, so
    no label is ever attached to a hash it was not given for. A picture's derived data
    is not compared: foreign formats leave it out (``vigil.banks.travel``).
    """
    group: list[EntryRecord] = []
    for rec in records:
        if group:
            g = group[0]
            if (rec.source_id is not None and rec.source_id == g.source_id
                    and rec.labels == g.labels and rec.op == g.op
                    and without_derived(rec.extra) == without_derived(g.extra)):
                group.append(rec)
                continue
            yield group
        group = [rec]
    if group:
        yield group


# --------------------------------------------------------------------------- label fields

#: Label fields Vigil adds to formats that have no place for them (NCMEC, StopNCII), so
#: that an export from Vigil and back loses nothing. Foreign files simply lack them.
EXT_FIELDS = ("category", "series", "tags", "victimstatus", "note", "quality")


def ext_labels(fields: dict[str, tuple[str, Any]],
               category: tuple[str, str] | None = None,
               tags: Iterable[str] = ()) -> tuple[Labels, int | None]:
    """Labels (and quality) from Vigil's extension fields; ValueError names the field."""
    def fail(key: str, reason: str) -> ValueError:
        return FieldError(fields.get(key, (key,))[0], reason)

    if category is None and "category" in fields:
        raw = text_or_none(fields["category"][1])
        if raw is not None:
            try:
                category = parse_category(raw)
            except ValueError as exc:
                raise fail("category", str(exc)) from None
    tag_list = list(tags)
    if "tags" in fields:
        t = fields["tags"][1]
        if isinstance(t, list):
            tag_list += [str(x) for x in t if x is not None]
        elif isinstance(t, str):
            tag_list += t.split(";")
        elif t is not None:
            raise fail("tags", "must be a list of strings")
    vs = text_or_none(fields.get("victimstatus", (None, None))[1]) or "unknown"
    if vs.lower() not in VICTIM_STATUSES:
        raise fail("victimstatus", f"must be one of {', '.join(VICTIM_STATUSES)}")
    try:
        quality = parse_int(fields.get("quality", (None, None))[1])
    except ValueError as exc:
        raise fail("quality", str(exc)) from None
    if quality is not None and not 0 <= quality <= 100:
        raise fail("quality", "must be 0..100")
    labels = Labels(category=category,
                    series=text_or_none(fields.get("series", (None, None))[1]),
                    victim_status=cast(VictimStatus, vs.lower()),
                    tags=tuple(tag_list),
                    note=text_or_none(fields.get("note", (None, None))[1]))
    return labels, quality


def ext_fields(labels: Labels, *, category: bool = True) -> dict[str, Any]:
    """The extension fields for ``labels`` (only those that carry information)."""
    out: dict[str, Any] = {}
    if category and labels.category is not None:
        out["category"] = f"{labels.category[0]}:{labels.category[1]}"
    if labels.series is not None:
        out["series"] = labels.series
    if labels.tags:
        out["tags"] = list(labels.tags)
    if labels.victim_status != "unknown":
        out["victimStatus"] = labels.victim_status
    if labels.note is not None:
        out["note"] = labels.note
    return out


def check_cat(scheme: str, value: str, field: str) -> tuple[str, str]:
    try:
        return check_category(scheme, value)
    except ValueError as exc:
        raise FieldError(field, str(exc)) from None

"""Hypothesis fuzzing of the parsers of outside data, in a subprocess under a memory cap.

``python -m tests.formats.fuzz TARGET EXAMPLES`` imports everything, then caps its own
address space (``RLIMIT_AS``) at what it uses plus ``HEADROOM`` and runs TARGET's
properties for EXAMPLES examples each. A parser that tries to build a hostile input in
memory meets ``MemoryError`` there instead of taking the machine down; any exception that
is not the parser's own clean refusal fails the property, and Hypothesis prints the
smallest input it found. :func:`run` is what the tests call.

Targets: ``readers`` (every format reader, on nested, wide, oversized and mutated files)
and ``feeds`` (a receiver's page parsing, chain verification and conversion to entries).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
HEADROOM = 1 << 30
MD5 = "0123456789abcdef" * 2
PDQ = "f0" * 32


def run(target: str, examples: int, timeout: float = 600) -> None:
    """Fuzz ``target`` in a capped subprocess; AssertionError with its output if it fails."""
    out = subprocess.run([sys.executable, "-m", "tests.formats.fuzz", target, str(examples)],
                         cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"fuzzing {target} failed ({out.returncode}):\n"
                             f"{out.stdout[-6000:]}\n{out.stderr[-6000:]}")


# ----------------------------------------------------------------------------- strategies

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=40) | st.sampled_from([MD5, PDQ, "A1", "true", "Active"]))
KEYS = st.sampled_from(["value", "Media", "MD5", "SHA1", "MediaID", "AlternativeHashes",
                        "HashName", "HashValue", "records", "deletions", "fingerprints", "md5",
                        "pdq", "id", "classification", "hashes", "signalType", "hashValue",
                        "hashStatus", "caseNumbers", "tags", "category", "x"]) | st.text(
    max_size=8)
json_values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=6) | st.dictionaries(KEYS, kids, max_size=6),
    max_leaves=40)


@st.composite
def hostile_json(draw: st.DrawFn) -> bytes:
    """A JSON-ish document: a sane skeleton around something nested, wide or long."""
    kind = draw(st.sampled_from(["deep", "deep-maps", "wide", "keys", "long", "plain"]))
    n = draw(st.integers(1, 300_000))
    if kind == "deep":
        inner = b"[" * n + (b"]" * n if draw(st.booleans()) else b"")
    elif kind == "deep-maps":
        inner = b'{"a":' * n + b"1" + b"}" * n
    elif kind == "wide":
        inner = b"[" + b"[]," * n + b"0]"
    elif kind == "keys":
        inner = b"{" + b",".join(b'"k%d":0' % i for i in range(min(n, 150_000))) + b"}"
    elif kind == "long":
        inner = b'"' + b"a" * (n * 30) + b'"'
    else:
        inner = json.dumps(draw(json_values)).encode()
    wrap = draw(st.sampled_from([
        b"%s", b'{"value":%s}', b'{"value":[{"MD5":"' + MD5.encode() + b'","x":%s}]}',
        b"[%s]", b'{"records":[%s]}', b'{"hashes":[{"signalType":"PDQ","hashValue":%s}]}',
        b'{"id":1,"fingerprints":{"md5":"' + MD5.encode() + b'"}}\n%s\n']))
    return wrap.replace(b"%s", inner)


@st.composite
def hostile_xml(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["deep", "wide", "text", "attr", "plain"]))
    n = draw(st.integers(1, 300_000))
    inner = {"deep": b"<a>" * n + (b"</a>" * n if draw(st.booleans()) else b""),
             "wide": b"<x/>" * n,
             "text": b"a" * (n * 30),
             "attr": b'<x a="' + b"1" * (n * 30) + b'"/>',
             "plain": b"<fingerprints><md5>" + MD5.encode() + b"</md5></fingerprints>"}[kind]
    return b"<records><record>" + inner + b"</record></records>"


@st.composite
def hostile_text(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 300_000))
    unit = draw(st.sampled_from([b"a", b"a,", b'"', b"\n", b'"a\n', PDQ.encode() + b"\n"]))
    head = draw(st.sampled_from([b"", b"signal_type,hash\n", b"signal_type,hash\nmd5,",
                                 b"1,100,"]))
    return head + unit * (n * (30 if len(unit) == 1 else 1))


def mutated(data: bytes, draw: st.DrawFn) -> bytes:
    """``data`` with a few bytes inserted, deleted or flipped."""
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["insert", "delete", "truncate", "flip"]))
        junk = draw(st.sampled_from([b"[", b"{", b'"', b",", b"\xff", b"\x00", b"<", b"\n"]))
        if how == "insert":
            data = data[:i] + junk + data[i:]
        elif how == "delete":
            data = data[:i] + data[i + 1:]
        elif how == "truncate":
            data = data[:i]
        else:
            data = data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1:]
    return data


@st.composite
def written_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file some writer wrote, then mutated."""
    from tests.formats.formats_gen import grouped
    from vigil.formats import FORMATS

    fmt = draw(st.sampled_from(["csv", "vics", "ncmec", "stopncii", "pdq-list"]))
    recs = draw(grouped(max_groups=4))
    if fmt == "pdq-list":
        recs = [r for r in recs if r.signal_type == "pdq" and r.op == "add"]
    if fmt == "vics":
        recs = [r for r in recs if r.op == "add"]
    buf = io.BytesIO()
    try:
        FORMATS[fmt].write(recs, buf)
    except ValueError:
        buf = io.BytesIO(b"")
    return fmt, mutated(buf.getvalue(), draw)


# ----------------------------------------------------------------------------- properties


def _read(fmt: str, data: bytes, limits: object | None = None) -> None:
    """Read ``data`` whole: a clean parse or a FormatError, nothing else."""
    from vigil.formats import FORMATS, FormatError

    kw = {} if limits is None else {"limits": limits}
    for on_error in (None, [].append):
        try:
            for _ in FORMATS[fmt].read(io.BytesIO(data), name="fuzz", on_error=on_error, **kw):
                pass
        except FormatError:
            pass


def reader_properties(examples: int) -> list[Callable[[], None]]:
    from vigil.formats import FORMATS, Limits

    config = settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
    small = Limits(max_depth=6, max_record_bytes=4096, max_record_values=64,
                   max_records=50, max_skipped=5)

    @config
    @given(st.sampled_from(["vics", "ncmec", "stopncii"]), hostile_json(), st.booleans())
    def json_readers(fmt: str, data: bytes, use_small: bool) -> None:
        _read(fmt, data, small if use_small else None)

    @config
    @given(hostile_xml(), st.booleans())
    def xml_reader(data: bytes, use_small: bool) -> None:
        _read("ncmec", data, small if use_small else None)

    @config
    @given(st.sampled_from(["csv", "pdq-list", "vpdq"]), hostile_text(), st.booleans())
    def text_readers(fmt: str, data: bytes, use_small: bool) -> None:
        _read(fmt, data, small if use_small else None)

    @config
    @given(written_files(), st.booleans())
    def mutated_files(file: tuple[str, bytes], use_small: bool) -> None:
        _read(file[0], file[1], small if use_small else None)

    @config
    @given(st.sampled_from(sorted(FORMATS)), st.binary(max_size=2048))
    def any_bytes(fmt: str, data: bytes) -> None:
        _read(fmt, data)

    return [json_readers, xml_reader, text_readers, mutated_files, any_bytes]


def feed_properties(examples: int) -> list[Callable[[], None]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vigil.exchange.records import (
        Descriptor,
        FeedError,
        WireRecord,
        canonical,
        genesis,
        make_body,
        parse_page,
        record_hash,
        sign_checkpoint,
        verify_page,
    )
    from vigil.exchange.verify import to_entry_records
    from vigil.formats import Limits

    config = settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
    key = Ed25519PrivateKey.generate()
    d = Descriptor("SG-SPF", "csam", ("category", "tags"), False)
    limits = Limits()

    def receive(page: bytes) -> None:
        """What a receiver does with a page: parse, verify, convert."""
        try:
            p = parse_page(page, limits)
        except FeedError:
            return
        vp = verify_page(d, key.public_key(), 0, genesis(d), p.records, limits)
        assert isinstance(vp.last_seq, int)
        with contextlib.suppress(FeedError):
            to_entry_records(d, vp.records)

    def page_of(bodies: list[str], sign: bool) -> bytes:
        recs = []
        for i, b in enumerate(bodies):
            h = record_hash(b)
            last = i == len(bodies) - 1
            sig = sign_checkpoint(key, d, i + 1, h) if sign and last else None
            recs.append(WireRecord(b, h, sig).as_list())
        return json.dumps({"feed": d.as_dict(), "head": len(bodies),
                           "records": recs}).encode()

    @st.composite
    def bodies(draw: st.DrawFn) -> list[str]:
        """A chain of record bodies, some of them replaced by hostile or ill-typed ones,
        each chained to the one before (as a hostile origin would do: it has the key)."""
        out, prev = [], genesis(d)
        for seq in range(1, draw(st.integers(1, 6)) + 1):
            body = json.loads(make_body(seq, prev, "add", "md5", MD5, None,
                                        {"category": ["us", "1"]}, "2026-12-01T00:00:00+00:00"))
            how = draw(st.sampled_from(["keep", "field", "labels", "hostile", "text"]))
            if how == "field":
                body[draw(st.sampled_from(["seq", "prev", "op", "type", "value", "quality",
                                           "at", "frames"]))] = draw(json_values)
            elif how == "labels":
                body["labels"] = draw(json_values | st.dictionaries(
                    st.sampled_from(["category", "series", "tags", "note", "victim_status",
                                     "x"]), json_values, max_size=4))
            text = canonical(body)
            if how == "hostile":
                text = draw(hostile_json()).decode("utf-8", "replace")
            elif how == "text":
                text = mutated(text.encode(), draw).decode("utf-8", "replace")
            out.append(text)
            prev = record_hash(text)
        return out

    @config
    @given(bodies(), st.booleans())
    def verifier(chain: list[str], sign: bool) -> None:
        receive(page_of(chain, sign))

    @config
    @given(hostile_json())
    def hostile_pages(data: bytes) -> None:
        receive(data)

    @config
    @given(st.dictionaries(st.sampled_from(["feed", "head", "records", "x"]), json_values))
    def ill_typed_pages(doc: dict[str, object]) -> None:
        receive(json.dumps(doc).encode())

    return [verifier, hostile_pages, ill_typed_pages]


def _cap() -> int:
    """Cap this process's address space at what it maps now plus ``HEADROOM``."""
    status = Path("/proc/self/status").read_text().splitlines()
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    cap = size + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return cap


def main(target: str, examples: int) -> None:
    properties = {"readers": reader_properties, "feeds": feed_properties}[target](examples)
    import tests.formats.formats_gen  # noqa: F401  (imported before the cap)

    cap = _cap()
    for prop in properties:
        prop()
    print(f"{target}: {len(properties)} properties x {examples} examples under a cap of "
          f"{cap >> 20} MiB (pid {os.getpid()})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""Hostile files against every format reader: each is refused with an error that names
the file, the record and the limit (and the setting that raises it), quickly, and
without building what the limit bounds.

Most inputs here are endless streams (a string, a line, a nesting that never closes),
produced lazily as the reader asks for bytes: a reader that refuses one has, by
construction, not tried to hold it. A subprocess checks the peak memory of them all, and
``vigil bank import`` is run on the file that took the CLI to 1.1 GB (issue 15).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from vigil.formats import FORMATS, FormatError, Limits
from vigil.formats.limits import JsonError, JsonLimits, check_json, load_json

MD5 = "0123456789abcdef" * 2
PDQ = "f" * 64
SMALL = Limits(max_depth=8, max_record_bytes=1 << 16, max_record_values=500, max_records=5,
               max_skipped=3)


class Stream(io.RawIOBase):
    """A binary file over an iterator of byte pieces, read only as far as asked."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        super().__init__()
        self._pieces: Iterator[bytes] = iter(pieces)
        self._buf = b""
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buf = piece
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.served += n
        return n


def endless(head: bytes, unit: bytes, tail: bytes = b"", count: int | None = None,
            ) -> Callable[[], Stream]:
    """``head``, then ``unit`` forever (or ``count`` times), then ``tail``: lazily."""
    block = unit * max(1, (1 << 16) // len(unit))
    per = len(block) // len(unit)

    def make() -> Stream:
        if count is None:
            body: Iterable[bytes] = itertools.repeat(block)
        else:
            full, rest = divmod(count, per)
            body = itertools.chain(itertools.repeat(block, full), [unit * rest])
        return Stream(itertools.chain([head], body, [tail]))

    return make


def nested(n: int) -> bytes:
    return b"[" * n + b"]" * n


#: (format, what, stream, words the error must hold). All with the default limits.
CASES: list[tuple[str, str, Callable[[], Stream], tuple[str, ...]]] = [
    # the request of issue 15 that grew a node to 24 GB
    ("vics", "200,000 nested lists in value", endless(b'{"value":', b"[", count=200_000,
                                                      tail=b"]" * 200_000 + b"}"),
     ("record 1", "nested deeper than 32", "VIGIL_MAX_DEPTH")),
    ("vics", "an endless nesting", endless(b'{"value":', b"["), ("VIGIL_MAX_DEPTH",)),
    ("vics", "a Media nested deep", endless(b'{"value":[{"MD5":"' + MD5.encode() + b'","x":',
                                            b'{"a":'),
     ("record 1", "VIGIL_MAX_DEPTH")),
    ("vics", "an endless hash string", endless(b'{"value":[{"MD5":"', b"a"),
     ("record 1", "4,194,304 bytes", "VIGIL_MAX_RECORD_BYTES")),
    ("vics", "an endless key before value", endless(b'{"', b"k"),
     ("start of file", "no 'value' list")),
    ("vics", "an endless string after the records",
     endless(b'{"value":[{"MD5":"' + MD5.encode() + b'"}],"x":"', b"a"),
     ("after record 1", "VIGIL_MAX_RECORD_BYTES")),
    ("vics", "a Media of 200,000 values",
     endless(b'{"value":[{"MD5":"' + MD5.encode() + b'","x":[', b"0,", count=200_000,
             tail=b"0]}]}"),
     ("record 1", "100,000 values", "VIGIL_MAX_RECORD_VALUES")),
    ("vics", "a bare list nested deep", endless(b"[", b"["), ("record 1", "VIGIL_MAX_DEPTH")),
    ("ncmec", "records nested deep", endless(b'{"records":', b"["), ("VIGIL_MAX_DEPTH",)),
    ("ncmec", "an endless JSON line",
     endless(json.dumps({"id": 1, "fingerprints": {"md5": MD5}}).encode() + b'\n{"id": "',
             b"7"),
     ("line 2", "longer than 4,194,304 bytes")),
    ("ncmec", "XML nested deep", endless(b"<records>", b"<a>"),
     ("line 1", "nested deeper than 32", "VIGIL_MAX_DEPTH")),
    ("ncmec", "an endless XML attribute", endless(b'<records><record id="', b"1"),
     ("a tag, text or comment longer", "VIGIL_MAX_RECORD_BYTES")),
    ("ncmec", "endless XML text in a record", endless(b"<records><record><md5>", b"a"),
     ("record 1", "VIGIL_MAX_RECORD_BYTES")),
    ("ncmec", "an endless XML comment", endless(b"<records><!--", b"-a"),
     ("longer than 4,194,304", "VIGIL_MAX_RECORD_BYTES")),
    ("ncmec", "an XML record of 200,000 elements",
     endless(b"<records><record>", b"<x/>", count=200_000, tail=b"</record></records>"),
     ("record 1", "100,000 elements", "VIGIL_MAX_RECORD_VALUES")),
    ("stopncii", "a list nested deep", endless(b"[", b"["), ("VIGIL_MAX_DEPTH",)),
    ("stopncii", "an endless hash value",
     endless(b'{"hashes":[{"signalType":"PDQ","hashValue":"', b"f"),
     ("record 1", "VIGIL_MAX_RECORD_BYTES")),
    ("csv", "an endless header", endless(b"signal_type,hash", b"x"),
     ("line 1", "VIGIL_MAX_RECORD_BYTES")),
    ("csv", "an endless row", endless(b"signal_type,hash\nmd5,", b"a"),
     ("line 2", "VIGIL_MAX_RECORD_BYTES")),
    ("csv", "a row of 150,000 fields",
     endless(b"signal_type,hash\n", b"a,", count=150_000, tail=b"a\n"),
     ("line 2", "100,000 fields", "VIGIL_MAX_RECORD_VALUES")),
    ("csv", "a quoted field of endless lines", endless(b'signal_type,hash\nmd5,"', b"a\n"),
     ("line 65538", "bad CSV: field larger than field limit")),
    ("pdq-list", "an endless line", endless(b"", b"f"), ("line 1", "VIGIL_MAX_RECORD_BYTES")),
    ("vpdq", "an endless frame list", endless(b"", b"1,100," + PDQ.encode() + b",0.5\n"),
     ("record 1", "frames", "VIGIL_MAX_RECORD_BYTES")),
]


@pytest.mark.parametrize(("fmt", "what", "stream", "words"), CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_hostile_files_are_refused_naming_record_and_limit(
        fmt: str, what: str, stream: Callable[[], Stream], words: tuple[str, ...]) -> None:
    for on_error in (None, [].append):  # a limit ends the file even when skipping
        src = stream()
        start = time.perf_counter()
        with pytest.raises(FormatError) as info:
            for _ in FORMATS[fmt].read(src, name="evidence.dat", on_error=on_error):
                pass
        took = time.perf_counter() - start
        message = str(info.value)
        assert message.startswith("evidence.dat: "), message
        for word in words:
            assert word in message, (what, message)
        assert took < 5, f"{what}: refused after {took:.1f} s"
        assert src.served < 64 << 20, f"{what}: read {src.served:,} bytes before refusing"


def test_the_deep_file_is_refused_after_the_records_before_it() -> None:
    good = json.dumps({"MediaID": 1, "MD5": MD5}).encode()
    src = endless(b'{"value":[' + good + b",", b"[")()
    got = []
    with pytest.raises(FormatError, match="record 2: nested deeper"):
        for rec in FORMATS["vics"].read(src, name="f"):
            got.append(rec.value)
    assert got == [MD5]


def test_a_bad_json_line_is_skipped_and_reading_goes_on() -> None:
    data = (json.dumps({"id": 1, "fingerprints": {"md5": MD5}}) + "\n"
            + "[" * 100_000 + "\n"
            + '{"id": 2, "x": ' + "[0," * 60 + "0" + "]" * 60 + "}\n"
            + json.dumps({"id": 3, "fingerprints": {"md5": MD5}}) + "\n").encode()
    skipped: list[FormatError] = []
    recs = list(FORMATS["ncmec"].read(io.BytesIO(data), name="f", on_error=skipped.append))
    assert [r.source_id for r in recs] == ["1", "3"]
    assert [e.location for e in skipped] == ["line 2", "line 3"]
    assert all("nested deeper than 32 levels" in e.reason for e in skipped)


@pytest.mark.parametrize("fmt", ["csv", "pdq-list", "ncmec"])
def test_too_many_skipped_records_stop_the_file(fmt: str) -> None:
    bad = {"csv": b"signal_type,hash\n" + b"md5,zz\n" * 10,
           "pdq-list": b"zz\n" * 10,
           "ncmec": b'{"id": 1}\n' * 10}[fmt]
    skipped: list[FormatError] = []
    with pytest.raises(FormatError, match=r"more than 3 malformed records \(VIGIL_MAX_SKIPPED\)"):
        list(FORMATS[fmt].read(io.BytesIO(bad), name="f", on_error=skipped.append,
                               limits=SMALL))
    assert len(skipped) == 3


@pytest.mark.parametrize("fmt", ["csv", "pdq-list", "vics", "ncmec", "stopncii"])
def test_too_many_records_stop_the_file(fmt: str) -> None:
    rows = 6
    data = {"csv": b"signal_type,hash\n" + b"md5," + MD5.encode() + b"\n",
            "pdq-list": PDQ.encode() + b"\n",
            "vics": json.dumps({"MD5": MD5}).encode() + b",",
            "ncmec": json.dumps({"fingerprints": {"md5": MD5}}).encode() + b"\n",
            "stopncii": json.dumps({"signalType": "MD5", "hashValue": MD5}).encode() + b","}
    unit = data[fmt]
    if fmt == "csv":
        body = unit.split(b"\n", 1)[0] + b"\n" + unit.split(b"\n", 1)[1] * rows
    elif fmt in ("vics", "stopncii"):
        body = b"[" + unit * rows + b"{}]"
    else:
        body = unit * rows
    with pytest.raises(FormatError, match=r"more than 5 records \(VIGIL_MAX_RECORDS\)"):
        list(FORMATS[fmt].read(io.BytesIO(body), name="f", limits=SMALL))


def test_small_limits_apply_to_each_reader() -> None:
    deep = b'{"value":[{"MD5":"' + MD5.encode() + b'","x":' + nested(8) + b"}]}"
    with pytest.raises(FormatError, match="nested deeper than 8 levels"):
        list(FORMATS["vics"].read(io.BytesIO(deep), name="f", limits=SMALL))
    ok = b'{"value":[{"MD5":"' + MD5.encode() + b'","x":' + nested(4) + b"}]}"
    assert len(list(FORMATS["vics"].read(io.BytesIO(ok), name="f", limits=SMALL))) == 1
    xml = b"<records><record><fingerprints><md5>" + MD5.encode() + b"</md5></fingerprints>" \
        + b"<x/>" * 600 + b"</record></records>"
    with pytest.raises(FormatError, match="more than 500 elements"):
        list(FORMATS["ncmec"].read(io.BytesIO(xml), name="f", limits=SMALL))


def test_limits_from_the_environment() -> None:
    lim = Limits.from_env({"VIGIL_MAX_DEPTH": "64", "VIGIL_MAX_RECORD_BYTES": "16_777_216",
                           "VIGIL_MAX_RECORDS": " 1000 ", "VIGIL_MAX_SKIPPED": ""})
    assert (lim.max_depth, lim.max_record_bytes, lim.max_records) == (64, 16 << 20, 1000)
    assert lim.max_skipped == Limits().max_skipped
    with pytest.raises(ValueError, match="VIGIL_MAX_DEPTH must be an integer"):
        Limits.from_env({"VIGIL_MAX_DEPTH": "deep"})
    with pytest.raises(ValueError, match="VIGIL_MAX_RECORDS must be at least 1"):
        Limits.from_env({"VIGIL_MAX_RECORDS": "0"})


# ----------------------------------------------------------------------------- check_json

LIM = JsonLimits(depth=4, values=50, items=10, string=100)


@pytest.mark.parametrize(("doc", "where", "says"), [
    (b"[[[[[]]]]]", "0.0.0.0", "nested deeper than 4 levels"),
    (b'{"a": [' + b"1," * 10 + b"1]}", "a.10", "more than 10 items"),
    (b"{" + b",".join(b'"k%d": 1' % i for i in range(11)) + b"}", "k10", "more than 10 keys"),
    (b"[" + b",".join([b"[1,2,3,4,5,6,7,8]"] * 6) + b"]", "5.3", "more than 50 values"),
    (b'{"s": "' + b"x" * 101 + b'"}', "s", "a string longer than 100"),
    (b'{"' + b"k" * 101 + b'": 1}', "", "a key longer than 100"),
])
def test_check_json_names_the_path_and_the_limit(doc: bytes, where: str, says: str) -> None:
    with pytest.raises(JsonError) as info:
        check_json(doc, LIM)
    assert info.value.where == where and says in info.value.reason
    assert not info.value.syntax


@pytest.mark.parametrize("doc", [b"[1,", b"{'a': 1}", b"[NaN]", b"[1] 2", b"",
                                 b"[123456789012345678901234567890]", b'["\xff"]'])
def test_check_json_syntax_errors_do_not_quote_the_input(doc: bytes) -> None:
    secret = b"[" + b'"' + MD5.encode() + b'",' + doc
    with pytest.raises(JsonError) as info:
        load_json(secret, JsonLimits(depth=4, values=50, items=10, string=1000))
    assert info.value.syntax and MD5 not in str(info.value)
    assert str(info.value).startswith("invalid JSON (")


def test_check_json_takes_what_is_within_the_limits() -> None:
    doc = {"signals": [{"type": "md5", "value": MD5, "brackets": "[[[[[[{{{{"}] * 9}
    assert load_json(json.dumps(doc).encode(), JsonLimits(depth=3, values=100, items=10,
                                                          string=100)) == doc


# ----------------------------------------------------------------------------- memory

CHILD = """
import sys
from tests.formats.test_hostile import CASES
from vigil.formats import FORMATS, FormatError

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

for fmt, _, stream, _ in CASES[:2]:  # warm up: imports, first allocations
    try:
        list(FORMATS[fmt].read(stream(), name="f"))
    except FormatError:
        pass
before = hwm()
for fmt, what, stream, _ in CASES:
    try:
        list(FORMATS[fmt].read(stream(), name="f"))
    except FormatError:
        pass
print(hwm() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_hostile_files_cost_little_memory() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    growth = int(out.stdout.split()[-1])
    assert growth < 64 << 20, f"peak RSS grew {growth / 1e6:.0f} MB over all hostile files"


def _run_peak(args: list[str], env: dict[str, str], timeout: float = 120,
              ) -> tuple[int, str, int]:
    """Exit status, stderr and peak RSS (bytes) of one command (killed after ``timeout``)."""
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=errf)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        return p.returncode, errf.read().decode(), usage.ru_maxrss * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB")
def test_cli_import_of_the_deep_file_is_refused_in_bounded_memory(
        engine: Engine, tmp_path: Path) -> None:
    env = {**os.environ, "VIGIL_HOME": str(tmp_path / "home"),
           "VIGIL_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "VIGIL_USER": "examiner1", "COLUMNS": "300"}
    vigil = [sys.executable, "-m", "vigil"]
    subprocess.run([*vigil, "bank", "create", "seized", "--agency", "SG-SPF"], env=env, check=True,
                   capture_output=True, timeout=120)
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"value": [{"MediaID": 1, "MD5": MD5}]}))
    deep = tmp_path / "deep.json"
    deep.write_bytes(b'{"value":' + nested(200_000) + b"}")
    code, err, baseline = _run_peak([*vigil, "bank", "import", "seized", str(small), "-q"], env)
    assert code == 0, err
    start = time.perf_counter()
    code, err, peak = _run_peak([*vigil, "bank", "import", "seized", str(deep), "-q", "-f", "vics"],
                                env)
    took = time.perf_counter() - start
    assert code != 0
    assert "deep.json" in err and "record 1" in err and "VIGIL_MAX_DEPTH" in err, err
    assert peak - baseline < 100 << 20, f"peak RSS {peak / 1e6:.0f} MB, {baseline / 1e6:.0f} " \
        "MB for a one-record import"
    assert took < 60, took

"""detect_format on every format and shape; VICS reading stays flat in memory on a 100 MB file."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time

import pytest

from tests.formats.formats_gen import rand_hex, rand_photodna
from vigil import formats
from vigil.banks.entry import EntryRecord, Labels
from vigil.formats import FORMATS, FormatError, detect_format, vics

RNG = random.Random(7)
RECS = [EntryRecord("md5", rand_hex(RNG, 32), Labels(category=("ncmec", "A1")), source_id="1"),
        EntryRecord("pdq", rand_hex(RNG, 64), quality=80, source_id="1")]
PDQ_ONLY = [EntryRecord("pdq", r.value, quality=r.quality) for r in RECS[1:]]


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_detect_written_files(tmp_path, name):
    from tests.formats.test_formats_parsing import VIDEO

    p = tmp_path / "export.dat"  # the extension says nothing
    recs = {"pdq-list": PDQ_ONLY, "vpdq": [VIDEO]}.get(name, RECS)
    FORMATS[name].write(recs, p)
    assert detect_format(p) == name
    assert [(r.signal_type, r.value) for r in formats.read(p)] == [
        (r.signal_type, r.value) for r in recs]


@pytest.mark.parametrize(("content", "name"), [
    (b"\xef\xbb\xbfSignal_Type,Hash,category\r\n", "csv"),
    (b'"signal_type","value"\n', "csv"),
    (b"# PDQ hashes\n\n" + b"a" * 64 + b",90\n", "pdq-list"),
    (b"F" * 64 + b"\n", "pdq-list"),
    (b'{"@odata.context": "x#Cases", "value": [{"CaseID": 1, "Media": []}]}', "vics"),
    (b'[{"MediaID": 1, "MD5": "x"}]', "vics"),
    (b'{"id": 1, "classification": "A1", "fingerprints": {}}\n{"id": 2}\n', "ncmec"),
    (b'{"records": [{"id": 1, "fingerprints": {"md5": "x"}}]}', "ncmec"),
    (b'<?xml version="1.0"?><records/>', "ncmec"),
    (b'{"hashes": [{"hashId": "a", "signalType": "PDQ"}]}', "stopncii"),
    (b'\n  [{"signalType": "MD5", "hashValue": "x", "hashStatus": "Active"}]', "stopncii"),
])
def test_detect_by_content(tmp_path, content, name):
    p = tmp_path / "in.json"
    p.write_bytes(content)
    assert detect_format(p) == name


@pytest.mark.parametrize("content", [b"", b"hello world\n", b'{"foo": 1}', b"abc,def\n"])
def test_detect_unknown(tmp_path, content):
    p = tmp_path / "in.txt"
    p.write_bytes(content)
    with pytest.raises(FormatError):
        detect_format(p)


# ----------------------------------------------------------------------------- memory

TARGET_BYTES = 100 * 1024 * 1024


def write_big_vics(path, target: int = TARGET_BYTES) -> int:
    """A ~100 MB VICS hash set written in chunks (never held whole); returns Media count."""
    rng = random.Random(1)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write('\ufeff{"odata.metadata":' + json.dumps(vics.METADATA) + ',"value":[\n')
        size = 0
        while size < target:
            chunk = []
            for _ in range(1000):
                n += 1
                m = {"MediaID": n, "Category": str(n % 6), "MD5": rand_hex(rng, 32).upper(),
                     "SHA1": rand_hex(rng, 40).upper(), "PhotoDNA": rand_photodna(rng),
                     "MediaSize": str(rng.randrange(1, 1 << 30)),
                     "DateUpdated": "2026-11-30T12:00:00Z", "IsDistributed": "true",
                     "VictimIdentified": "false", "IsPrecategorized": "True",
                     "Series": f"series-{n % 97}", "Tags": "a,b", "MimeType": "image/jpeg",
                     "AlternativeHashes": [{"HashName": "PDQ",
                                            "HashValue": rand_hex(rng, 64)}],
                     "MediaFiles": [{"FileName": f"IMG_{n}.jpg",
                                     "FilePath": f"Users/x/Pictures/{n % 50}/"}]}
                chunk.append(json.dumps(m))
            text = ("" if size == 0 else ",\n") + ",\n".join(chunk)
            f.write(text)
            size += len(text)
        f.write("\n]}\n")
    return n


# Run in a fresh interpreter: its peak RSS (VmHWM) is not inflated by earlier tests.
CHILD = """
import sys, time
from vigil.formats import vics

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
before = hwm()
t = time.perf_counter()
n = media = 0
last = None
for rec in vics.read(sys.argv[1]):
    n += 1
    if rec.source_id != last:
        media += 1
        last = rec.source_id
print(n, media, hwm() - before, time.perf_counter() - t)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_vics_reader_memory_is_flat_on_a_100mb_file(tmp_path):
    path = tmp_path / "big.json"
    n_media = write_big_vics(path)
    size = path.stat().st_size
    assert size >= TARGET_BYTES
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                         text=True, check=True, timeout=300)
    records, media, growth, seconds = out.stdout.split()
    assert int(media) == n_media
    assert int(records) == 4 * n_media  # MD5, SHA1, PhotoDNA, PDQ per Media
    print(f"\n{size / 1e6:.0f} MB, {n_media} Media, {int(records)} records in "
          f"{float(seconds):.1f} s ({time.perf_counter() - t:.1f} s with start-up); "
          f"peak RSS growth {int(growth) / 1e6:.1f} MB")
    assert int(growth) < 30 * 1024 * 1024, f"peak RSS grew {int(growth) / 1e6:.1f} MB"


def test_vics_reader_streams_lazily():
    """The first record arrives before the rest of the stream is even read."""

    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.pending = ('{"value":[' + json.dumps({"MediaID": 1, "MD5": "a" * 32})).encode()
            self.sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            if not self.pending:
                self.pending = b', {"MediaID": 2, "MD5": "' + b"b" * 32 + b'"}'
            self.sent += 1
            if self.sent > 100_000:
                raise AssertionError("reader consumed the whole stream before yielding")
            n = min(len(b), len(self.pending))
            b[:n] = self.pending[:n]
            self.pending = self.pending[n:]
            return n

    first = next(vics.read(io.BufferedReader(Endless())))
    assert (first.source_id, first.value) == ("1", "a" * 32)

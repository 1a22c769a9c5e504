"""Import speed and memory of the format readers, one core: 1M CSV rows, 1M VICS Media.

Generates the files under bench/out/ (random hex only; reused when already there), then
times ``read()`` of each in a fresh child process, consuming records without keeping
them, and reports records/s and the child's peak RSS (VmHWM) above its start-up peak,
so the figures show what the reader costs, not what earlier work in this process did.

With ``--store sqlite`` (or a PostgreSQL URL) each file is also imported into a bank of a
fresh store through ``Banks.apply``: the whole ``vigil bank import`` path, in one
transaction.

Run: .venv/bin/python bench/imports.py [--count N] [--regen] [--store sqlite] [--store URL]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
from bench._data import fresh_schema  # noqa: E402

CHILD = """
import sys, time
from vigil.formats import FORMATS

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
base = hwm()
module = FORMATS[sys.argv[1]]
t = time.perf_counter()
n = 0
if len(sys.argv) > 3:  # into a bank of a fresh store at this URL
    from vigil.banks import Banks
    from vigil.store import make_engine, migrate
    engine = make_engine(sys.argv[3])
    migrate(engine)
    banks = Banks(engine, user="bench")
    banks.create("bench", "BENCH")
    base = hwm()
    t = time.perf_counter()
    r = banks.apply("bench", module.read(sys.argv[2]), source="bench")
    n = r.added
else:
    for _ in module.read(sys.argv[2]):
        n += 1
dt = time.perf_counter() - t
print(n, dt, hwm() - base, hwm())
"""


def gen_csv(path: Path, count: int) -> None:
    rng = random.Random(1)
    types = (("md5", 32), ("sha1", 40), ("pdq", 64), ("sha256", 64))
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("signal_type,value,category_scheme,category,series,victim_status,tags,note,"
                "quality\r\n")
        for i in range(count):
            t, n = types[i % 4]
            q = str(rng.randrange(50, 101)) if t == "pdq" else ""
            f.write(f"{t},{rng.getrandbits(4 * n):0{n}x},us,{i % 6},series-{i % 997},"
                    f"unknown,a;b,,{q}\r\n")


def gen_vics(path: Path, count: int) -> None:
    """``count`` Media, each with MD5, SHA1 and a PDQ alternative hash (3 records each)."""
    from vigil.formats import vics

    rng = random.Random(2)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"odata.metadata":' + json.dumps(vics.METADATA) + ',"value":[\n')
        for i in range(1, count + 1):
            m = {"MediaID": i, "Category": i % 6, "MD5": f"{rng.getrandbits(128):032X}",
                 "SHA1": f"{rng.getrandbits(160):040X}", "MediaSize": rng.randrange(1, 1 << 30),
                 "DateUpdated": "2026-11-30T12:00:00Z", "IsDistributed": "true",
                 "VictimIdentified": "false", "IsPrecategorized": "true",
                 "Series": f"series-{i % 997}", "MimeType": "image/jpeg",
                 "AlternativeHashes": [{"HashName": "PDQ",
                                        "HashValue": f"{rng.getrandbits(256):064x}"}],
                 "MediaFiles": [{"FileName": f"IMG_{i}.jpg", "FilePath": "Users/x/Pictures/"}]}
            f.write(("" if i == 1 else ",\n") + json.dumps(m))
        f.write("\n]}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--regen", action="store_true", help="regenerate the input files")
    ap.add_argument("--store", action="append", default=[], metavar="URL",
                    help="also import into a bank of a fresh store at URL (repeatable; "
                    "'sqlite' = a new SQLite file under bench/out/)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    jobs = [("csv", OUT / f"imports-{args.count}.csv", gen_csv),
            ("vics", OUT / f"imports-{args.count}.vics.json", gen_vics)]
    rows = []
    for fmt, path, gen in jobs:
        if args.regen or not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            gen(path, args.count)
        for target in ["read only", *args.store]:
            argv = [sys.executable, "-c", CHILD, fmt, str(path)]
            if target != "read only":
                url = target
                if target == "sqlite":
                    db = OUT / f"imports-{fmt}.db"
                    for f in OUT.glob(f"imports-{fmt}.db*"):
                        f.unlink()
                    url = f"sqlite:///{db}"
                elif target.startswith("postgresql"):
                    url = fresh_schema(target, f"bench_imports_{fmt}")
                argv.append(url)
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()
            n, secs, growth, peak = int(out[0]), float(out[1]), int(out[2]), int(out[3])
            rows.append((fmt, target.split("@")[-1][:24], path.stat().st_size / 1e6, n, secs,
                         n / secs, growth / 1e6, peak / 1e6))
    print(f"{'format':<6} {'into':<24} {'file MB':>8} {'records':>10} {'seconds':>8} "
          f"{'records/s':>10} {'peak +MB':>9} {'peak MB':>8}")
    for fmt, into, mb, n, secs, rate, growth, peak in rows:
        print(f"{fmt:<6} {into:<24} {mb:>8.0f} {n:>10,} {secs:>8.1f} {rate:>10,.0f} "
              f"{growth:>9.1f} {peak:>8.1f}")


if __name__ == "__main__":
    main()

"""Import speed and memory of the format readers, one core: 1M CSV rows, 1M VICS Media.

Generates the files under bench/out/ (random hex only; reused when already there), then
times ``read()`` of each in a fresh child process, consuming records without keeping
them, and reports records/s and the child's peak RSS (VmHWM) above its start-up peak,
so the figures show what the reader costs, not what earlier work in this process did.
Each measurement runs ``--repeat`` times (default 3; every run a fresh process and, for a
store, a fresh store), interleaved across rows; cells are min / median / max.

With ``--store sqlite`` (or a PostgreSQL URL) each file is also imported into a bank of a
fresh store through ``Banks.apply``: the whole ``vigil bank import`` path, in one
transaction.

Run: .venv/bin/python -m bench.imports [--count N] [--repeat N] [--regen] [--store sqlite]
     [--store URL]
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
from bench._spread import SPREAD_NOTE, Runs, add_repeat_argument, spread_cell  # noqa: E402

# Target set by issue 3 (banks): 1M records imported in at most 60 s on one core, with
# peak memory independent of the file's size.
TARGET_S = 60.0

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
    add_repeat_argument(ap)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    runs = Runs()
    jobs = [("csv", OUT / f"imports-{args.count}.csv", gen_csv),
            ("vics", OUT / f"imports-{args.count}.vics.json", gen_vics)]
    for _fmt, path, gen in jobs:
        if args.regen or not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            gen(path, args.count)
    got: dict[tuple[str, str], list[tuple[int, float, int, int]]] = {}
    for _ in range(args.repeat):
        for fmt, path, _gen in jobs:
            for target in ["read only", *args.store]:
                argv = [sys.executable, "-c", CHILD, fmt, str(path)]
                if target != "read only":
                    argv.append(_fresh_store(fmt, target))
                out = runs.record(lambda argv=argv: subprocess.run(
                    argv, check=True, capture_output=True, text=True).stdout.split())
                got.setdefault((fmt, target), []).append(
                    (int(out[0]), float(out[1]), int(out[2]), int(out[3])))
    sizes = {fmt: path.stat().st_size / 1e6 for fmt, path, _gen in jobs}
    print(f"one core; {args.repeat} runs; {SPREAD_NOTE}\n")
    print("| format | into | file MB | records | seconds | records/s | peak +MB | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for (fmt, target), rs in got.items():
        n = rs[0][0]
        secs = [r[1] for r in rs]
        print(f"| {fmt} | {target.split('@')[-1][:24]} | {sizes[fmt]:.0f} | {n:,} "
              f"| {spread_cell(secs, '{:.1f}')} | {spread_cell([n / x for x in secs], '{:,.0f}')} "
              f"| {spread_cell([r[2] / 1e6 for r in rs], '{:.1f}')} "
              f"| {spread_cell([r[3] / 1e6 for r in rs], '{:.1f}')} |")
    print()
    print(runs.load_line())
    print(f"\nTarget (issue 3): 1M records in <= {TARGET_S:g} s on one core, peak memory "
          "independent of the file's size (compare 'peak +MB' across --count values).")


def _fresh_store(fmt: str, target: str) -> str:
    """The URL of an empty store for one import run."""
    if target == "sqlite":
        db = OUT / f"imports-{fmt}.db"
        for f in OUT.glob(f"imports-{fmt}.db*"):
            f.unlink()
        return f"sqlite:///{db}"
    if target.startswith("postgresql"):
        return fresh_schema(target, f"bench_imports_{fmt}")
    return target


if __name__ == "__main__":
    main()

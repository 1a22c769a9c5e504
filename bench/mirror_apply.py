"""The receiver side of a first mirror sync alone: `Banks.apply` of 10,000-record pages of
new PDQ entries into a mirror bank on PostgreSQL, per-page time as the bank grows.

Why: it isolates the database writes (72-91% of a sync, bench/federation.py) from HTTP and
the origin. ``off`` disables the ANALYZE-on-growth of ``vigil.banks`` to compare.

Run: .venv/bin/python bench/mirror_apply.py [ENTRIES] [on|off]   (a throwaway PG schema)
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
import vigil.banks as vb
from vigil.banks import Banks
from vigil.entry import EntryRecord, Labels
from vigil.store import make_engine, migrate

URL = os.environ.get("VIGIL_BENCH_DATABASE_URL",
                     "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    if len(sys.argv) > 2 and sys.argv[2] == "off":
        vb.ANALYZE_MIN_ROWS = 10**12
    base = make_url(URL)
    schema = "bench_apply_" + uuid.uuid4().hex[:8]
    admin = make_engine(base)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(base.update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        migrate(eng)
        b = Banks(eng, user="bench")
        b.create("mirror", "HK-POL")
        lab, empty = Labels(category=("us", "1")), {}
        rng = random.Random(1)
        print(f"load average {os.getloadavg()[0]:.2f}")
        print("| entries so far | page s |\n|---|---|")
        t = time.perf_counter()
        for p in range(0, n, 10_000):
            recs = [EntryRecord("pdq", f"{rng.getrandbits(256):064x}", lab, 90,
                                source_id=f"SG-SPF/b#{i}", extra=empty)
                    for i in range(p, p + 10_000)]
            t1 = time.perf_counter()
            b.apply("mirror", recs, mirror=True)
            if p % 100_000 == 0 or p + 10_000 >= n:
                print(f"| {p:,} | {time.perf_counter() - t1:.2f} |", flush=True)
        total = time.perf_counter() - t
        print(f"total {total:.1f} s, {n / total:,.0f} entries/s; "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        eng.dispose()
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()

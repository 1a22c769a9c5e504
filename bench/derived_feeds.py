"""Derived codes in feeds (issue 22): what a crop ladder costs between two nodes.

Two origin banks of ``--entries`` PDQ entries each, one plain and one with a crop ladder
(every entry with 35 derived codes, as a banked picture's ladder has about that many),
each shared with a fresh receiver and pulled over loopback: the origin a real
`vigil serve`, the receiver's sync in this process (``sync_peer``, what `vigil peer
sync` and the periodic sync run). For each:

* bytes per entry: a record's body, the page's JSON per record (body, hash, signature)
  and on the wire, gzip-compressed as the origin sends pages to peers that accept it
  (counted by a TCP relay between the two nodes, both ways' HTTP included);
* the first sync's wall time (the origin's feed is materialised by `vigil bank share`
  beforehand, timed separately), in records/s;
* the receiver's index build over its store (``BankIndexes``, from scratch): seconds and
  derived codes held.

Random codes, not pictures: the size and handling of records do not depend on what the
codes are of. Nodes live in bench/out/fed-d* homes (git-ignored), SQLite. The machine is
shared: the 1-minute load average is recorded next to every figure.

Run: .venv/bin/python bench/derived_feeds.py [--entries 10000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
from bench._proc import stop_server
from bench.federation import (
    HOST,
    OUT,
    Node,
    Relay,
    _free_port,
    _hexes,
    load1,
    make_node,
    start_server,
)

BANK = "bench-crops"
ORIGIN, RECEIVER, PEER = "SG-SPF", "HK-POL", "sg"
CODES_PER_ENTRY = 35


def fill(node: Node, entries: int, ladder: bool) -> None:
    """The origin's bank: random PDQ codes (category us:1), each with a ladder if asked."""
    from vigil.banks import Banks
    from vigil.banks.derived import DERIVED_WINDOWS
    from vigil.banks.entry import EntryRecord, Labels
    from vigil.store import make_engine

    engine = make_engine(node.db)
    banks = Banks(engine, user="bench")
    banks.create(BANK, node.agency, crop_ladder=ladder)
    rng = np.random.default_rng(22)
    cat = Labels(category=("us", "1"))
    windows = DERIVED_WINDOWS[:CODES_PER_ENTRY]
    codes = _hexes(rng.integers(0, 256, (entries * (1 + CODES_PER_ENTRY), 32),
                                dtype=np.uint8))
    recs = []
    for i in range(entries):
        row = codes[i * (1 + CODES_PER_ENTRY):(i + 1) * (1 + CODES_PER_ENTRY)]
        extra = {"pdq_derived": [[w, c, 80] for w, c in zip(windows, row[1:], strict=True)]} \
            if ladder else {}
        recs.append(EntryRecord("pdq", row[0], cat, 100, extra=extra))
    banks.apply(BANK, recs, source="bench-derived-feeds", optimistic=True)
    engine.dispose()


def body_bytes(node: Node) -> tuple[float, float]:
    """(mean body bytes, mean page JSON bytes) per record of the origin's stored feed."""
    from sqlalchemy import select

    from vigil.store import make_engine
    from vigil.store.models_exchange import FeedRecord

    engine = make_engine(node.db)
    with engine.connect() as c:
        rows = c.execute(select(FeedRecord.body, FeedRecord.hash, FeedRecord.sig)).all()
    engine.dispose()
    page = sum(len(json.dumps([b, h, s], ensure_ascii=False, separators=(",", ":")).encode())
               for b, h, s in rows)
    return sum(len(b.encode()) for b, _, _ in rows) / len(rows), page / len(rows)


def run(kind: str, entries: int) -> dict[str, Any]:
    from vigil.banks.indexes import BankIndexes
    from vigil.exchange.sync import sync_peer
    from vigil.store import make_engine

    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    ladder = kind == "ladder"
    sg = make_node(f"dsg-{kind}", ORIGIN, entries, None)
    fill(sg, entries, ladder)
    la = load1()
    t = time.perf_counter()
    sg.cli("bank", "share", BANK, RECEIVER, timeout=3600)
    res: dict[str, Any] = {"kind": kind, "entries": entries,
                           "share": {"seconds": time.perf_counter() - t, "load": la}}
    res["body_bytes"], res["page_json_bytes"] = body_bytes(sg)
    hk = make_node(f"dhk-{kind}", RECEIVER, entries, None)
    port = _free_port()
    proc = start_server(sg, port, None)
    relay = Relay(port)
    try:
        token = sg.cli("peer", "grant", RECEIVER, "--name", f"bench-{kind}").stdout.strip()
        hk.cli("peer", "add", PEER, f"http://{HOST}:{relay.port}", "--key", sg.public_key,
               "--token", token)
        engine = make_engine(hk.db)
        os.environ["VIGIL_HOME"] = str(hk.home)
        relay.reset()
        la = load1()
        t = time.perf_counter()
        out = sync_peer(engine, hk.home, PEER)
        dt = time.perf_counter() - t
        if not out.ok:
            raise SystemExit(f"sync failed: {out.error or [f.error for f in out.feeds]}")
        wire = relay.counts()
        records = sum(f.records for f in out.feeds)
        res["sync"] = {"seconds": dt, "records": records, "per_s": records / dt, "load": la,
                       "wire_down": wire["down"], "wire_up": wire["up"],
                       "wire_bytes_per_entry": (wire["down"] + wire["up"]) / entries}
        folder = hk.home / "bench-index"
        shutil.rmtree(folder, ignore_errors=True)
        la = load1()
        t = time.perf_counter()
        idx = BankIndexes(engine, folder)
        res["index"] = {"seconds": time.perf_counter() - t, "load": la, "pdq": len(idx.pdq),
                        "derived": len(idx.derived)}
        engine.dispose()
    finally:
        stop_server(proc)
        relay.close()
    say(f"{kind}: {res['body_bytes']:.0f} B/body, {res['sync']['wire_bytes_per_entry']:.0f} "
        f"B/entry on the wire, sync {res['sync']['seconds']:.2f} s "
        f"({res['sync']['per_s']:,.0f}/s), index {res['index']['seconds']:.2f} s "
        f"({res['index']['derived']:,} derived codes)")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    res = {"load_start": os.getloadavg(),
           "runs": [run(kind, args.entries) for kind in ("plain", "ladder")]}
    res["load_end"] = os.getloadavg()
    print("| bank | body B/record | page JSON B/record | wire B/entry (gzip) | first sync "
          "| records/s | index build | derived codes | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in res["runs"]:
        s = r["sync"]
        print(f"| {r['kind']} | {r['body_bytes']:,.0f} | {r['page_json_bytes']:,.0f} | "
              f"{s['wire_bytes_per_entry']:,.0f} | {s['seconds']:.2f} s | {s['per_s']:,.0f} | "
              f"{r['index']['seconds']:.2f} s | {r['index']['derived']:,} | {s['load']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

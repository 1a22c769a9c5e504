"""Victim identification (issue 17): the cost of series annotation on matching, and the
sync of a series registry between two real nodes.

1. **Annotation overhead.** A private store (bench/out/vid-home-*, SQLite, built once)
   holds one bank of ``--entries`` random signals (PDQ, MD5, SHA-1, SHA-256 in turn), each
   labelled with one of ``--series`` series, and a registry holding those series as a
   peer's verified chain (every tenth identified). ``--files`` items are matched with
   ``Matcher.match`` (and ``Outcome.leads``, which every output prints) — each item a PDQ
   4 bits off a bank PDQ and, for every other item, an MD5 in the bank — then annotated
   as `vigil match` and `vigil scan` annotate them (``series_notes`` over all hits'
   series, one batch; ``annotate``, one lookup per hit). The ratio is annotation time
   over match time, same process, same items. Hashing the files (which `vigil match`
   also does) is left out, so the ratio is stricter than against the whole command.
   ``annotate_reference`` is checked to give the same on a sample.
2. **Registry sync.** The origin ("SG-SPF", a real `vigil serve` on loopback) holds
   ``--records`` registry records (creates, claims, identifications, releases), written in
   bulk into its store; a fresh receiver ("HK-POL") pulls them: the ``sync_peer`` call in
   this process (what `vigil peer sync` runs after the bank feeds), and the whole
   `vigil series sync` command (interpreter start included).

Never prints a hash value. Run: .venv/bin/python -m bench.victimid [--entries 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._data import OUT
from bench._proc import stop_server
from bench.federation import _free_port, _vigil, make_node, start_server

HOME = OUT / "vid-home"
BANK = "vid-bank"


def _series_id(i: int) -> str:
    return f"SG-SPF:S-{i:06d}"


def build_store(entries: int, series: int, seed: int = 17) -> list[str]:
    """The private store (once per size); returns the bank's PDQ values (kept in memory
    only, never printed)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from vigil.banks import Banks
    from vigil.banks.entry import EntryRecord, Labels
    from vigil.banks.indexes import BankIndexes
    from vigil.exchange.records import genesis
    from vigil.store import make_engine, migrate
    from vigil.victimid import registry
    from vigil.victimid.model import iso
    from vigil.victimid.service import descriptor, make_record

    rng = random.Random(seed)
    types = (("pdq", 64), ("md5", 32), ("sha1", 40), ("sha256", 64))
    values = [f"{rng.getrandbits(4 * types[i % 4][1]):0{types[i % 4][1]}x}"
              for i in range(entries)]
    home = HOME.with_name(f"{HOME.name}-{entries}-{series}")
    ready = home / "READY"
    if ready.exists():
        return values
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{home / 'vigil.db'}")
    migrate(engine)
    labels = [Labels(category=("us", "1"), series=_series_id(k)) for k in range(series)]
    banks = Banks(engine, user="bench")
    banks.create(BANK, "SG-SPF", "random signals labelled with series")
    t = time.perf_counter()
    banks.apply(BANK, (EntryRecord(types[i % 4][0], v, labels[i % series],
                                   quality=100 if i % 4 == 0 else None)
                       for i, v in enumerate(values)), source="bench")
    print(f"  bank of {entries:,} entries in {time.perf_counter() - t:.0f} s", flush=True)
    BankIndexes(engine, home / "indexes" / "main")
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    at = datetime(2026, 12, 1, tzinfo=UTC)
    recs = []
    prev = None
    fields = {"aliases": [], "victims": ["V1"], "offender_identified": False, "tags": []}
    for k in range(series):
        kinds: list[tuple[str, dict[str, Any]]] = [("series", fields)]
        if k % 10 == 0:
            kinds.append(("identify", {"contact_role": "VID desk", "case_ref": f"SG-{k}"}))
        for kind, f in kinds:
            r = make_record(key, "SG-SPF", len(recs) + 1, prev, kind, _series_id(k), f,
                            iso(at + timedelta(seconds=len(recs))))
            recs.append(r)
            prev = r.hash
    registry.cursor(engine, "sg", "SG-SPF", genesis(descriptor("SG-SPF")))
    registry.store_page(engine, "sg", 0, recs)
    (home / "origin.pub").write_text(pub)
    engine.dispose()
    ready.write_text(json.dumps({"entries": entries, "series": series}))
    return values


def bench_annotation(entries: int, series: int, files: int, repeat: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vigil.banks import EntryReader
    from vigil.banks.indexes import BankIndexes
    from vigil.matching import Matcher
    from vigil.matching.query import Query
    from vigil.store import make_engine
    from vigil.victimid.annotate import annotate, annotate_reference, series_notes
    from vigil.victimid.service import Registry

    values = build_store(entries, series)
    home = HOME.with_name(f"{HOME.name}-{entries}-{series}")
    engine = make_engine(f"sqlite:///{home / 'vigil.db'}")
    matcher = Matcher(EntryReader(engine), BankIndexes(engine, home / "indexes" / "main"))
    reg = Registry(engine, Ed25519PrivateKey.generate(), "HK-POL")
    rng = random.Random(5)
    pdqs = [i for i in range(0, entries, 4)]
    items = []
    for n in range(files):
        v = int(values[rng.choice(pdqs)], 16)
        for b in rng.sample(range(256), 4):
            v ^= 1 << b
        q = [Query("pdq", f"{v:064x}", 100)]
        if n % 2:
            q.append(Query("md5", values[rng.randrange(entries // 4) * 4 + 1]))
        items.append(q)
    matcher.match(items[:200])  # warm: indexes loaded, store pages cached
    t_match, t_note, hits = [], [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        outcomes = matcher.match(items)
        leads = [o.leads() for o in outcomes]  # what every output prints, series or not
        t_match.append(time.perf_counter() - t)
        t = time.perf_counter()
        labels = [m.entry.labels.series for ls in leads for m, _ in ls]
        notes = series_notes(reg, labels)
        out = annotate(labels, notes)
        t_note.append(time.perf_counter() - t)
        hits = len(labels)
    sample = labels[:300]
    assert annotate(sample, notes) == annotate_reference(engine, sample)
    assert sum(1 for x in out if x is not None) == hits
    m, a = statistics.median(t_match), statistics.median(t_note)
    return {"files": files, "hits": hits, "series_hit": len(notes), "match_s": t_match,
            "annotate_s": t_note, "overhead": a / m,
            "identified_hits": sum(1 for x in out if x and x["status"] == "identified")}


def bench_sync(records: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: F401
    from sqlalchemy import insert

    from vigil.node import signing_key
    from vigil.store import make_engine
    from vigil.store.models_victimid import SeriesEvent
    from vigil.victimid.model import iso
    from vigil.victimid.service import make_record
    from vigil.victimid.sync import sync_peer

    sg = make_node("vid-sg", "SG-SPF", records, None)
    hk = make_node("vid-hk", "HK-POL", records, None)
    hk2 = make_node("vid-hk2", "HK-POL", records, None)
    key = signing_key(sg.home)
    at = datetime.now(UTC) - timedelta(hours=1)
    rows, prev, n = [], None, 0
    while len(rows) < records:
        k = n
        n += 1
        steps: list[tuple[str, dict[str, Any]]] = [
            ("series", {"aliases": [f"ICSE:{k}"], "victims": ["V1"],
                        "offender_identified": False, "tags": ["background"]}),
            ("claim", {"lease_seconds": 86400 * 30}), ("release", {}),
            ("claim", {"lease_seconds": 86400 * 30}),
            ("identify", {"contact_role": "VID desk", "case_ref": f"SG-{k}"})]
        for kind, f in steps[:records - len(rows)]:
            r = make_record(key, "SG-SPF", len(rows) + 1, prev, kind, _series_id(k), f,
                            iso(at + timedelta(milliseconds=len(rows))))
            rows.append(r)
            prev = r.hash
    eng = make_engine(sg.env["VIGIL_DATABASE_URL"])
    with eng.begin() as c:
        c.execute(insert(SeriesEvent), [
            {"origin": r.origin, "seq": r.seq, "series_id": r.series_id, "kind": r.kind,
             "at": r.at, "body": r.body, "hash": r.hash, "sig": r.sig} for r in rows])
    eng.dispose()
    port = _free_port()
    proc = start_server(sg, port, None)
    try:
        for h in (hk, hk2):
            token = sg.cli("peer", "grant", "HK-POL", "--name",
                           f"bench-{h.tag}").stdout.strip()
            h.cli("peer", "add", "sg", f"http://127.0.0.1:{port}", "--key", sg.public_key,
                  "--token", token)
        os.environ["VIGIL_HOME"] = str(hk.home)
        e = make_engine(hk.env["VIGIL_DATABASE_URL"])
        t = time.perf_counter()
        res = sync_peer(e, hk.home, "sg")
        t_call = time.perf_counter() - t
        assert res.error is None and res.after == records, res.as_dict()
        # incremental: nothing new
        t = time.perf_counter()
        again = sync_peer(e, hk.home, "sg")
        t_again = time.perf_counter() - t
        assert again.after == records
        e.dispose()
        t = time.perf_counter()
        subprocess.run([_vigil(), "series", "sync", "sg"], env=hk2.env, check=True,
                       capture_output=True)
        t_cli = time.perf_counter() - t
    finally:
        stop_server(proc)
    return {"records": records, "sync_call_s": t_call, "sync_cli_s": t_cli,
            "resync_s": t_again}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-annotation", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    if not args.skip_annotation:
        out["annotation"] = bench_annotation(args.entries, args.series, args.files,
                                             args.repeat)
        print(json.dumps(out["annotation"], indent=1), flush=True)
    out["sync"] = bench_sync(args.records)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
    a, s = out.get("annotation"), out["sync"]
    print("\n| figure | measured | target | verdict |\n|---|---|---|---|")
    if a:
        print(f"| annotation over matching, {a['files']:,} items ({a['hits']:,} hits on "
              f"{a['series_hit']:,} series) vs {args.entries:,} entries | "
              f"{100 * a['overhead']:.1f}% (match {statistics.median(a['match_s']):.2f} s, "
              f"annotate {statistics.median(a['annotate_s']):.3f} s, median of "
              f"{args.repeat}) | ≤ 5% | {'met' if a['overhead'] <= 0.05 else 'missed'} |")
    print(f"| registry sync, {s['records']:,} records, first pull (sync_peer call) | "
          f"{s['sync_call_s']:.2f} s | ≤ 5 s | {'met' if s['sync_call_s'] <= 5 else 'missed'} |")
    print(f"| same, whole `vigil series sync` command | {s['sync_cli_s']:.2f} s | ≤ 5 s | "
          f"{'met' if s['sync_cli_s'] <= 5 else 'missed'} |")
    print(f"| re-sync, nothing new | {s['resync_s']:.3f} s | — | — |")


if __name__ == "__main__":
    main()

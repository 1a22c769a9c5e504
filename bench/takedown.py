"""Takedown (issue 19): fetch + hash + match from loopback hosts, and the due-scan of a
schedule of open notices.

* **fetch, hash, match**: ``--urls`` URLs served by a loopback web server (threads) from
  the benign corpus photos (BSDS500, 481x321 JPEG); each fetched with the safe fetcher
  (``vigil.takedown.fetch``; loopback allowed explicitly), hashed in memory with the
  pipeline of ``vigil hash`` (MD5, SHA-1, SHA-256, PDQ with dihedral variants) and
  matched against a bank holding half of the photos (``Matcher`` over ``BankIndexes``),
  ``--concurrency`` at once (default 100). Anchor: 200 URLs/s on 2 cores. The web server
  runs in this process too, so its CPU is counted against the same two cores.
  Also: the whole cycle (``Loop.cycle``: claims, fetches, matches, notices opened and
  written to an outbox) on a fresh SQLite store, URLs/s.
* **due-scan**: a schedule of ``--notices`` open notices (default 100,000; 1% due now),
  one cycle's scan = claiming every due notice in batches of 200 until none is left
  (``repo.claim_due_notices``), without the sends. Anchor: <= 5 s.

The machine may be shared: the 1-minute load average is printed with the figures.

Run: .venv/bin/python -m bench.takedown [--urls 1000] [--concurrency 100]
     [--notices 100000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import insert, text

from vigil.banks import Banks, EntryReader, Labels
from vigil.banks.files import records_of_file
from vigil.banks.indexes import BankIndexes
from vigil.matching import Matcher, queries_of
from vigil.signals import HashOptions, hash_file
from vigil.store import make_engine, migrate
from vigil.store.models_takedown import TakedownNotice, TakedownUrl
from vigil.takedown import intake, repo
from vigil.takedown.clock import ManualClock
from vigil.takedown.fetch import Fetcher, FetchLimits
from vigil.takedown.mail import OutboxMailer
from vigil.takedown.schedule import Loop
from vigil.takedown.settings import Settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bsds500"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def serve(photos: list[bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            i = int(self.path.strip("/").split(".")[0].split("-")[-1]) % len(photos)
            body = photos[i]
            self.send_response(200)
            self.send_header("content-type", "image/jpeg")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def bench_fetch(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str, str, str]]:
    files = sorted((CORPUS / "test").glob("*.jpg"))[:40]
    photos = [f.read_bytes() for f in files]
    server, base = serve(photos)
    engine = make_engine(f"sqlite:///{tmp / 'fetch.db'}")
    migrate(engine)
    banks = Banks(engine, "bench")
    banks.create("known", "SG-SPF")
    recs = []
    for f in files[:20]:  # half the photos are known
        recs += records_of_file(hash_file(f), Labels(category=("us", "1"), series="S-1"))
    banks.apply("known", recs)
    matcher = Matcher(EntryReader(engine), BankIndexes(engine, tmp / "indexes"))
    fetcher = Fetcher(FetchLimits(allow_networks=LOOPBACK), HashOptions(dihedral=True),
                      connections=args.concurrency)
    urls = [f"{base}/p-{i}.jpg" for i in range(args.urls)]

    def one(u: str) -> bool:
        r = fetcher.fetch(u)
        assert r.ok and r.signals is not None, r.error
        return bool(matcher.match([queries_of(r.signals, dihedral=True)])[0].matches)

    for u in urls[:20]:
        one(u)  # warm: connections, Numba, indexes
    la = load()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        matched = sum(pool.map(one, urls))
    dt = time.perf_counter() - t0
    rate = args.urls / dt
    rows = [("fetch + hash + match", f"{args.urls} URLs, {args.concurrency} at once",
             f"{rate:,.0f} URLs/s ({matched} matched)",
             f"{rate / 200:.2f}x of 200/s anchor; load {la}")]

    # the whole cycle: claims, fetches, matches, notices opened and sent to an outbox
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    for u in urls[: args.cycle_urls]:
        intake.add(engine, intake.check(u, "C-1"), None, clock.now())
    settings = Settings(limits=FetchLimits(allow_networks=LOOPBACK),
                        concurrency=args.concurrency)
    repo.set_contact(engine, repo.Contact("127.0.0.1", "abuse@x"), clock.now())
    loop = Loop(engine, matcher, fetcher, OutboxMailer(tmp / "outbox"), settings, clock,
                "SG-SPF")
    la = load()
    t0 = time.perf_counter()
    stats = loop.cycle()
    dt = time.perf_counter() - t0
    rows.append(("Loop.cycle (SQLite)", f"{args.cycle_urls} URLs",
                 f"{args.cycle_urls / dt:,.0f} URLs/s ({stats.opened} notices, "
                 f"{stats.sent} sent)", f"{dt:.2f} s; load {la}"))
    fetcher.close()
    server.shutdown()
    engine.dispose()
    return rows


def bench_due_scan(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str, str, str]]:
    url = args.url or f"sqlite:///{tmp / 'due.db'}"
    engine = make_engine(url)
    if args.url:
        with engine.begin() as c:
            c.execute(text("DROP SCHEMA IF EXISTS bench_takedown CASCADE"))
            c.execute(text("CREATE SCHEMA bench_takedown"))
        engine.dispose()
        url = f"{args.url}?options=-csearch_path%3Dbench_takedown"
        engine = make_engine(url)
    migrate(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    n = args.notices
    due = max(1, n // 100)
    with engine.begin() as c:
        c.execute(insert(TakedownUrl), [dict(
            url=f"http://h{i % 500}.example/{i}.jpg", url_key=f"{i:064x}",
            host=f"h{i % 500}.example", domain=f"h{i % 500}.example", case_ref="C",
            added_at=now, state="matched", checks=1) for i in range(n)])
        ids = [r[0] for r in c.execute(text("SELECT id FROM takedown_urls ORDER BY id"))]
        c.execute(insert(TakedownNotice), [dict(
            url_id=uid, url="x", host="h", domain=f"h{i % 500}.example", case_ref="C",
            state="sent", categories=[], series=[], first_seen_at=now, opened_at=now,
            deadline_at=now + timedelta(hours=48), sends=1,
            next_due_at=now - timedelta(minutes=1) if i % (n // due) == 0
            else now + timedelta(hours=1 + i % 23)) for i, uid in enumerate(ids)])
    la = load()
    t0 = time.perf_counter()
    claimed = 0
    owner = repo.new_owner("bench")
    while True:
        got = repo.claim_due_notices(engine, owner, now, timedelta(minutes=5), 200)
        if not got:
            break
        claimed += len(got)
    dt = time.perf_counter() - t0
    backend = engine.dialect.name
    engine.dispose()
    return [("due-scan", f"{n:,} open notices, {claimed:,} due ({backend})",
             f"{dt:.3f} s", f"{5 / dt:.1f}x under the 5 s anchor; load {la}")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--urls", type=int, default=1000)
    p.add_argument("--cycle-urls", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--notices", type=int, default=100_000)
    p.add_argument("--url", help="PostgreSQL URL for the due-scan (default SQLite)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = bench_fetch(args, Path(d)) + bench_due_scan(args, Path(d))
    print(f"\n{'what':24} {'size':40} {'figure':36} verdict")
    for r in rows:
        print(f"{r[0]:24} {r[1]:40} {r[2]:36} {r[3]}")


if __name__ == "__main__":
    main()

"""Federation (issue 7): initial and incremental sync of a bank between two real nodes.

What it measures, with the origin ("SG-SPF") a real `vigil serve` process and the
receiver ("HK-POL") pulling its shared bank over loopback:

* **initial sync** of ``--entries`` random PDQ/MD5 entries (with a category) into a
  read-only mirror: wall time, records/s, bytes on the wire, peak RSS of the syncing
  process (and RSS sampled over the sync, to see whether it grows with the entries),
  peak RSS of the origin's server during the sync. Two runs:

  - *cold*: the feed was never read, so the origin materialises it lazily, page by page,
    while serving (what the first peer to pull a bank sees);
  - *warm*: a second, fresh receiver pulls the now-materialised feed (the sync without
    the origin's materialising, i.e. what the receiver's side costs);

  and, separately, the origin's materialising alone: one ``feeds.materialise`` call in
  this process for a second feed of the same bank (other label fields, so another chain);

* where the sync's time goes, timed in the syncing process by a ``PeerSyncer`` subclass:
  JSON decoding of pages, chain + signature verification, applying to the mirror
  (feed records -> ``EntryRecord`` + ``Banks.apply`` with the checkpoint), and the rest
  (mostly waiting for the next page: the next page is fetched while one is applied).
  ``--profile`` also runs the cold sync under py-spy (wall clock) and lists its hot lines;

* **incremental sync** of ``--changes`` changes (adds, relabels and removals made at the
  origin beforehand), ``--rounds`` times, measured two ways: the ``PeerSyncer.run`` call in
  a process that is already up (what the periodic sync inside `vigil serve` does), and
  the wall time of a whole ``vigil peer sync`` command (interpreter start and imports
  included). Each round alternates which receiver reads first: the first read of new
  records materialises them at the origin (cold), the second reads them stored (warm).

Bytes on the wire are counted by a TCP relay (threads, sockets, loopback) between the
receivers and the origin: every byte of HTTP requests and responses, both ways, as sent
(feed pages are gzip-compressed when the peer accepts it, as httpx does by default). The
syncing process also sums the decompressed response bodies ("body B/record").

The origin bank is filled directly through ``Banks.apply`` (timed, not counted). Nodes
live in bench/out/fed-* homes (git-ignored), SQLite by default; with ``--url`` every node
has its own PostgreSQL schema (``bench_fed_<node>_<entries>``, dropped and recreated).
The machine is shared: the 1-minute load average is recorded next to every figure.

Run: .venv/bin/python bench/federation.py [--entries 100000] [--page-size 10000]
     [--changes 1000] [--rounds 4] [--profile] [--json FILE]
     [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import types
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
from bench._data import fresh_schema
from bench._proc import children as _children
from bench._proc import stop_server

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
HOST = "127.0.0.1"
BANK = "bench-fed"
ORIGIN, RECEIVER = "SG-SPF", "HK-POL"
PEER = "sg"  # the receiver's name for the origin
FILL_SEED, CHANGE_SEED = 21, 23
MB = 1024 * 1024
TARGET_INITIAL_S, TARGET_INCREMENTAL_S = 60.0, 1.0


def load1() -> float:
    return os.getloadavg()[0]


def _vigil() -> str:
    local = REPO / ".venv" / "bin" / "vigil"
    return str(local) if local.exists() else (shutil.which("vigil") or "vigil")


# ---- nodes --------------------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    agency: str
    home: Path
    db: str
    public_key: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([_vigil(), *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, check=False)
        if p.returncode:
            raise SystemExit(f"vigil {args[0]} {args[1] if len(args) > 1 else ''} on "
                             f"{self.agency} failed ({p.returncode}): {p.stderr[-2000:]}")
        return p


def make_node(tag: str, agency: str, entries: int, pg_url: str | None) -> Node:
    """A fresh node: its own home (and SQLite file or PostgreSQL schema), `vigil init`."""
    suffix = f"{entries}-pg" if pg_url else str(entries)
    home = OUT / f"fed-{tag}-{suffix}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if pg_url:
        db = fresh_schema(pg_url, f"bench_fed_{tag}_{entries}")
    else:
        db = f"sqlite:///{home / 'vigil.db'}"
    n = Node(tag, agency, home, db)
    n.env = {**os.environ, "VIGIL_HOME": str(home), "VIGIL_DATABASE_URL": db,
             "VIGIL_PEER_SYNC_INTERVAL": "0", "VIGIL_USER": f"bench-{tag}", "COLUMNS": "300"}
    n.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    n.cli("init", "--agency", agency, "--name", f"{agency} (bench)", "--jurisdiction",
          agency[:2])  # prints the admin token: not kept, not shown
    n.public_key = (home / "keys" / "node.pub").read_text().strip()
    return n


def _hexes(a: np.ndarray) -> list[str]:
    h = a.tobytes().hex()
    w = a.shape[1] * 2
    return [h[i:i + w] for i in range(0, len(h), w)]


def fill_origin(node: Node, entries: int, md5_share: float) -> dict[str, float]:
    """The origin's bank: random PDQ codes and MD5s, half category us:1, half us:2."""
    from vigil.banks import Banks
    from vigil.banks.entry import EntryRecord, Labels
    from vigil.store import make_engine

    engine = make_engine(node.db)
    banks = Banks(engine, user="bench")
    banks.create(BANK, node.agency, description="federation benchmark (random codes)")
    cats = (Labels(category=("us", "1")), Labels(category=("us", "2")))
    rng = np.random.default_rng(FILL_SEED)

    def records():
        left = entries
        while left > 0:
            n = min(left, 50_000)
            md5 = rng.random(n) < md5_share
            pdq = _hexes(rng.integers(0, 256, (n, 32), dtype=np.uint8))
            hashes = _hexes(rng.integers(0, 256, (n, 16), dtype=np.uint8))
            cat = rng.integers(0, 2, n)
            for i in range(n):
                if md5[i]:
                    yield EntryRecord("md5", hashes[i], cats[cat[i]])
                else:
                    yield EntryRecord("pdq", pdq[i], cats[cat[i]], quality=100)
            left -= n

    la = load1()
    t = time.perf_counter()
    # a new bank of new values: the optimistic path (setup, not measured)
    r = banks.apply(BANK, records(), source="bench-federation", optimistic=True)
    dt = time.perf_counter() - t
    engine.dispose()
    return {"added": r.added, "seconds": dt, "per_s": r.added / dt, "load": la}


def make_changes(node: Node, n: int, round_: int) -> dict[str, float]:
    """``n`` changes at the origin: half new entries, 30% relabels, 20% removals."""
    from sqlalchemy import select

    from vigil.banks import Banks
    from vigil.banks.entry import EntryRecord, Labels
    from vigil.store import make_engine
    from vigil.store.models import Bank, Entry

    n_add = n // 2
    n_rel = n * 3 // 10
    n_rem = n - n_add - n_rel
    engine = make_engine(node.db)
    rng = np.random.default_rng(CHANGE_SEED + round_)
    with engine.connect() as c:
        bank_id = c.scalar(select(Bank.id).where(Bank.name == BANK))
        last = c.scalar(select(Bank.last_seq).where(Bank.id == bank_id)) or 0
        # entries last changed at random points of the log: one indexed range read each
        picked: dict[tuple[str, str], str | None] = {}
        for s in rng.integers(1, max(2, last - 10), 4 * (n_rel + n_rem)):
            row = c.execute(select(Entry.signal_type, Entry.value, Entry.category)
                            .where(Entry.bank_id == bank_id, Entry.seq >= int(s),
                                   Entry.removed.is_(False)).order_by(Entry.seq).limit(1)
                            ).first()
            if row is not None:
                picked[(row[0], row[1])] = row[2]
            if len(picked) >= n_rel + n_rem:
                break
    keys = list(picked)
    recs: list[EntryRecord] = [EntryRecord("pdq", h, Labels(category=("us", "1")), quality=90)
                               for h in _hexes(rng.integers(0, 256, (n_add, 32), np.uint8))]
    for k in keys[:n_rel]:
        recs.append(EntryRecord(k[0], k[1], Labels(category=(
            "us", "2" if picked[k] == "1" else "1"), series=f"relabel-{round_}")))
    for k in keys[n_rel:n_rel + n_rem]:
        recs.append(EntryRecord(k[0], k[1], op="remove"))
    rng.shuffle(recs)  # type: ignore[arg-type]
    t = time.perf_counter()
    r = Banks(engine, user="bench").apply(BANK, recs, source="bench-federation-changes")
    dt = time.perf_counter() - t
    engine.dispose()
    return {"added": r.added, "updated": r.updated, "removed": r.removed, "seconds": dt}


# ---- the origin's server and the counting relay ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> int:
    try:
        with socket.create_connection((HOST, port), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                      .encode())
            return int(s.recv(64).split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def start_server(node: Node, port: int, workers: int | None) -> subprocess.Popen[bytes]:
    log = open(node.home / "serve.log", "ab")  # noqa: SIM115 (kept open for the child)
    cmd = [_vigil(), "serve", "--port", str(port), "--log-level", "warning"]
    if workers:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=node.env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    t = time.perf_counter()
    ok = 0
    while time.perf_counter() - t < 1800:
        if proc.poll() is not None:
            raise SystemExit(f"vigil serve exited ({proc.returncode}); see {log.name}")
        ok = ok + 1 if _get(port, "/readyz") == 200 else 0
        if ok >= 5:
            return proc
        time.sleep(0.1 if ok else 0.5)
    stop_server(proc)
    raise SystemExit("the origin's server was not ready in 30 min")




class Relay:
    """A loopback TCP relay that counts the bytes going each way."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.lock = threading.Lock()
        self.down = self.up = self.connections = 0  # down: origin -> receiver
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.down = self.up = self.connections = 0

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {"down": self.down, "up": self.up, "connections": self.connections}

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection((HOST, self.upstream))
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._pipe, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, "down"),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while True:
                data = src.recv(1 << 18)
                if not data:
                    break
                dst.sendall(data)
                with self.lock:
                    setattr(self, way, getattr(self, way) + len(data))
        except OSError:
            pass
        finally:
            for s in (dst, src):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            src.close()

    def close(self) -> None:
        self.sock.close()




def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class RssSampler:
    """VmRSS of the origin's server (and its worker processes) every 0.2 s over a span."""

    def __init__(self, pid: int) -> None:
        self.pids = [pid, *_children(pid)]
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:  # the largest process (workers do not share their heaps)
        return max(_status_kb(p, "VmRSS") for p in self.pids)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, self._rss())


# ---- the syncing process ------------------------------------------------------------------


def child_main(spec_json: str) -> None:
    """Run one `PeerSyncer` in this (fresh) process, timing its parts; write JSON to a file."""
    spec = json.loads(spec_json)
    os.environ["VIGIL_HOME"] = spec["home"]
    os.environ["VIGIL_DATABASE_URL"] = spec["db"]
    t_start = time.perf_counter()

    def rss_mb() -> float:
        return _status_kb(os.getpid(), "VmRSS") / 1024

    import httpx

    import vigil.exchange.sync as S
    import vigil.exchange.verify as V
    from vigil.audit import AuditLog
    from vigil.node import audit_key
    from vigil.store import make_engine, migrate

    stats: Counter[str] = Counter()
    lock = threading.Lock()

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    stats[name] += time.perf_counter() - t
        return wrapper

    # verify, convert and page decoding run in the fetch thread (overlapped with writes)
    V.verify_page = timed("verify", V.verify_page)
    V.to_entry_records = timed("convert", V.to_entry_records)
    V.orjson = types.SimpleNamespace(loads=timed("decode", V.orjson.loads),
                                     dumps=V.orjson.dumps, OPT_SORT_KEYS=V.orjson.OPT_SORT_KEYS)
    page = S._Client.page

    def counted_page(self: Any, *a: Any, **k: Any) -> httpx.Response:
        t = time.perf_counter()
        r = page(self, *a, **k)
        with lock:
            stats["fetch (overlapped)"] += time.perf_counter() - t
            stats["pages"] += 1
            stats["body_bytes"] += len(r.content)
        return r

    S._Client.page = counted_page  # type: ignore[method-assign]

    class Timed(S.PeerSyncer):
        def _write(self, *a: Any, **k: Any) -> bool:
            t = time.perf_counter()
            try:
                return super()._write(*a, **k)
            finally:
                stats["apply"] += time.perf_counter() - t
                stats["transactions"] += 1

    samples: list[tuple[float, int, float]] = []  # (seconds, records so far, RSS MB)
    done = [0]
    stop = threading.Event()

    def sampler(t0: float) -> None:
        while not stop.wait(0.25):
            samples.append((time.perf_counter() - t0, done[0], rss_mb()))

    def progress(fs: Any) -> None:
        done[0] = fs.after - fs.before

    engine = make_engine(spec["db"])
    migrate(engine)
    home = Path(spec["home"])
    audit = AuditLog(engine, audit_key(home), home / "audit")
    import_s = time.perf_counter() - t_start
    rss_before = rss_mb()
    t0 = time.perf_counter()
    th = threading.Thread(target=sampler, args=(t0,), daemon=True)
    th.start()
    syncer = Timed(engine, home, PEER, page_size=spec["page_size"], audit=audit,
                   progress=progress)
    result = syncer.run()
    total = time.perf_counter() - t0
    stop.set()
    th.join(timeout=2)
    engine.dispose()
    res = S.summary(result)
    feeds = res["feeds"]
    out = {
        "ok": result.ok, "error": result.error or next((f["error"] for f in feeds if f["error"]),
                                                       None),
        "records": sum(f["to"] - f["from"] for f in feeds),
        "added": sum(f["added"] for f in feeds), "updated": sum(f["updated"] for f in feeds),
        "removed": sum(f["removed"] for f in feeds),
        "seconds": total, "startup_s": import_s, "rss_before_mb": rss_before,
        # VmHWM, not ru_maxrss: Linux carries the forking parent's peak over exec into
        # ru_maxrss, and the parent here held the origin's fill
        "peak_rss_mb": _status_kb(os.getpid(), "VmHWM") / 1024,
        "samples": samples, "stats": dict(stats),
    }
    Path(spec["out"]).write_text(json.dumps(out))


def run_sync(node: Node, page_size: int, label: str, profile: bool = False) -> dict[str, Any]:
    """The receiver's sync in a child process; returns its figures (and wall time)."""
    out = OUT / f"fed-sync-{node.tag}.json"
    out.unlink(missing_ok=True)
    spec = json.dumps({"home": str(node.home), "db": node.db, "page_size": page_size,
                       "out": str(out)})
    cmd = [sys.executable, __file__, "--child", spec]
    spy = REPO / ".venv" / "bin" / "py-spy"
    prof = OUT / f"fed-pyspy-{label}.txt"
    if profile and spy.exists():  # py-spy as the parent: no ptrace permission needed
        cmd = [str(spy), "record", "--rate", "100", "--idle", "--format", "raw",
               "--output", str(prof), "--", *cmd]
    la = load1()
    t = time.perf_counter()
    p = subprocess.run(cmd, env=node.env, capture_output=True, text=True, timeout=7200,
                       check=False)
    wall = time.perf_counter() - t
    if p.returncode or not out.exists():
        raise SystemExit(f"sync ({label}) failed ({p.returncode}): {p.stderr[-3000:]}")
    r = json.loads(out.read_text())
    if not r["ok"]:
        raise SystemExit(f"sync ({label}) reported an error: {r['error']}")
    r.update(process_wall_s=wall, load_before=la, load_after=load1())
    if profile and prof.exists():
        r["profile"] = hot_lines(prof)
    return r


def hot_lines(path: Path, top: int = 14) -> dict[str, Any]:
    """From py-spy raw output: share of the main thread's samples under each vigil line
    (inclusive), and the innermost frames (self)."""
    incl: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit() or "vigil-feed-fetch" in stack or "_sampler" in stack \
                or "sampler (" in stack:
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not any("run (" in f and "exchange/sync.py" in f for f in frames):
            continue  # not inside the sync (start-up, imports)
        k = int(n)
        total += k
        seen = set()
        for f in frames:
            if "vigil/" in f and f not in seen:
                seen.add(f)
                incl[f.split("site-packages/")[-1].replace(f"{REPO}/src/", "")] += k
        self_[frames[-1].split("site-packages/")[-1]] += k
    total = total or 1
    return {"samples": total,
            "inclusive": [(f, round(v / total, 3)) for f, v in incl.most_common(top)],
            "self": [(f, round(v / total, 3)) for f, v in self_.most_common(top)]}


def run_cli_sync(node: Node, page_size: int) -> dict[str, Any]:
    """A whole `vigil peer sync` command, timed from outside (interpreter start included)."""
    la = load1()
    t = time.perf_counter()
    p = subprocess.run([_vigil(), "peer", "sync", PEER, "--json", "--page-size",
                        str(page_size)], env=node.env, capture_output=True, text=True,
                       timeout=600, check=False)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"vigil peer sync failed: {p.stderr[-2000:]}")
    feeds = json.loads(p.stdout)[0]["feeds"]
    return {"seconds": wall, "records": sum(f["to"] - f["from"] for f in feeds),
            "load_before": la, "load_after": load1()}


def time_materialise(node: Node, entries: int) -> dict[str, float]:
    """The origin's materialising alone: a second feed of the bank (labels category and
    series: another chain than the receivers' category-only feed), in this process."""
    from vigil.exchange.feeds import materialise
    from vigil.exchange.records import Descriptor
    from vigil.node import signing_key
    from vigil.store import make_engine

    engine = make_engine(node.db)
    key = signing_key(node.home)
    d = Descriptor(node.agency, BANK, ("category", "series"), False)
    la = load1()
    t = time.perf_counter()
    end = materialise(engine, key, BANK, d, 2**62)
    dt = time.perf_counter() - t
    engine.dispose()
    return {"records": end, "seconds": dt, "per_s": end / dt, "load_before": la,
            "load_after": load1()}


# ---- main ---------------------------------------------------------------------------------


def _fmt_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _rss_at(samples: list[list[float]], records: int, fraction: float) -> float:
    """RSS (MB) of the syncing process when it had applied ``fraction`` of the records."""
    want = records * fraction
    for _, n, rss in samples:
        if n >= want:
            return rss
    return samples[-1][2] if samples else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--md5-share", type=float, default=0.2,
                    help="share of MD5 entries (the rest are PDQ codes)")
    ap.add_argument("--page-size", type=int,
                    help="records per feed request (default: the node's, sync.DEFAULT_PAGE)")
    ap.add_argument("--changes", type=int, default=1000, help="changes per incremental sync")
    ap.add_argument("--rounds", type=int, default=4, help="incremental sync rounds")
    ap.add_argument("--workers", type=int, help="origin server workers (vigil serve default)")
    ap.add_argument("--url", help="PostgreSQL URL (default: SQLite files in the node homes)")
    ap.add_argument("--profile", action="store_true",
                    help="run the cold initial sync under py-spy and list its hot lines")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--lazy-feed", action="store_true",
                    help="share with --no-materialise: the first sync makes the origin build "
                         "the feed while serving it (the 'cold' case before eager feeds)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child)
        return
    if args.page_size is None:
        from vigil.exchange.sync import DEFAULT_PAGE

        args.page_size = DEFAULT_PAGE
    OUT.mkdir(exist_ok=True)
    store = "postgresql" if args.url else "sqlite"
    res: dict[str, Any] = {"entries": args.entries, "store": store,
                           "page_size": args.page_size, "load_start": os.getloadavg()}
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    say(f"origin {ORIGIN}: init, fill {args.entries:,} entries ...")
    sg = make_node("sg", ORIGIN, args.entries, args.url)
    res["fill"] = fill_origin(sg, args.entries, args.md5_share)
    say(f"  filled in {res['fill']['seconds']:.1f} s ({res['fill']['per_s']:,.0f}/s)")
    say("sharing (builds the signed feed unless --lazy-feed) ...")
    la = load1()
    t = time.perf_counter()
    sg.cli("bank", "share", BANK, RECEIVER,  # default: signals + category
           *(["--no-materialise"] if args.lazy_feed else []), timeout=3600)
    res["share"] = {"seconds": time.perf_counter() - t, "load": la, "lazy": args.lazy_feed}
    say(f"  shared in {res['share']['seconds']:.1f} s")
    receivers = {tag: make_node(tag, RECEIVER, args.entries, args.url)
                 for tag in ("hk", "hk2")}
    port = _free_port()
    say("starting the origin's vigil serve ...")
    t = time.perf_counter()
    proc = start_server(sg, port, args.workers)
    res["origin_ready_s"] = time.perf_counter() - t
    relay = Relay(port)
    try:
        for tag, rx in receivers.items():
            token = sg.cli("peer", "grant", RECEIVER, "--name", f"bench-{tag}").stdout.strip()
            rx.cli("peer", "add", PEER, f"http://{HOST}:{relay.port}", "--key", sg.public_key,
                   "--token", token)
        runs: dict[str, Any] = {}
        for label, rx in (("cold", receivers["hk"]), ("warm", receivers["hk2"])):
            say(f"initial sync ({label}) ...")
            relay.reset()
            with RssSampler(proc.pid) as origin_rss:
                r = run_sync(rx, args.page_size, label, profile=args.profile and label == "cold")
            r["wire"] = relay.counts()
            r["origin_rss_start_mb"] = origin_rss.start / 1024
            r["origin_rss_peak_mb"] = origin_rss.peak / 1024
            runs[label] = r
            say(f"  {r['records']:,} records in {r['seconds']:.1f} s, "
                f"{r['wire']['down'] / MB:.1f} MB down, peak RSS {r['peak_rss_mb']:.0f} MB")
            if r["records"] != args.entries:
                raise SystemExit(f"sync ({label}) moved {r['records']} records, "
                                 f"not {args.entries}")
        res["initial"] = runs
        say("materialising a second feed in-process ...")
        res["materialise"] = time_materialise(sg, args.entries)
        say(f"  {res['materialise']['seconds']:.1f} s")

        incr = []
        for i in range(args.rounds):
            made = make_changes(sg, args.changes, i)
            order = [("cli", receivers["hk"]), ("in-process", receivers["hk2"])]
            if i % 2:
                order.reverse()
            row: dict[str, Any] = {"round": i, "made": made}
            for pos, (how, rx) in enumerate(order):
                relay.reset()
                if how == "cli":
                    r = run_cli_sync(rx, args.page_size)
                else:
                    r = run_sync(rx, args.page_size, f"incr-{i}")
                    r.pop("samples", None)
                r["wire"] = relay.counts()
                r["materialised_here"] = pos == 0
                row[how] = r
            incr.append(row)
            say(f"  round {i}: {made}; cli {row['cli']['seconds']:.2f} s, in-process "
                f"{row['in-process']['seconds']:.2f} s")
        res["incremental"] = incr
        # the command's fixed cost: nothing new at the origin
        res["cli_noop"] = [run_cli_sync(receivers["hk"], args.page_size) for _ in range(3)]
    finally:
        relay.close()
        stop_server(proc)
    res["load_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    (OUT / f"fed-results-{args.entries}-{store}-p{args.page_size}.json").write_text(
        json.dumps(res, indent=1))
    report(res)


def report(res: dict[str, Any]) -> None:
    n = res["entries"]
    cold, warm = res["initial"]["cold"], res["initial"]["warm"]
    mat = res["materialise"]
    print(f"\n{n:,} entries, {res['store']}, page {res['page_size']}; load average at start "
          f"{res['load_start'][0]:.2f}, at end {res['load_end'][0]:.2f}\n")
    rows = [["initial sync", "records", "sync s", "records/s", "wire MB down", "wire MB up",
             "body B/record", "receiver peak RSS MB", "receiver RSS start→50%→end MB",
             "origin RSS peak MB (start)", "load 1-min"]]
    for label, r in (("first reader (cold unless shared eagerly)", cold),
                     ("second reader (feed stored)", warm)):
        s = r["samples"]
        rows.append([label, f"{r['records']:,}", f"{r['seconds']:.1f}",
                     f"{r['records'] / r['seconds']:,.0f}", f"{r['wire']['down'] / MB:.1f}",
                     f"{r['wire']['up'] / MB:.2f}",
                     f"{r['stats'].get('body_bytes', 0) / max(1, r['records']):.0f}",
                     f"{r['peak_rss_mb']:.0f}",
                     f"{r['rss_before_mb']:.0f}→{_rss_at(s, r['records'], 0.5):.0f}→"
                     f"{_rss_at(s, r['records'], 1.0):.0f}",
                     f"{r['origin_rss_peak_mb']:.0f} ({r['origin_rss_start_mb']:.0f})",
                     f"{r['load_before']:.2f}–{r['load_after']:.2f}"])
    rows.append(["materialise alone (in-process)", f"{mat['records']:,}",
                 f"{mat['seconds']:.1f}", f"{mat['per_s']:,.0f}", "", "", "", "", "", "",
                 f"{mat['load_before']:.2f}–{mat['load_after']:.2f}"])
    print(_fmt_table(rows))

    rows = [["sync time breakdown (s)", "decode JSON (fetch thread)", "verify (fetch thread)",
             "convert (fetch thread)", "write transactions (main thread, incl. waiting)",
             "transactions", "fetch, overlapped", "pages", "total"]]
    for label, r in (("cold", cold), ("warm", warm)):
        st = r["stats"]
        rows.append([label, f"{st.get('decode', 0):.1f}", f"{st.get('verify', 0):.1f}",
                     f"{st.get('convert', 0):.1f}", f"{st.get('apply', 0):.1f}",
                     f"{st.get('transactions', 0):.0f}",
                     f"{st.get('fetch (overlapped)', 0):.1f}", f"{st.get('pages', 0):.0f}",
                     f"{r['seconds']:.1f}"])
    print(_fmt_table(rows))

    rows = [["incremental round", "changes (add/relabel/remove)", "in-process s",
             "`vigil peer sync` wall s", "first reader", "KB down", "load 1-min"]]
    for row in res["incremental"]:
        m, ip, cli = row["made"], row["in-process"], row["cli"]
        first = "in-process" if ip["materialised_here"] else "cli"
        rows.append([str(row["round"]), f"{m['added']}/{m['updated']}/{m['removed']}",
                     f"{ip['seconds']:.3f}", f"{cli['seconds']:.2f}", first,
                     f"{(ip['wire']['down']) / 1024:.0f}",
                     f"{ip['load_before']:.2f}"])
    print(_fmt_table(rows))
    ips = [row["in-process"]["seconds"] for row in res["incremental"]]
    clis = [row["cli"]["seconds"] for row in res["incremental"]]
    ip_cold = [row["in-process"]["seconds"] for row in res["incremental"]
               if row["in-process"]["materialised_here"]] or ips
    startup = statistics.median([row["in-process"]["startup_s"] for row in res["incremental"]])

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    peak_growth = cold["peak_rss_mb"] - cold["rss_before_mb"]
    tgt = [["target", "measured", "ratio", "verdict"],
           [f"initial sync ≤ {TARGET_INITIAL_S:.0f} s (cold)", f"{cold['seconds']:.1f} s",
            f"{cold['seconds'] / TARGET_INITIAL_S:.2f}×",
            verdict(cold["seconds"] <= TARGET_INITIAL_S)],
           [f"initial sync ≤ {TARGET_INITIAL_S:.0f} s (warm)", f"{warm['seconds']:.1f} s",
            f"{warm['seconds'] / TARGET_INITIAL_S:.2f}×",
            verdict(warm["seconds"] <= TARGET_INITIAL_S)],
           ["memory flat (receiver peak − start)", f"+{peak_growth:.0f} MB", "",
            "compare sizes"],
           [f"incremental ≤ {TARGET_INCREMENTAL_S:.0f} s (in-process, max of first reads)",
            f"{max(ip_cold):.3f} s", f"{max(ip_cold) / TARGET_INCREMENTAL_S:.2f}×",
            verdict(max(ip_cold) <= TARGET_INCREMENTAL_S)],
           [f"incremental ≤ {TARGET_INCREMENTAL_S:.0f} s (`vigil peer sync`, max)",
            f"{max(clis):.2f} s", f"{max(clis) / TARGET_INCREMENTAL_S:.2f}×",
            verdict(max(clis) <= TARGET_INCREMENTAL_S)]]
    print(_fmt_table(tgt))
    noop = [r["seconds"] for r in res.get("cli_noop", [])]
    if noop:
        print(f"`vigil peer sync` with nothing new (the command's fixed cost: interpreter, "
              f"imports, requests, audit): {', '.join(f'{x:.2f}' for x in noop)} s")
    sh = res.get("share")
    if sh:
        print(f"`vigil bank share` at the origin: {sh['seconds']:.1f} s (load {sh['load']:.2f}; "
              + ("feed left to the first pull)" if sh["lazy"] else "builds the whole feed)"))
    print(f"origin fill (not counted): {res['fill']['added']:,} in "
          f"{res['fill']['seconds']:.1f} s ({res['fill']['per_s']:,.0f}/s, load "
          f"{res['fill']['load']:.2f}); origin server ready in {res['origin_ready_s']:.1f} s; "
          f"sync process start-up (imports, engine, migrate check) median {startup:.2f} s")
    for label, r in (("cold", cold), ("warm", warm)):
        s = r["samples"]
        pts = [f"{_rss_at(s, r['records'], f):.0f}" for f in (0.1, 0.25, 0.5, 0.75, 1.0)]
        print(f"receiver RSS ({label}) at 10/25/50/75/100% of records: {' / '.join(pts)} MB")
    if "profile" in cold:
        p = cold["profile"]
        print(f"py-spy (cold sync, wall clock, main thread, {p['samples']} samples), "
              "inclusive share per vigil line:")
        for f, v in p["inclusive"]:
            print(f"  {v:6.1%}  {f}")
        print("innermost frames (self):")
        for f, v in p["self"]:
            print(f"  {v:6.1%}  {f}")


if __name__ == "__main__":
    main()

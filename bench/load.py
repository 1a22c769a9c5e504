"""Load on a real node: `vigil serve` (uvicorn, 2 workers, PostgreSQL) with a large PDQ bank.

What it measures (issue 6, "Benchmarks"), with the load coming from a separate process
over loopback:

* single-signal ``POST /v1/match`` requests/s with p50/p99 latency at 8 and 64 clients;
* 1,000-signal batches per second and their p99 latency;
* time from adding an entry through the API to its first match (and to a steady match
  on fresh connections, i.e. in both workers);
* server memory per worker (VmRSS, VmHWM, RssAnon/RssFile, PSS) from /proc;
* CPU shares of the workers, their PostgreSQL backends, the load client and everything
  else on the machine, so a figure can be read against what actually had the cores;
* where a request's time goes: each per-request step timed alone in this process, and
  (``--profile``) py-spy wall-clock samples of a worker under load.

The bank is filled directly through ``Banks.apply`` (COPY on PostgreSQL), timed. It holds
random PDQ codes plus ``--planted`` known codes; "hit" queries are planted codes with
``--flip`` bits flipped (a near-duplicate within the default threshold), "miss" queries
are fresh random codes. Random codes are the easy case for a multi-index (few candidates
per query); see bench/matching.py for clustered banks.

The client is a minimal HTTP/1.1 keep-alive client on asyncio (uvloop): it costs far less
CPU per request than httpx, which matters because it shares the 2 cores with the server.

Run: .venv/bin/python -m bench.load [--entries 1000000] [--duration 15] [--reuse] [--repeat 3]
     [--profile] [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
     [--sql-fill] [--quick]
``--sql-fill`` fills the random part of the bank inside PostgreSQL (10M in minutes rather
than hours); ``--quick`` runs only the single-signal runs and one batch run.
``--repeat N`` (default 3): the load runs are repeated on N servers started one after the
other (fresh worker processes each time, same bank), and every figure is reported as
min / median / max over them, with the load average; freshness, memory, the profile and
the breakdown are measured once, on the last server.
The token and the node's home live under bench/out/load-home (git-ignored); the bank
lives in schema ``bench_load_<entries>`` (dropped and recreated unless ``--reuse``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script
from bench._data import fresh_schema
from bench._proc import children as _children
from bench._proc import stop_server
from bench._spread import SPREAD_NOTE, Runs, add_repeat_argument, spread_cell, verdict

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
#: the bench node's VIGIL_HOME: one per bank size (``main`` sets it), so a 1M run does not
#: re-initialise the node of a 10M bank and lose it for ``--reuse``
HOME = Path(os.environ.get("VIGIL_BENCH_HOME") or OUT / "load-home")
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
APP_NAME = "vigil_load"  # application_name of the server's PostgreSQL connections
HOST = "127.0.0.1"
BANK = "bench"
TICK = os.sysconf("SC_CLK_TCK")
PLANTED_SEED, MISS_SEED, BANK_SEED = 7, 9, 11

# ---- the store ---------------------------------------------------------------------------


def _schema_url(url: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": APP_NAME}
    ).render_as_string(hide_password=False)


def planted_codes(n: int) -> np.ndarray:
    return np.random.default_rng(PLANTED_SEED).integers(0, 256, (n, 32), dtype=np.uint8)


def _hexes(codes: np.ndarray) -> list[str]:
    h = codes.tobytes().hex()
    return [h[i:i + 64] for i in range(0, len(h), 64)]


def fill_bank(url: str, entries: int, planted: int) -> dict[str, float]:
    """Create the bank and add ``entries`` PDQ codes (the first ``planted`` are known)."""
    from vigil.banks import Banks
    from vigil.banks.entry import EntryRecord, Labels
    from vigil.store import make_engine

    engine = make_engine(url)
    banks = Banks(engine, user="bench")
    banks.create(BANK, "BENCH", description="load benchmark (random PDQ codes)")
    known = Labels(category=("us", "1"), series="load-planted", victim_status="unknown")
    other = Labels(category=("us", "0"))
    rng = np.random.default_rng(BANK_SEED)

    def records():
        for h in _hexes(planted_codes(planted)):
            yield EntryRecord("pdq", h, known, quality=100)
        left = entries - planted
        while left > 0:
            n = min(left, 100_000)
            for h in _hexes(rng.integers(0, 256, (n, 32), dtype=np.uint8)):
                yield EntryRecord("pdq", h, other, quality=100)
            left -= n

    t = time.perf_counter()
    last = [t]
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  filled {done[0]:,} in {last[0] - t:.0f} s", file=sys.stderr, flush=True)

    r = banks.apply(BANK, records(), source="bench-load", progress=progress)
    dt = time.perf_counter() - t
    engine.dispose()
    return {"added": r.added, "seconds": dt, "per_s": r.added / dt}


def fill_bank_sql(url: str, entries: int, planted: int,
                  chunk: int = 500_000) -> dict[str, float]:
    """Bench-only fast fill for very large banks (``--sql-fill``): the planted codes go
    through ``Banks.apply`` as usual, the random rest is generated by PostgreSQL itself
    (``generate_series``, ``md5(random())``), entries and their change-log rows, in
    transactions of ``chunk`` rows. What a node serves is the same as after an import (the
    index is built from the live entries, the change log is complete and gap-free); only
    the time to fill is not an import's (see the imports section for those figures)."""
    from sqlalchemy import text

    from vigil.banks import Banks
    from vigil.banks.entry import EntryRecord, Labels
    from vigil.store import make_engine

    engine = make_engine(url)
    if engine.dialect.name != "postgresql":
        raise SystemExit("--sql-fill needs PostgreSQL")
    banks = Banks(engine, user="bench")
    banks.create(BANK, "BENCH", description="load benchmark (random PDQ codes)")
    known = Labels(category=("us", "1"), series="load-planted", victim_status="unknown")
    t = time.perf_counter()
    banks.apply(BANK, (EntryRecord("pdq", h, known, quality=100)
                       for h in _hexes(planted_codes(planted))), source="bench-load")
    info = banks.get(BANK)
    labels = json.dumps({"category_scheme": "us", "category": "0", "series": None,
                         "victim_status": "unknown", "tags": [], "note": None})
    first, last = info.last_seq + 1, info.last_seq + entries - planted
    starts = range(first, last + 1, chunk)
    for k, lo in enumerate(starts):
        hi = min(last, lo + chunk - 1)
        with engine.begin() as conn:  # a seed of its own per chunk: reproducible, distinct
            conn.execute(text("SELECT setseed(:s)"), {"s": (k + 1) / (len(starts) + 1)})
            conn.execute(text(
                "INSERT INTO entries (bank_id, signal_type, value, quality, category_scheme,"
                " category, series, victim_status, tags, note, origin_agency, source,"
                " source_id, added_by, added_at, updated_at, seq, removed, extra)"
                " SELECT :bank, 'pdq', md5(random()::text) || md5(random()::text), 100,"
                " 'us', '0', NULL, 'unknown', '[]'::json, NULL, 'BENCH', 'bench-load-sql',"
                " NULL, 'bench', now(), now(), g, false, '{}'::json"
                " FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g"),
                {"bank": info.id, "lo": lo, "hi": hi})
            conn.execute(text(
                "INSERT INTO changes (bank_id, seq, op, entry_id, signal_type, at, by, labels)"
                " SELECT bank_id, seq, 'add', id, 'pdq', added_at, 'bench', CAST(:labels AS json)"
                " FROM entries WHERE bank_id = :bank AND seq BETWEEN :lo AND :hi"
                " ORDER BY seq"), {"bank": info.id, "lo": lo, "hi": hi, "labels": labels})
            conn.execute(text("UPDATE banks SET last_seq = :hi, updated_at = now()"
                              " WHERE id = :bank"), {"bank": info.id, "hi": hi})
        print(f"  filled {hi:,} in {time.perf_counter() - t:.0f} s", file=sys.stderr,
              flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE entries"))
        conn.execute(text("ANALYZE changes"))
    dt = time.perf_counter() - t
    engine.dispose()
    return {"added": entries, "seconds": dt, "per_s": entries / dt, "sql_fill": True}


def init_node(url: str) -> str:
    """`vigil init` in a fresh VIGIL_HOME; returns the admin token (never printed)."""
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    p = subprocess.run([_vigil(), "init", "--agency", "BENCH", "--name", "Bench",
                        "--jurisdiction", "XX"], env=_env(url), capture_output=True,
                       text=True, timeout=120, check=False)
    if p.returncode:
        raise SystemExit(f"vigil init failed: {p.stderr[-2000:]}")
    token = next((w for w in p.stdout.split() if w.startswith("vgl_")), None)
    if token is None:
        raise SystemExit("vigil init printed no token")
    path = HOME / "bench-token"
    path.write_text(token)
    path.chmod(0o600)
    return token


def _vigil() -> str:
    local = REPO / ".venv" / "bin" / "vigil"
    return str(local) if local.exists() else (shutil.which("vigil") or "vigil")


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(VIGIL_HOME=str(HOME), VIGIL_DATABASE_URL=url)
    return env


# ---- processes and /proc ------------------------------------------------------------------




def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                .decode(errors="replace"))
    except OSError:
        return ""


def worker_pids(server: int) -> list[int]:
    return sorted(p for p in _children(server) if "spawn_main" in _cmdline(p))


def cpu_seconds(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds, total CPU seconds) of the whole machine, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    total = sum(f[:8])
    return (total - idle) / TICK, total / TICK


def memory(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile (MB) from status; Pss from smaps_rollup."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0]) / 1024
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


class CpuSampler:
    """CPU seconds of the workers, their PostgreSQL backends and the machine over a span.

    Backends are found by application_name every second; one that closes between two
    samples loses its last second (pool overflow connections come and go).
    """

    def __init__(self, url: str, workers: list[int]) -> None:
        self.url, self.workers = url, workers
        self.backends: dict[int, tuple[float, float]] = {}  # pid -> (first, last) seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _backend_pids(self) -> list[int]:
        try:
            p = subprocess.run(["psql", "-h", HOST, "-U", "postgres", "-d", "test", "-Atc",
                                f"select pid from pg_stat_activity where application_name="
                                f"'{APP_NAME}'"], capture_output=True, text=True, timeout=10,
                               check=False)
            return [int(x) for x in p.stdout.split()]
        except (OSError, subprocess.SubprocessError, ValueError):
            return []

    def _sample(self) -> None:
        for pid in self._backend_pids():
            c = cpu_seconds(pid)
            first, _ = self.backends.get(pid, (c, c))
            self.backends[pid] = (first, c)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self.t0 = time.perf_counter()
        self.w0 = sum(cpu_seconds(p) for p in self.workers)
        self.m0 = machine_busy()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self._sample()
        self.wall = time.perf_counter() - self.t0
        self.worker_cpu = sum(cpu_seconds(p) for p in self.workers) - self.w0
        self.pg_cpu = sum(last - first for first, last in self.backends.values())
        m1 = machine_busy()
        self.machine_cpu = m1[0] - self.m0[0]
        self.machine_total = m1[1] - self.m0[1]


# ---- the HTTP client (separate process) -------------------------------------------------


def _request(path: str, token: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    req: bytes) -> tuple[int, bytes]:
    writer.write(req)
    status = int((await reader.readline()).split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


_MATCHED = re.compile(rb'"matched":(\d+)')


async def _client(port: int, token: str, bodies: list[bytes], concurrency: int,
                  duration: float, warmup: float, max_requests: int) -> dict[str, object]:
    reqs = [_request("/v1/match", token, b) for b in bodies]
    t_start = time.perf_counter()
    t_measure, deadline = t_start + warmup, t_start + warmup + duration
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    matched = [0, 0]  # responses with a match, signals matched
    sent = [0]

    async def one(k: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        i = k * 7919
        try:
            while sent[0] < max_requests:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    break
                sent[0] += 1
                status, data = await _exchange(reader, writer, reqs[i % len(reqs)])
                i += 1
                t1 = time.perf_counter()
                if t0 >= t_measure:
                    lat.append(t1 - t0)
                    statuses[status] += 1
                    m = _MATCHED.search(data)
                    if m and int(m.group(1)):
                        matched[0] += 1
                        matched[1] += int(m.group(1))
        finally:
            writer.close()

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(one(k) for k in range(concurrency)))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    end = time.perf_counter()
    window = max(1e-9, min(end, deadline) - t_measure) if lat else 1e-9
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return {"requests": len(lat), "window_s": window, "per_s": len(lat) / window,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": lat[-1] * 1000 if lat else float("nan"),
            "mean_ms": statistics.fmean(lat) * 1000 if lat else float("nan"),
            "statuses": {str(k): v for k, v in statuses.items()},
            "responses_with_match": matched[0], "signals_matched": matched[1],
            "client_cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "client_wall_s": end - t_start}


def client_main(spec: str) -> None:
    s = json.loads(spec)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    bodies = [b.encode() for b in json.loads(Path(s["bodies"]).read_text())]
    token = (HOME / "bench-token").read_text().strip()
    r = asyncio.run(_client(s["port"], token, bodies, s["concurrency"], s["duration"],
                            s["warmup"], s["max_requests"]))
    print(json.dumps(r))


def make_bodies(planted: int, flip: int, count: int, batch: int, hit_rate: float,
                seed: int) -> list[str]:
    """JSON bodies of ``batch`` signals; a share ``hit_rate`` are planted near-duplicates."""
    rng = np.random.default_rng(seed)
    base = planted_codes(planted)
    miss = np.random.default_rng(MISS_SEED + seed)
    out = []
    for _ in range(count):
        codes = miss.integers(0, 256, (batch, 32), dtype=np.uint8)
        hits = rng.random(batch) < hit_rate
        for j in np.flatnonzero(hits):
            c = base[rng.integers(planted)].copy()
            bits = np.unpackbits(c)
            bits[rng.choice(256, flip, replace=False)] ^= 1
            codes[j] = np.packbits(bits)
        out.append(json.dumps({"signals": [{"type": "pdq", "value": h}
                                           for h in _hexes(codes)]}))
    return out


def run_client(port: int, bodies_path: Path, concurrency: int, duration: float,
               warmup: float, max_requests: int) -> dict[str, object]:
    spec = json.dumps({"port": port, "bodies": str(bodies_path), "concurrency": concurrency,
                       "duration": duration, "warmup": warmup, "max_requests": max_requests})
    p = subprocess.run([sys.executable, __file__, "--client", spec], capture_output=True,
                       text=True, timeout=duration + warmup + 300, check=False)
    if p.returncode:
        raise SystemExit(f"client failed: {p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---- the server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> int:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                      .encode())
            return int(s.recv(64).split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def start_server(url: str, port: int, workers: int, timeout: float,
                 **env_extra: str) -> tuple[subprocess.Popen, float]:
    log = open(OUT / "load-serve.log", "w")  # noqa: SIM115 (kept open for the child)
    t = time.perf_counter()
    proc = subprocess.Popen([_vigil(), "serve", "--workers", str(workers), "--port", str(port),
                             "--log-level", "warning"], env={**_env(url), **env_extra},
                            stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    ok = 0
    while time.perf_counter() - t < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"vigil serve exited ({proc.returncode}); see {log.name}")
        ok = ok + 1 if _get(port, "/readyz") == 200 else 0
        if ok >= 10:  # ten fresh connections in a row: both workers are ready
            return proc, time.perf_counter() - t
        time.sleep(0.1 if ok else 0.5)
    stop_server(proc)
    raise SystemExit(f"server not ready after {timeout:.0f} s")




def load_run(name: str, url: str, port: int, workers: list[int], bodies: Path,
             concurrency: int, args: argparse.Namespace) -> dict[str, object]:
    """One timed load run, with the CPU each party used during it."""
    print(f"load: {name} ...", file=sys.stderr, flush=True)
    with CpuSampler(url, workers) as cpu:
        r = run_client(port, bodies, concurrency, args.duration, args.warmup, 2_000_000)
    r.update(wall_s=cpu.wall, worker_cpu_share=cpu.worker_cpu / cpu.wall,
             pg_cpu_share=cpu.pg_cpu / cpu.wall,
             client_cpu_share=float(r["client_cpu_s"]) / float(r["client_wall_s"]),
             machine_cpu_share=cpu.machine_cpu / cpu.wall,
             cores=cpu.machine_total / cpu.wall, loadavg=os.getloadavg()[0])
    r["other_cpu_share"] = max(0.0, float(r["machine_cpu_share"]) - float(
        r["worker_cpu_share"]) - float(r["pg_cpu_share"]) - float(r["client_cpu_share"]))
    print(f"  {r['per_s']:.0f}/s p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f} ms "
          f"statuses {r['statuses']}", file=sys.stderr, flush=True)
    return r


# ---- freshness: add through the API, poll until it matches --------------------------------


async def _fresh_match(port: int, token: str, body: bytes) -> bool:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        status, data = await _exchange(reader, writer, _request("/v1/match", token, body))
    finally:
        writer.close()
    m = _MATCHED.search(data)
    return status == 200 and bool(m and int(m.group(1)))


async def freshness(port: int, token: str, trials: int, seed: int,
                    limit_s: float = 30.0) -> list[dict[str, float]]:
    """Per trial: seconds from sending the add to the first match, and to 10 in a row on
    fresh connections (the kernel spreads those over both workers)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        h = _hexes(rng.integers(0, 256, (1, 32), dtype=np.uint8))[0]
        add = json.dumps({"entries": [{"type": "pdq", "value": h, "category": "us:1",
                                       "series": "load-fresh"}]}).encode()
        probe = json.dumps({"signals": [{"type": "pdq", "value": h}]}).encode()
        t0 = time.perf_counter()
        reader, writer = await asyncio.open_connection(HOST, port)
        status, _ = await _exchange(reader, writer,
                                    _request(f"/v1/banks/{BANK}/entries", token, add))
        writer.close()
        t_added = time.perf_counter() - t0
        if status not in (200, 201):
            raise SystemExit(f"adding an entry answered {status}")
        first = steady = float("nan")
        streak = polls = 0
        while time.perf_counter() - t0 < limit_s and polls < 5000:
            polls += 1
            if await _fresh_match(port, token, probe):
                if first != first:  # nan
                    first = time.perf_counter() - t0
                streak += 1
                if streak >= 10:
                    steady = time.perf_counter() - t0
                    break
            else:
                streak = 0
            await asyncio.sleep(0.01)
        out.append({"add_s": t_added, "first_s": first, "steady_s": steady})
        await asyncio.sleep(0.3 + random.random() * 0.4)  # land at other sync phases
    return out


# ---- where a request's time goes (in this process, server idle) ---------------------------


def breakdown(url: str, token: str, planted: int, reps: int) -> dict[str, float]:
    """Each step of a single-signal match, timed alone (ms per call, median of ``reps``)."""
    os.environ["VIGIL_HOME"] = str(HOME)
    os.environ["VIGIL_DATABASE_URL"] = url
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from vigil.api.runtime.auth_cache import authenticate
    from vigil.api.runtime.settings import Settings
    from vigil.api.runtime.state import NodeState
    from vigil.index import codes_from_hex
    from vigil.matching import Query
    from vigil.store import make_engine

    engine = make_engine(url)
    t = time.perf_counter()
    node = NodeState(engine, Settings.from_env())  # maps the index, replays the tail
    open_s = time.perf_counter() - t
    hit = _hexes(planted_codes(1))[0]
    miss = _hexes(np.random.default_rng(123).integers(0, 256, (1, 32), dtype=np.uint8))[0]

    def timed(fn, n: int = reps) -> float:
        fn()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts) * 1000

    def select1() -> None:
        with Session(engine) as s:
            s.execute(text("select 1"))

    def audit() -> None:
        node.audit.append("match", agency="BENCH", actor="bench/breakdown", remote=HOST,
                          detail={"signals": 1, "matched": 0,
                                  "digest": node.audit.digest_signals([("pdq", miss)])})

    code = codes_from_hex([miss])
    r = {
        "index_open_s": open_s,
        "session_select1": timed(select1),
        "authenticate": timed(lambda: authenticate(engine, token)),
        "own_banks": timed(lambda: node.own_banks("BENCH")),
        "index_search_1": timed(lambda: node.index.search_pdq(code, 31)),
        "matcher_miss": timed(lambda: node.matcher.match([[Query("pdq", miss)]])),
        "matcher_hit": timed(lambda: node.matcher.match([[Query("pdq", hit)]])),
        "audit_append": timed(audit),
    }
    batch = [[Query("pdq", h)] for h in _hexes(
        np.random.default_rng(5).integers(0, 256, (1000, 32), dtype=np.uint8))]
    from vigil.api.schemas.models import MatchRequest

    body = json.dumps({"signals": [{"type": "pdq", "value": q[0].value} for q in batch]})
    r["validate_request_1000"] = timed(lambda: MatchRequest.model_validate_json(body),
                                       max(3, reps // 20))
    r["matcher_batch1000_miss"] = timed(lambda: node.matcher.match(batch), max(3, reps // 20))
    r["index_search_1000"] = timed(lambda: node.index.search_pdq(
        codes_from_hex([q[0].value for q in batch]), 31), max(3, reps // 20))
    # What an append costs without its parts: the anchor file, the WAL flush at commit
    from vigil.audit import AuditLog
    from vigil.node import audit_key

    key = audit_key(HOME)
    no_anchor = AuditLog(engine, key, None)
    from sqlalchemy.engine import make_url

    u = make_url(url)
    async_engine = make_engine(u.update_query_dict(
        {"options": "-csynchronous_commit=off " + str(u.query.get("options", ""))}))
    no_flush = AuditLog(async_engine, key, None)

    def appends(log: AuditLog) -> None:
        log.append("match", agency="BENCH", actor="bench/breakdown", remote=HOST,
                   detail={"signals": 1, "matched": 0, "digest": "0" * 64})

    r["audit_append_no_anchor"] = timed(lambda: appends(no_anchor))
    r["audit_append_no_anchor_async_commit"] = timed(lambda: appends(no_flush))

    def contended(fn, n_threads: int = 8) -> float:
        """Calls per second from ``n_threads`` threads at once."""
        each = max(10, reps // 4)
        barrier = threading.Barrier(n_threads)

        def loop() -> None:
            barrier.wait()
            for _ in range(each):
                fn()

        threads = [threading.Thread(target=loop) for _ in range(n_threads)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=300)
        return n_threads * each / (time.perf_counter() - t)

    # the head-row lock serialises appends: this is the node's ceiling of match requests/s
    r["audit_appends_per_s_8_threads"] = contended(audit)
    r["audit_appends_per_s_8_threads_no_anchor_async_commit"] = contended(
        lambda: appends(no_flush))
    r["authenticate_per_s_8_threads"] = contended(lambda: authenticate(engine, token))
    async_engine.dispose()
    engine.dispose()
    return r


# ---- py-spy: where a worker's time goes under load ----------------------------------------

_STEPS = (  # (function, file ending): the innermost match names a sample's step
    ("_anchor", "vigil/audit.py", "audit: anchor file (flock + rename)"),
    ("append", "vigil/audit.py", "audit: append (head-row lock, insert, commit)"),
    ("authenticate", "vigil/node.py", "auth: token lookup in the database"),
    ("own_banks", "vigil/api/runtime/state.py", "own_banks query"),
    ("by_ids", "vigil/banks.py", "entries by id (banks + entries queries)"),
    ("_do_get", "sqlalchemy/pool/impl.py", "waiting for a pooled DB connection"),
    ("search_pdq", "vigil/api/runtime/state.py", "index search (incl. lock wait)"),
    ("serialize_response", "fastapi/routing.py", "response validation/serialisation"),
    ("request_body_to_args", "fastapi/dependencies/utils.py", "request validation"),
    ("_match_out", "vigil/api/routes/match.py", "building match results"),
    ("search_pdq", "vigil/indexes.py", "index search (incl. lock wait)"),
    ("_run", "vigil/api/runtime/state.py", "index sync thread"),
)
_FRAME = re.compile(r"^(.*) \((.*?):\d+\)$")


def _step(stack: str) -> str:
    frames = []
    for f in stack.split(";"):
        m = _FRAME.match(f)
        if m:
            frames.append((m.group(1), m.group(2)))
    for func, path in reversed(frames):
        for name, suffix, step in _STEPS:
            if (func == name or func.endswith("." + name)) and path.endswith(suffix):
                return step
    paths = " ".join(p for _, p in frames)
    if "vigil/" in paths or "fastapi/" in paths:
        return "other request work (FastAPI, pydantic, matching glue)"
    if any(f.endswith("WorkerThread.run") for f, _ in frames):
        return "idle pool thread (waiting for work)"
    if "starlette/" in paths or "uvicorn/" in paths or "anyio/" in paths:
        return "event loop: HTTP, middleware, thread hand-off"
    return "idle or unattributed (pool threads waiting, loop polling)"


def profile(pid: int, seconds: int, out: Path, mode: str) -> dict[str, object]:
    """py-spy samples of one worker: ``--idle`` (wall time of every thread) or ``--gil``
    (only the thread holding the GIL: where the worker's Python CPU goes)."""
    spy = REPO / ".venv" / "bin" / "py-spy"
    if not spy.exists():
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    p = subprocess.run([str(spy), "record", "--pid", str(pid), "--duration", str(seconds),
                        "--rate", "200", f"--{mode}", "--format", "raw", "--output", str(out),
                        "--nonblocking"], capture_output=True, text=True,
                       timeout=seconds + 120, check=False)
    if not out.exists():
        return {"error": (p.stderr or p.stdout)[-500:]}
    steps: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            steps[_step(stack)] += int(n)
    total = sum(steps.values()) or 1
    out: dict[str, object] = {k: round(v / total, 4) for k, v in steps.most_common()}
    busy = {k: v for k, v in steps.items() if not k.startswith(("idle", "event loop"))
            and k != "index sync thread"}
    req = sum(busy.values()) or 1
    out["request threads"] = {k: round(v / req, 4) for k, v in Counter(busy).most_common()}
    out["samples"] = total
    return out


# ---- main ----------------------------------------------------------------------------------


def _fmt_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--planted", type=int, default=1000)
    ap.add_argument("--flip", type=int, default=10, help="bits flipped in hit queries")
    ap.add_argument("--hit-rate", type=float, default=0.5,
                    help="share of queried signals that are planted near-duplicates")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per load run")
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="seconds of load before each measured run: a worker reads each "
                         "hit's entry from the store the first time it matches it (1,000 "
                         "planted entries: ~7,000 hits per worker before all are cached)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the schema, node and bank of an earlier run with --entries")
    ap.add_argument("--profile", type=int, default=10, metavar="S",
                    help="seconds of py-spy on one worker under 64 clients (0: skip)")
    ap.add_argument("--breakdown-reps", type=int, default=200)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--sql-fill", action="store_true",
                    help="fill the random part of the bank in PostgreSQL itself (fast; for "
                         "10M entries, where Banks.apply would take hours)")
    ap.add_argument("--quick", action="store_true",
                    help="only the single-signal runs and one batch run: no freshness, "
                         "profile or breakdown (for comparing changes)")
    ap.add_argument("--compare-route", action="store_true",
                    help="then run the same load with the lean match path off "
                         "(VIGIL_FAST_MATCH=0: every request through the FastAPI route)")
    add_repeat_argument(ap)
    ap.add_argument("--client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client_main(args.client)
        return
    OUT.mkdir(exist_ok=True)
    global HOME
    HOME = OUT / f"load-home-{args.entries}"
    os.environ["VIGIL_BENCH_HOME"] = str(HOME)  # for the client processes
    schema = f"bench_load_{args.entries}"
    res: dict[str, object] = {"entries": args.entries, "planted": args.planted,
                              "flip": args.flip, "hit_rate": args.hit_rate,
                              "load_before": os.getloadavg()}
    state = HOME / "bench-state.json"
    if args.reuse and state.exists() and json.loads(state.read_text()).get("schema") == schema:
        url = _schema_url(args.url, schema)
        token = (HOME / "bench-token").read_text().strip()
        res["fill"] = json.loads(state.read_text())["fill"]
        print(f"reusing schema {schema}", file=sys.stderr)
    else:
        fresh_schema(args.url, schema)  # a new, empty schema
        url = _schema_url(args.url, schema)  # with the application name the CPU probe looks for
        token = init_node(url)
        print(f"filling {args.entries:,} PDQ entries ...", file=sys.stderr, flush=True)
        res["fill"] = (fill_bank_sql if args.sql_fill else fill_bank)(
            url, args.entries, args.planted)
        state.write_text(json.dumps({"schema": schema, "fill": res["fill"]}))
    fill = res["fill"]
    print(f"fill: {fill['added']:,} in {fill['seconds']:.1f} s "  # type: ignore[index]
          f"({fill['per_s']:,.0f}/s)", file=sys.stderr, flush=True)  # type: ignore[index]

    port = _free_port()
    bodies1 = OUT / "load-bodies-1.json"
    bodies1.write_text(json.dumps(make_bodies(args.planted, args.flip, 4000, 1,
                                              args.hit_rate, 1)))
    bodies1k = OUT / "load-bodies-1000.json"
    bodies1k.write_text(json.dumps(make_bodies(args.planted, args.flip, 20, 1000,
                                               args.hit_rate, 2)))
    plan = [("single c=8", bodies1, 8), ("single c=64", bodies1, 64),
            ("batch1000 c=1", bodies1k, 1), ("batch1000 c=4", bodies1k, 4)]
    rec = Runs()
    rounds: list[dict[str, dict[str, object]]] = []
    res["ready_s"] = []
    for i in range(max(1, args.repeat)):
        last = i == max(1, args.repeat) - 1
        rounds.append(rec.record(lambda last=last, i=i: _serve_round(
            args, res, url, port, token, plan, bodies1, bodies1k, last, i)))
    res["rounds"] = rounds
    res["load_line"] = rec.load_line()
    if not args.quick:
        print("breakdown (server stopped) ...", file=sys.stderr, flush=True)
        res["breakdown"] = breakdown(url, token, args.planted, args.breakdown_reps)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    report(res)


def _serve_round(args: argparse.Namespace, res: dict, url: str, port: int, token: str,
                 plan: list, bodies1: Path, bodies1k: Path, last: bool,
                 i: int) -> dict[str, dict[str, object]]:
    """One server start, its load runs, and (on the last one) the once-only measurements."""
    print(f"starting vigil serve (run {i + 1}/{max(1, args.repeat)}) ...", file=sys.stderr,
          flush=True)
    proc, ready_s = start_server(url, port, args.workers, timeout=3600)
    try:
        res["ready_s"].append(ready_s)
        workers = worker_pids(proc.pid)
        res["workers"] = len(workers)
        if last:
            res["memory_idle"] = {str(p): memory(p) for p in workers}
        runs: dict[str, dict[str, object]] = {}
        for name, path, conc in plan[:3] if args.quick else plan:
            runs[name] = load_run(name, url, port, workers, path, conc, args)
        if args.compare_route:  # the anchor: the same server with every request on the route
            stop_server(proc)
            print("restarting vigil serve with VIGIL_FAST_MATCH=0 ...", file=sys.stderr,
                  flush=True)
            proc, _ = start_server(url, port, args.workers, timeout=3600, VIGIL_FAST_MATCH="0")
            workers = worker_pids(proc.pid)
            for name, path, conc in plan[:3]:
                runs[f"route: {name}"] = load_run(name, url, port, workers, path, conc, args)
        if not last:
            return runs
        res["memory_after_load"] = {str(p): memory(p) for p in workers}
        if args.quick:
            return runs
        print("freshness (idle) ...", file=sys.stderr, flush=True)
        res["fresh_idle"] = asyncio.run(freshness(port, token, 10, 1))
        print("freshness (under 64 clients) ...", file=sys.stderr, flush=True)
        bg = subprocess.Popen([sys.executable, __file__, "--client", json.dumps(
            {"port": port, "bodies": str(bodies1), "concurrency": 64, "duration": 20,
             "warmup": 0, "max_requests": 2_000_000})], stdout=subprocess.DEVNULL)
        try:
            time.sleep(2)
            res["fresh_load"] = asyncio.run(freshness(port, token, 5, 2))
        finally:
            bg.wait(timeout=120)

        if args.profile:
            print(f"py-spy on worker {workers[0]} under 64 clients ...", file=sys.stderr,
                  flush=True)
            bg = subprocess.Popen([sys.executable, __file__, "--client", json.dumps(
                {"port": port, "bodies": str(bodies1), "concurrency": 64,
                 "duration": args.profile + 6, "warmup": 0, "max_requests": 2_000_000})],
                stdout=subprocess.DEVNULL)
            try:
                time.sleep(2)
                spies = {}
                with ThreadPoolExecutor(2) as ex:
                    for mode, pid in (("idle", workers[0]), ("gil", workers[-1])):
                        spies[mode] = ex.submit(profile, pid, args.profile,
                                                OUT / f"load-pyspy-{mode}.txt", mode)
                res["profile"] = {m: f.result() for m, f in spies.items()}
            finally:
                bg.wait(timeout=120)
            print("py-spy (GIL) under 1,000-signal batches, 2 clients ...", file=sys.stderr,
                  flush=True)
            bg = subprocess.Popen([sys.executable, __file__, "--client", json.dumps(
                {"port": port, "bodies": str(bodies1k), "concurrency": 2,
                 "duration": args.profile + 6, "warmup": 0, "max_requests": 100_000})],
                stdout=subprocess.DEVNULL)
            try:
                time.sleep(2)
                res["profile"]["gil_batch"] = profile(
                    workers[0], args.profile, OUT / "load-pyspy-gil-batch.txt", "gil")
            finally:
                bg.wait(timeout=120)
        res["memory_end"] = {str(p): memory(p) for p in workers}
        return runs
    finally:
        stop_server(proc)


def report_runs(rounds: list[dict]) -> None:
    """Every run's figures as min / median / max over the server starts."""
    rows = [["run", "req/s", "signals/s", "p50 ms", "p99 ms", "non-200", "workers CPU",
             "PG CPU", "client CPU", "other CPU", "load avg 1 min"]]
    for name in rounds[0]:
        rs = [r[name] for r in rounds if name in r]
        per = 1000 if "batch" in name else 1

        def cell(key: str, fmt: str, rs: list = rs) -> str:
            return spread_cell([float(r[key]) for r in rs], fmt)

        bad = sum(v for r in rs for k, v in r["statuses"].items() if k != "200")
        rows.append([name, cell("per_s", "{:,.1f}"),
                     spread_cell([float(r["per_s"]) * per for r in rs], "{:,.0f}"),
                     cell("p50_ms", "{:.1f}"), cell("p99_ms", "{:.1f}"), str(bad),
                     cell("worker_cpu_share", "{:.2f}"), cell("pg_cpu_share", "{:.2f}"),
                     cell("client_cpu_share", "{:.2f}"), cell("other_cpu_share", "{:.2f}"),
                     cell("loadavg", "{:.2f}")])
    print(f"{len(rounds)} server starts; {SPREAD_NOTE}")
    print(_fmt_table(rows))
    print("(CPU columns in cores of the machine's 2; 'other' = everything else running; "
          "load average at the end of each run; non-200: all runs together)")


def report(res: dict) -> None:
    rounds = res["rounds"]
    report_runs(rounds)
    print(res["load_line"])
    single = [max(float(r["single c=8"]["per_s"]), float(r["single c=64"]["per_s"]))
              for r in rounds]
    p99_8 = [float(r["single c=8"]["p99_ms"]) for r in rounds]
    p99_64 = [float(r["single c=64"]["p99_ms"]) for r in rounds]
    p99_b = [float(r["batch1000 c=1"]["p99_ms"]) for r in rounds]
    tgt = [["target (issue 6)", "measured", "verdict (worst run)"],
           ["single-signal ≥ 2,000/s", spread_cell(single, "{:,.0f}") + "/s",
            verdict(single, 2000)],
           ["p99 ≤ 50 ms (c=8)", spread_cell(p99_8, "{:.1f}") + " ms",
            verdict(p99_8, 50, higher_is_better=False)],
           ["p99 ≤ 50 ms (c=64)", spread_cell(p99_64, "{:.1f}") + " ms",
            verdict(p99_64, 50, higher_is_better=False)],
           ["1,000-batch p99 ≤ 500 ms (c=1)", spread_cell(p99_b, "{:.0f}") + " ms",
            verdict(p99_b, 500, higher_is_better=False)]]
    fi = [f["first_s"] for f in res.get("fresh_idle", [])]
    fl = [f["first_s"] for f in res.get("fresh_load", [])]
    if fi:
        tgt.append(["matchable ≤ 5 s (max first match, last server)", f"{max(fi + fl):.2f} s",
                    "met" if max(fi + fl) <= 5 else "missed"])
    print(_fmt_table(tgt))
    if fi:
        st = [f["steady_s"] for f in res["fresh_idle"] + res.get("fresh_load", [])]
        print(f"fresh entries: first match idle median {statistics.median(fi):.2f} s max "
              f"{max(fi):.2f} s; under 64 clients {(fl and statistics.median(fl)) or 0:.2f} / "
              f"{max(fl or [0]):.2f} s; 10 in a row on fresh connections max "
              f"{max(st):.2f} s")
    print(f"bank fill: {res['fill']['added']:,} entries in {res['fill']['seconds']:.1f} s "
          f"({res['fill']['per_s']:,.0f}/s); server ready in "
          f"{spread_cell(res['ready_s'], '{:.1f}')} s")
    for label in ("memory_idle", "memory_after_load", "memory_end"):
        for pid, m in res.get(label, {}).items():
            print(f"{label} worker {pid}: " + ", ".join(f"{k} {v:,.0f} MB"
                                                      for k, v in m.items()))
    if "breakdown" in res:
        print("breakdown (ms per call, median): " + ", ".join(
            f"{k} {v:.3g}" for k, v in res["breakdown"].items()))
    if "profile" in res:
        print("py-spy:", json.dumps(res["profile"]))


if __name__ == "__main__":
    main()

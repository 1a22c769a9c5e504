"""``vigil scan`` on a synthetic seizure against a 1M-entry bank (issue 4's benchmarks).

The seizure (``--files N``, default 50,000, cached under bench/out/seizure-N/) is built
from the 500 BSDS500 corpus photos only: originals; transformed copies (resize,
recompress, rotate, crop, greyscale, brightness, flip); ≈1% ≈12 MP JPEGs (variants of
bench/_data's 12 MP set: shifted crops re-encoded at q 85-95); exact duplicates (10%);
text files (3%) and random bytes (2%); 1% truncated JPEGs; zip archives of 20 images
each (0.1% of N archives). Every 5th corpus photo is in the bank (see
bench/match_files.py, which builds the shared private store under bench/out/bench-home),
so there are exact and PDQ matches.

Steps (``--steps``, default all):

``profile``  where a worker's time goes, per file, on a sample (every k-th file, one core,
            in this process): read (``read_item``), digests, sniff + open + EXIF, the
            hashing benchmark's fast path (``bench.hashing.fast_hex``) split into decode
            (``decode_floor``) and PDQ, and the thumbnail — the worker's own functions. The
            sum of read + fast_hex is "the hashing benchmark's rate for the same files".
``j1``, ``j2`` ``run_scan`` with ``jobs=1``/``2`` in a child process that does what the CLI
            does (open store and indexes, ``run_scan``, ``write_outputs``), with
            ``ScanStats.seconds`` per phase, ``ScanDB.record`` timed (store), the per-file
            ``seconds`` column summed (worker time), and the process tree's memory sampled.
``cli``      the real ``vigil scan -j 2`` uninterrupted (end-to-end wall time, memory), then
            killed with SIGKILL (its process group) once half of the files are no longer
            pending, rerun with the same command; total files hashed and wall time of both
            runs vs the uninterrupted one; results compared with the uninterrupted scan.

Never prints hash values. Run: .venv/bin/python -m bench.scan [--files N] [--steps ...]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

from bench._data import OUT, REPO, corpus_paths, scaled_jpegs
from bench.match_files import BANK, derive, ensure_bank, store_env

PY = str(REPO / ".venv/bin/python")
ZIP_MEMBERS = 20


# ---- the seizure ---------------------------------------------------------------------------


def plan(n: int) -> dict[str, int]:
    """How many files of each kind make a seizure of ``n`` files (archive members and the
    archives themselves count: the scan records a row for each)."""
    p = {"big12": n // 100, "corrupt": n // 100, "text": 3 * n // 100, "random": 2 * n // 100,
         "dup": n // 10, "zip": max(1, n // 1000), "orig": min(500, n // 10)}
    p["zip_members"] = p["zip"] * ZIP_MEMBERS
    p["derived"] = n - sum(p.values())
    return p


def _jpeg(img: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return buf.getvalue()


def _gen(task: tuple[str, int, Any, str]) -> int:
    """Write one file (or one zip, or the 12 MP variants of one base) of the seizure."""
    kind, k, arg, root_s = task
    root = Path(root_s)
    rng = random.Random(1000 + k)
    photos = corpus_paths()
    sub = f"{k // 1000:03d}"
    if kind == "orig":
        src = photos[k % len(photos)]
        dst = root / "DCIM" / "orig" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return 1
    if kind == "big12":  # arg: (base path, [k...]) — decode the base once
        base = Image.open(arg[0]).convert("RGB")
        for kk in arg[1]:
            r = random.Random(2000 + kk)
            dx, dy = r.randrange(0, 40), r.randrange(0, 40)
            img = base.crop((dx, dy, base.width - 40 + dx, base.height - 40 + dy))
            dst = root / "big" / f"IMG_{kk:06d}.JPG"
            dst.parent.mkdir(parents=True, exist_ok=True)
            img.save(dst, "JPEG", quality=r.randrange(85, 96))
        return len(arg[1])
    if kind in ("derived", "corrupt"):
        src = photos[rng.randrange(len(photos))]
        tkind, img, q = derive(Image.open(src).convert("RGB"), rng)
        data = _jpeg(img, q)
        if kind == "corrupt":
            data = data[: int(len(data) * rng.uniform(0.2, 0.8))]
            dst = root / "broken" / f"{k:06d}.jpg"
        else:
            name = f"{k:06d}_{src.stem}" + (".jpg" if k % 50 else ".dat")  # some renamed
            dst = root / "DCIM" / tkind / sub / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        return 1
    if kind == "text":
        words = ["report", "invoice", "meeting", "notes", "the", "and", "of", "photo", "2026"]
        body = "\n".join(" ".join(rng.choice(words) for _ in range(12))
                         for _ in range(rng.randrange(5, 400)))
        dst = root / "docs" / sub / f"{k:06d}.txt"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(body)
        return 1
    if kind == "random":
        dst = root / "bin" / sub / f"{k:06d}.bin"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(rng.randbytes(rng.randrange(1_000, 200_000)))
        return 1
    if kind == "zip":
        dst = root / "archives" / f"export_{k:05d}.zip"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
            for m in range(ZIP_MEMBERS):
                src = photos[rng.randrange(len(photos))]
                _, img, q = derive(Image.open(src).convert("RGB"), rng)
                z.writestr(f"chat/media/{m:03d}_{src.stem}.jpg", _jpeg(img, q))
        return ZIP_MEMBERS + 1
    raise ValueError(kind)


def seizure(n: int, log: Any = print) -> tuple[Path, dict[str, int]]:
    """The seizure folder for ``n`` files (generated once, in 2 processes)."""
    root = OUT / f"seizure-{n}"
    manifest = root.parent / f"seizure-{n}.json"
    if manifest.exists():
        return root, json.loads(manifest.read_text())
    shutil.rmtree(root, ignore_errors=True)
    p = plan(n)
    t = time.perf_counter()
    bases = scaled_jpegs("12mp", 12.0, 40)
    tasks: list[tuple[str, int, Any, str]] = []
    k = 0
    for kind in ("orig", "derived", "corrupt", "text", "random"):
        for _ in range(p[kind]):
            tasks.append((kind, k, None, str(root)))
            k += 1
    for _ in range(p["zip"]):
        tasks.append(("zip", k, None, str(root)))
        k += 1
    bigs = list(range(k, k + p["big12"]))
    k += p["big12"]
    for b, base in enumerate(bases):
        mine = bigs[b:: len(bases)]
        if mine:
            tasks.append(("big12", mine[0], (str(base), mine), str(root)))
    with mp.get_context("fork").Pool(2) as pool:
        written = sum(pool.imap_unordered(_gen, tasks, chunksize=16))
    # Exact duplicates of files already written (images mostly), under another folder.
    rng = random.Random(5)
    originals = sorted(q for q in root.rglob("*") if q.is_file()
                       and q.suffix.lower() in (".jpg", ".dat", ".txt"))
    for d in range(p["dup"]):
        src = rng.choice(originals)
        dst = root / "backup" / f"{d // 1000:03d}" / f"copy_{d:06d}{src.suffix}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        written += 1
    size = sum(q.stat().st_size for q in root.rglob("*") if q.is_file())
    info = {**p, "files": written, "bytes": size}
    manifest.write_text(json.dumps(info))
    log(f"seizure-{n}: {written:,} files, {size / 1e9:.2f} GB, "
        f"generated in {time.perf_counter() - t:.0f} s")
    return root, info


def warm(root: Path) -> None:
    """Read every file once (page cache warm for every measurement)."""
    for q in root.rglob("*"):
        if q.is_file():
            with open(q, "rb") as f:
                while f.read(1 << 22):
                    pass


def warmup_sample(root: Path, folder: Path, n: int) -> Path:
    """Hard links to ``n`` of the seizure's files: a first scan after the bank is made
    compiles numba kernels into their cache and pages the bank's index in, one-off costs
    that would otherwise be charged to whichever run comes first (-j 1)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = sorted(q for q in root.rglob("*") if q.is_file())
    for i, q in enumerate(files[:: max(1, len(files) // n)][:n]):
        os.link(q, folder / f"{i:05d}{q.suffix}")
    return folder


# ---- memory of a process tree -----------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line[:5]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (from /proc/PID/stat)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


class TreeMemory(threading.Thread):
    """Samples the process tree under ``pid``: peak of the summed RSS, and each process's
    VmHWM (peak RSS) as last seen; the root's own VmHWM separately."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_sum = 0
        self.hwm: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.load0 = os.getloadavg()[0]
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for p in _descendants(self.pid):
                st = _status(p)
                total += st.get("VmRSS", 0)
                if "VmHWM" in st:
                    self.hwm[p] = max(self.hwm.get(p, 0), st["VmHWM"])
                self.cpu[p] = max(self.cpu.get(p, 0.0), _cpu_seconds(p))
            self.peak_sum = max(self.peak_sum, total)
            self.stop.wait(self.every)

    def result(self) -> dict[str, float]:
        self.stop.set()
        self.join()
        root = self.hwm.get(self.pid, 0)
        others = sorted((v for p, v in self.hwm.items() if p != self.pid), reverse=True)
        return {"tree_peak_rss_mb": self.peak_sum / 1e6, "parent_hwm_mb": root / 1e6,
                "max_child_hwm_mb": (others[0] if others else 0) / 1e6,
                "sum_hwm_mb": (root + sum(others)) / 1e6, "processes": len(self.hwm),
                "cpu_seconds": sum(self.cpu.values()),
                "loadavg_1min": (self.load0, os.getloadavg()[0])}


# ---- the per-file profile (worker functions, one core) -------------------------------------


def profile(db_path: Path, every: int) -> dict[str, Any]:
    """Time each step of the worker on every ``every``-th file of a finished scan's list."""
    from bench.hashing import decode_floor, fast_hex
    from vigil.signals import decode
    from vigil.signals.digests import digests_of_bytes
    from vigil.signals.evidence import Limits, read_item
    from vigil.signals.exif import device_key, exif_summary
    from vigil.signals.pdq import pdq_of_image
    from vigil.signals.sniff import sniff_kind
    from vigil.signals.thumbnail import thumbnail_of_pixels
    from vigil.triage.rows import hash_options

    con = sqlite3.connect(db_path)
    paths = [r[0] for r in con.execute("SELECT path FROM files ORDER BY id")][::every]
    con.close()
    opts, limits = hash_options("fast", False, True), Limits()
    steps = ("read", "digests", "sniff+open+exif", "decode (floor)", "fast_hex (decode+PDQ)",
             "thumbnail")
    t = dict.fromkeys(steps, 0.0)
    n_img = 0
    fast_hex(Path(corpus_paths()[0]).read_bytes(), decode.FAST_MIN_LONG_SIDE)  # JIT warm-up
    for path in paths:
        t0 = time.perf_counter()
        try:
            data = read_item(path, limits)
        except Exception:
            continue
        t1 = time.perf_counter()
        digests_of_bytes(data)
        t2 = time.perf_counter()
        kind, _ = sniff_kind(data[:512])
        try:
            img = decode.open_image(data, path, opts.max_pixels)
            s = exif_summary(img)
            if s:
                device_key(s)
            is_img = True
        except Exception:
            is_img = False
        t3 = time.perf_counter()
        t["read"] += t1 - t0
        t["digests"] += t2 - t1
        t["sniff+open+exif"] += t3 - t2
        if not is_img or kind == "archive":
            continue
        n_img += 1
        t4 = time.perf_counter()
        with contextlib.suppress(Exception):
            decode_floor(data, decode.FAST_MIN_LONG_SIDE)
        t5 = time.perf_counter()
        with contextlib.suppress(Exception):
            fast_hex(data, decode.FAST_MIN_LONG_SIDE)
        t6 = time.perf_counter()
        hashed = None  # the thumbnail is made from the pixels PDQ decoded: not timed again
        with contextlib.suppress(Exception):
            hashed = pdq_of_image(decode.open_image(data, path, opts.max_pixels), path)
        t_thumb = time.perf_counter()
        if hashed is not None and hashed.pixels is not None:  # as the pipeline does
            thumbnail_of_pixels(hashed.grey if hashed.grey is not None else hashed.pixels,
                                hashed.info.exif_orientation)
        t7 = time.perf_counter()
        t["decode (floor)"] += t5 - t4
        t["fast_hex (decode+PDQ)"] += t6 - t5
        t["thumbnail"] += t7 - t_thumb
    return {"files": len(paths), "images": n_img, "seconds": t}


# ---- scan runs -----------------------------------------------------------------------------

CHILD = r"""
import json, os, resource, sys, time
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
from pathlib import Path
t_start = time.perf_counter()
argv, sys.argv = sys.argv, ["vigil", "scan"]  # import what `vigil scan` imports, no more
from vigil.cli._app import open_banks, open_indexes
sys.argv = argv
from vigil.signals.forkstart import start_early
start_early(int(sys.argv[3]))  # where `vigil scan` starts it: before the scan's own imports
from vigil.triage.outputs import write_outputs
from vigil.banks import EntryReader
from vigil.matching import Matcher
from vigil.triage import scandb
from vigil.triage.scan import ScanOptions, run_scan
evidence, out, jobs = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
rec = {"record": 0.0, "add_pending": 0.0}
def timed(name, fn):
    def w(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            rec[name] += time.perf_counter() - t
    return w
scandb.ScanDB.record = timed("record", scandb.ScanDB.record)
scandb.ScanDB.add_pending = timed("add_pending", scandb.ScanDB.add_pending)
t = time.perf_counter()
banks = open_banks()
matcher = Matcher(EntryReader(banks.engine), open_indexes(banks))
t_open = time.perf_counter() - t
stats = run_scan(out, ScanOptions(inputs=(evidence,), banks=(sys.argv[4],), jobs=jobs),
                 matcher, None)
t = time.perf_counter()
write_outputs(out, "blurred", None, jobs)
t_report = time.perf_counter() - t
db = scandb.ScanDB(out / "scan.db")
worker, nfiles = db.conn.execute("SELECT sum(seconds), count(*) FROM files").fetchone()
s = db.summary()
db.close()
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
print(json.dumps({"phases": stats.seconds, "open": t_open, "report": t_report,
                  "store_record": rec["record"], "store_add_pending": rec["add_pending"],
                  "worker_seconds": worker, "files": nfiles, "hashed": stats.hashed,
                  "errors": s.errors, "items": s.items, "known": s.known_items,
                  "groups": s.groups, "wall_in_python": time.perf_counter() - t_start,
                  "parent_hwm": hwm(),
                  "children_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                  * 1024}))
"""


def run_child(root: Path, out: Path, jobs: int) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    p = subprocess.Popen([PY, "-c", CHILD, str(root), str(out), str(jobs), BANK],
                         env=store_env(), stdout=subprocess.PIPE, text=True, cwd=REPO)
    mem = TreeMemory(p.pid)
    mem.start()
    stdout, _ = p.communicate()
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"scan child failed ({p.returncode})")
    return {**json.loads(stdout), "wall": wall, "mem": mem.result()}


def cli_argv(root: Path, out: Path, jobs: int, ray: str | None = None) -> list[str]:
    return [PY, "-m", "vigil", "scan", str(root), "--out", str(out), "--bank", BANK,
            "-j", str(jobs), "-q", *(["--ray", ray] if ray else [])]


def run_cli(root: Path, out: Path, jobs: int, kill_at: float | None = None,
            ray: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The real CLI; with ``kill_at``, SIGKILL its process group once that share of the
    files is no longer pending."""
    t = time.perf_counter()
    p = subprocess.Popen(cli_argv(root, out, jobs, ray), env={**store_env(), **(env or {})},
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    mem = TreeMemory(p.pid)
    mem.start()
    killed_at = None
    if kill_at is not None:
        db = out / "scan.db"
        while p.poll() is None:
            time.sleep(0.2)
            if not db.exists():
                continue
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                total, done = con.execute(
                    "SELECT count(*), coalesce(sum(status != 'pending'), 0) FROM files"
                ).fetchone()
                con.close()
            except sqlite3.Error:
                continue
            if total and done >= kill_at * total:
                os.killpg(p.pid, signal.SIGKILL)  # the CLI and its workers (its own session)
                killed_at = done / total
                break
    stdout, stderr = p.communicate()
    wall = time.perf_counter() - t
    hashed = None
    for line in stdout.splitlines():
        if "hashed " in line and " this run" in line:
            hashed = int(line.split("hashed ")[1].split()[0].replace(",", ""))
    if p.returncode and killed_at is None:
        raise SystemExit(f"vigil scan failed ({p.returncode}):\n{stderr[-2000:]}")
    return {"wall": wall, "exit": p.returncode, "hashed": hashed, "killed_at": killed_at,
            "mem": mem.result(), "summary": stdout.splitlines()[:1]}


class RayCluster:
    """A head and a second node on loopback, one CPU each, token authentication on (as
    tests/triage/test_ray.py starts them); ``env`` is what a driver needs."""

    def __init__(self) -> None:
        import secrets
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="vray", dir="/tmp"))
        token = self.root / "token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        port = 6400 + os.getpid() % 500
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                    "RAY_USAGE_STATS_ENABLED": "0", "RAY_ADDRESS": f"127.0.0.1:{port}"}
        self.procs = [self._start(["--head", "--port", str(port), "--include-dashboard",
                                   "false", "--temp-dir", str(self.root / "t")])]
        self._wait("1.0 CPU")
        self.procs.append(self._start(["--address", self.env["RAY_ADDRESS"]]))
        self._wait("2.0 CPU")

    def _start(self, args: list[str]) -> subprocess.Popen[bytes]:
        ray = str(Path(PY).with_name("ray"))
        return subprocess.Popen([ray, "start", "--block", "--num-cpus", "1",
                                 "--object-store-memory", str(200 * 1024 * 1024),
                                 "--disable-usage-stats", *args], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    def _wait(self, cpus: str) -> None:
        ray = str(Path(PY).with_name("ray"))
        for _ in range(120):
            out = subprocess.run([ray, "status", "--address", self.env["RAY_ADDRESS"]],
                                 env=self.env, capture_output=True, text=True).stdout
            if f"/{cpus}" in out:
                return
            time.sleep(1)
        raise SystemExit(f"the Ray cluster never reached {cpus}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a head that ignores SIGTERM must not lose
                with contextlib.suppress(ProcessLookupError):  # the figures measured
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def wire_bytes(root: Path, sample: int = 300) -> dict[str, float]:
    """What a Ray task carries each way per file, pickled as Ray sends it: the paths and
    options in, the results out (measured on ``sample`` files in this process)."""
    import pickle

    from vigil.signals.evidence import Limits, iter_items
    from vigil.triage.cluster import CHUNK, _hash_chunk
    from vigil.triage.rows import hash_options
    from vigil.triage.scan import units_of

    paths = [it.path for it in iter_items([str(root)], Limits()) if it.error is None]
    units = units_of(paths[:: max(1, len(paths) // sample)][:sample])
    options = hash_options("fast", False, True)
    sent = got = files = 0
    for k in range(0, len(units), CHUNK):
        parts = list(enumerate(units[k:k + CHUNK], start=k))
        sent += len(pickle.dumps((parts, options)))
        results = _hash_chunk(parts, options)
        got += len(pickle.dumps(results))
        files += len(results)
    return {"files": files, "to_task": sent / files, "from_task": got / files}


def _fingerprint(out: Path) -> tuple[Any, ...]:
    """What the scan concluded, for comparing two scans (compared, never printed)."""
    con = sqlite3.connect(out / "scan.db")
    files = con.execute("SELECT path, status, sha256, pdq, error_code FROM files ORDER BY path"
                        ).fetchall()
    matches = con.execute("SELECT sha256, bank, entry_id, signal_type, distance FROM matches "
                          "ORDER BY 1, 2, 3").fetchall()
    groups = con.execute("SELECT g.rank, m.sha256 FROM groups g JOIN group_members m "
                         "ON m.group_id = g.id ORDER BY 1, 2").fetchall()
    con.close()
    return files, matches, groups


def count_done(out: Path) -> int:
    con = sqlite3.connect(out / "scan.db")
    n = con.execute("SELECT count(*) FROM files WHERE status != 'pending'").fetchone()[0]
    con.close()
    return n


# ---- report ------------------------------------------------------------------------------------


def table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--steps", default="j1,j2,clifull,resume,profile",
                    help="comma list of: j1, j2, clifull (uninterrupted CLI), resume (needs "
                    "clifull: kill at 50%% + rerun), profile (default all), ray (the CLI "
                    "-j 2 and --ray on a two-node cluster on loopback, alternated; not in "
                    "the default)")
    ap.add_argument("--pairs", type=int, default=1,
                    help="with j1 and j2: run them this many times each, alternated (A B B "
                    "A ...), and report every pair's ratio (the other tables show the last "
                    "run of each); with ray: this many -j 2 / --ray pairs (at least 2)")
    ap.add_argument("--sample", type=int, default=10_000,
                    help="files timed in the profile (every k-th file of the seizure)")
    args = ap.parse_args()
    steps = set(args.steps.split(","))

    def log(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    ensure_bank(log)
    root, info = seizure(args.files, log)
    warm(root)
    work = OUT / f"scan-runs-{args.files}"
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"seizure": info}
    if "j1" in steps or "j2" in steps:
        log("warm-up scan (300 files) ...")
        run_child(warmup_sample(root, work / "warmup-evidence", 300), work / "warmup", 2)
    if "j1" in steps and "j2" in steps and args.pairs > 1:
        # A B B A A B ...: the machine's drift lands on both sides alike
        res["pairs"] = []
        for i in range(args.pairs):
            pair: dict[str, float] = {}
            for j in ((1, 2) if i % 2 == 0 else (2, 1)):
                log(f"pair {i + 1}: run_scan -j {j} ...")
                res[f"j{j}"] = run_child(root, work / f"j{j}", j)
                pair[f"j{j}"] = res[f"j{j}"]["wall"]
                pair[f"j{j}_hash"] = res[f"j{j}"]["phases"]["hash"]
            res["pairs"].append(pair)
    else:
        for j in (1, 2):
            if f"j{j}" in steps:
                log(f"run_scan -j {j} ...")
                res[f"j{j}"] = run_child(root, work / f"j{j}", j)
                log(json.dumps(res[f"j{j}"]))
    if "clifull" in steps:
        log("CLI uninterrupted ...")
        shutil.rmtree(work / "cli-full", ignore_errors=True)
        res["clifull"] = run_cli(root, work / "cli-full", 2)
        log(json.dumps(res["clifull"]))
    if "resume" in steps and "clifull" in res:
        base = res["clifull"]
        log("CLI killed at 50% ...")
        shutil.rmtree(work / "cli-resume", ignore_errors=True)
        first = run_cli(root, work / "cli-resume", 2, kill_at=0.5)
        first["done_after_kill"] = count_done(work / "cli-resume")
        log(json.dumps(first))
        second = run_cli(root, work / "cli-resume", 2)
        log(json.dumps(second))
        same = _fingerprint(work / "cli-full") == _fingerprint(work / "cli-resume")
        res["cli"] = {"full": base, "killed": first, "rerun": second, "identical": same}
    if "ray" in steps:
        log("Ray: a two-node cluster on loopback ...")
        cluster = RayCluster()
        try:
            runs: dict[str, list[dict[str, Any]]] = {"j2": [], "ray": []}
            for i in range(max(2, args.pairs)):  # A B A B: the drift lands on both
                for name in ("j2", "ray"):
                    out = work / f"ray-step-{name}"
                    shutil.rmtree(out, ignore_errors=True)
                    r = run_cli(root, out, 2, ray=cluster.env["RAY_ADDRESS"]
                                if name == "ray" else None,
                                env=cluster.env if name == "ray" else None)
                    r["files"] = count_done(out)
                    runs[name].append(r)
                    log(f"{name} run {i + 1}: {r['wall']:.1f} s")
            same = _fingerprint(work / "ray-step-j2") == _fingerprint(work / "ray-step-ray")
        finally:
            cluster.stop()
        res["ray"] = {"runs": runs, "identical": same, "wire": wire_bytes(root),
                      "load": os.getloadavg()[0]}
    if "profile" in steps:
        db = next((work / d / "scan.db" for d in ("j1", "j2", "cli-full")
                   if (work / d / "scan.db").exists()), None)
        if db is not None:
            every = max(1, args.files // args.sample)
            log(f"profile: every {every}th file ...")
            res["profile"] = profile(db, every)
    (work / "results.json").write_text(json.dumps(res, indent=1))
    print(render(res))


def render(res: dict[str, Any]) -> str:
    info = res["seizure"]
    out = [f"seizure: {info['files']:,} files on disk incl. archive members "
           f"({info['bytes'] / 1e9:.2f} GB): " + ", ".join(
               f"{k} {info[k]:,}" for k in ("orig", "derived", "big12", "dup", "text", "random",
                                            "corrupt", "zip", "zip_members"))]
    runs = [(k, res[k]) for k in ("j1", "j2") if k in res]
    if runs:
        rows = []
        for k, r in runs:
            n = r["files"]
            m = r["mem"]
            rows.append([k, f"{n:,}", f"{r['wall']:.1f}", f"{n / r['wall']:.0f}",
                         f"{r['hashed'] / r['phases']['hash']:.0f}",
                         f"{m['cpu_seconds']:.0f}", f"{1000 * m['cpu_seconds'] / n:.1f}",
                         f"{m['tree_peak_rss_mb']:.0f}", f"{m['parent_hwm_mb']:.0f}",
                         f"{m['max_child_hwm_mb']:.0f}",
                         "{:.1f} → {:.1f}".format(*m["loadavg_1min"])])
        out.append(table(["run", "files", "wall s", "files/s end to end", "files/s hash phase",
                          "CPU s (process tree)", "CPU ms/file", "tree peak RSS MB",
                          "parent HWM MB", "largest child HWM MB", "load avg (start → end)"],
                         rows))
        prow = []
        for k, r in runs:
            ph = r["phases"]
            prow.append([k, f"{r['open']:.1f}", f"{ph['enumerate']:.1f}", f"{ph['hash']:.1f}",
                         f"{r['worker_seconds']:.1f}", f"{r['store_record']:.1f}",
                         f"{ph['match']:.1f}", f"{ph['group']:.1f}", f"{r['report']:.1f}",
                         f"{r['wall'] - r['wall_in_python']:.1f}"])
        out.append(table(["run", "open store+indexes", "listing (within the hash phase)",
                          "hash phase",
                          "Σ worker s (per-file column)", "store (ScanDB.record)", "match",
                          "group", "report+exports", "interpreter start+imports"], prow))
        if res.get("pairs"):
            ps = res["pairs"]
            out.append(table(
                ["pair", "-j 1 wall s", "-j 2 wall s", "-j2 / -j1 end to end", "hash phase ratio"],
                [[str(i + 1), f"{p['j1']:.1f}", f"{p['j2']:.1f}", f"{p['j1'] / p['j2']:.2f}x",
                  f"{p['j1_hash'] / p['j2_hash']:.2f}x"] for i, p in enumerate(ps)]))
            ratios = sorted(p["j1"] / p["j2"] for p in ps)
            out.append(f"-j2 / -j1 over {len(ps)} pairs: min {ratios[0]:.2f}x, median "
                       f"{ratios[len(ratios) // 2]:.2f}x, max {ratios[-1]:.2f}x; of the summed "
                       f"walls {sum(p['j1'] for p in ps) / sum(p['j2'] for p in ps):.2f}x")
        if "j1" in res and "j2" in res:
            h1, h2 = res["j1"]["phases"]["hash"], res["j2"]["phases"]["hash"]
            out.append(f"-j2 / -j1 end to end: {res['j1']['wall'] / res['j2']['wall']:.2f}x; "
                       f"hash phase: {h1 / h2:.2f}x")
    if "profile" in res:
        p = res["profile"]
        t = p["seconds"]
        n = p["files"]
        out.append(f"profile: {n:,} files sampled ({p['images']:,} decodable images), one core")
        rows = [[k, f"{v:.2f}", f"{1000 * v / n:.2f}"] for k, v in t.items()]
        out.append(table(["step", "seconds", "ms per file"], rows))
        bench_rate = n / (t["read"] + t["fast_hex (decode+PDQ)"])
        hash_rate = n / (t["read"] + t["digests"] + t["fast_hex (decode+PDQ)"])
        worker_rate = n / sum(v for k, v in t.items() if k != "decode (floor)")
        out.append(f"hashing benchmark's rate for these files (read + fast_hex): "
                   f"{bench_rate:.0f} files/s; + digests (vigil hash work): {hash_rate:.0f} "
                   f"files/s; all worker steps: {worker_rate:.0f} files/s")
        for k in ("j1", "j2"):
            if k in res:
                r = res[k]
                e2e = r["files"] / r["wall"]
                ideal = bench_rate * int(k[1])
                out.append(f"{k}: end to end {e2e:.0f} files/s = {e2e / ideal:.0%} of the hashing "
                           f"benchmark's rate x {k[1]} core(s) ({ideal:.0f}/s); "
                           f"{e2e / (worker_rate * int(k[1])):.0%} of the worker's own rate "
                           f"x {k[1]} ({worker_rate * int(k[1]):.0f}/s)")
    if "clifull" in res:
        f = res["clifull"]
        m = f["mem"]
        out.append(table(["CLI vigil scan -j 2", "wall s", "CPU s", "tree peak RSS MB",
                          "parent HWM MB", "largest child HWM MB", "load avg", "summary"],
                         [["uninterrupted", f"{f['wall']:.1f}", f"{m['cpu_seconds']:.0f}",
                           f"{m['tree_peak_rss_mb']:.0f}", f"{m['parent_hwm_mb']:.0f}",
                           f"{m['max_child_hwm_mb']:.0f}",
                           "{:.1f} → {:.1f}".format(*m["loadavg_1min"]),
                           f["summary"][0] if f["summary"] else ""]]))
    if "cli" in res:
        c = res["cli"]
        full, k1, k2 = c["full"], c["killed"], c["rerun"]
        files = res.get("j2", res.get("j1", {})).get("files") or full.get("files")
        out.append(table(
            ["CLI run", "wall s", "files hashed", "tree peak RSS MB", "note"],
            [["uninterrupted -j 2", f"{full['wall']:.1f}", f"{full['hashed']:,}",
              f"{full['mem']['tree_peak_rss_mb']:.0f}",
              full["summary"][0] if full["summary"] else ""],
             ["killed", f"{k1['wall']:.1f}", f"{k1['done_after_kill']:,} (committed)",
              f"{k1['mem']['tree_peak_rss_mb']:.0f}", f"SIGKILL at {k1['killed_at']:.0%} done"],
             ["rerun", f"{k2['wall']:.1f}", f"{k2['hashed']:,}",
              f"{k2['mem']['tree_peak_rss_mb']:.0f}", k2["summary"][0] if k2["summary"] else ""]]))
        work = (k1["done_after_kill"] + k2["hashed"]) / full["hashed"]
        wall = (k1["wall"] + k2["wall"]) / full["wall"]
        out.append(f"resume: files hashed {work:.1%} of uninterrupted; wall time {wall:.1%}; "
                   f"results identical to the uninterrupted scan: {c['identical']}"
                   + (f"; CLI end to end {files / full['wall']:.0f} files/s" if files else ""))
    if "ray" in res:
        r = res["ray"]
        rows = []
        best = {}
        for name, runs in r["runs"].items():
            walls = [x["wall"] for x in runs]
            best[name] = min(walls)
            n = runs[0]["files"]
            rows.append([name, f"{n:,}", " / ".join(f"{w:.1f}" for w in walls),
                         f"{n / min(walls):.0f}",
                         f"{1000 * min(x['mem']['cpu_seconds'] for x in runs) / n:.2f}"])
        out.append(table(["CLI vigil scan", "files", "wall s (runs)", "files/s (best)",
                          "CPU ms/file, CLI process tree (not Ray's workers)"], rows))
        n = r["runs"]["ray"][0]["files"]
        w = r["wire"]
        pairs = sorted(a["wall"] / b["wall"] for a, b in zip(r["runs"]["j2"], r["runs"]["ray"],
                                                              strict=True))
        out.append(f"Ray / -j 2 per pair (run i of each), sorted: "
                   f"{' / '.join(f'{x:.2f}' for x in pairs)}"
                   f"; median {statistics.median(pairs):.2f}x")
        out.append(f"Ray two-node cluster / -j 2: {best['j2'] / best['ray']:.2f}x (target "
                   f">= 0.80x); overhead {1000 * (best['ray'] - best['j2']) / n:.2f} ms per "
                   f"file; per file over the wire (pickled): {w['to_task']:.0f} B to a task, "
                   f"{w['from_task']:.0f} B back ({w['files']} files sampled); results "
                   f"identical: {r['identical']}; load average at the end {r['load']:.2f}")
    return "\n\n".join(out)


if __name__ == "__main__":
    main()

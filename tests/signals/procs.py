"""Processes as /proc shows them: who holds a file open, and the memory a process tree used.

Tests use these to kill a worker exactly while it is hashing a given file (deterministic:
no sleeps that guess when work is in flight) and to measure peak memory of a command and
of every worker it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

PROC = Path("/proc")


def _pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def holders(path: Path) -> list[int]:
    """Every process (that we may inspect) with ``path`` open."""
    target = os.path.realpath(path)
    found = []
    for pid in _pids():
        try:
            for fd in (PROC / str(pid) / "fd").iterdir():
                if os.readlink(fd) == target:
                    found.append(pid)
                    break
        except OSError:
            continue
    return found


def session_of(pid: int) -> int | None:
    """The session id of a process (field 6 of /proc/PID/stat), None if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])


def peak_rss(pid: int) -> int:
    """A process's peak resident memory so far (VmHWM), in bytes; 0 if it is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str], timeout: float, env: dict[str, str] | None = None
                 ) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``cmd`` in a session of its own; its result and the largest peak RSS of any
    process of that session (the command and every worker it started), in bytes."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    peak = 0
    out: dict[str, str] = {}

    def drain() -> None:
        out["stdout"], out["stderr"] = proc.communicate()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while reader.is_alive() and time.monotonic() < deadline:
        for pid in _pids():
            if session_of(pid) == proc.pid:
                peak = max(peak, peak_rss(pid))
        time.sleep(0.02)
    if reader.is_alive():
        os.killpg(proc.pid, signal.SIGKILL)
        reader.join()
        raise AssertionError(f"{cmd} did not finish within {timeout} s")
    reader.join()
    done = subprocess.CompletedProcess(cmd, proc.returncode, out["stdout"], out["stderr"])
    return done, peak


def bytes_read(pid: int) -> int:
    """How many bytes a process has read so far (``rchar`` of /proc/PID/io); 0 if gone."""
    try:
        for line in (PROC / str(pid) / "io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Killer(threading.Thread):
    """Kills (SIGKILL), ``times`` times, whichever process holds ``path`` open, sparing
    ``spare``, once it has read ``min_read`` bytes since it was first seen holding it (so
    a worker going through an archive is killed inside a large member, not before); each
    time it waits until the killed process has let go of the file."""

    def __init__(self, path: Path, times: int, spare: set[int], min_read: int = 0,
                 timeout: float = 180) -> None:
        super().__init__(daemon=True)
        self.path, self.times, self.spare, self.timeout = path, times, spare, timeout
        self.min_read = min_read
        self.killed: list[int] = []

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        seen: dict[int, int] = {}
        while len(self.killed) < self.times and time.monotonic() < deadline:
            holding = [p for p in holders(self.path) if p not in self.spare]
            seen = {p: seen[p] if p in seen else bytes_read(p) for p in holding}
            victims = [p for p in holding if bytes_read(p) - seen[p] >= self.min_read]
            if not victims:
                time.sleep(0.005)
                continue
            pid = victims[0]
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)
            while pid in holders(self.path) and time.monotonic() < deadline:
                time.sleep(0.005)

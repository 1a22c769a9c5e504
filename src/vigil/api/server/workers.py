"""Several uvicorn workers on one listening socket, with connections spread evenly.

Why: with uvicorn's own workers, whichever worker wakes first accepts every connection
waiting in the shared queue. 64 connections opened together split 7/57 to 26/38 between
two workers (12 bursts, measured); SO_REUSEPORT, which hashes connections to per-worker
queues, split them 21/43 to 36/28. Clients keep their connections, so the busier
worker's clients waited up to twice as long for the whole run: at 64 clients on a 10M
bank the node served 1,400-2,200 requests/s with a p99 of 60-150 ms, against 2,460-2,700
requests/s and 43-47 ms when the same connections were split 32/32 (bench/HISTORY.md).

How: the supervisor here binds and listens once, then spawns the workers (uvicorn's
``Server``, its HTTP protocol and lifespan unchanged). Each worker accepts from the
shared socket itself, one connection at a time, and only while it holds no more open
connections than the least busy other live worker (the idea of nginx's
``accept_mutex``); a worker that holds back accepts anyway after ``MAX_DEFER`` seconds,
so a stuck peer cannot stall new connections. The counts live in a small shared table
(``ConnectionTable``), one slot per worker with a heartbeat, so a dead worker's slot is
ignored until its replacement takes it over. The supervisor restarts a worker that dies
and stops them all, gracefully, on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import multiprocessing
import os
import signal
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

log = logging.getLogger("uvicorn.error")
#: how long a worker holds back from a waiting connection for a less busy peer (seconds)
MAX_DEFER = 0.02
#: how soon a worker that held back looks at the queue again (seconds)
RECHECK = 0.001
#: a slot whose heartbeat is older than this belongs to no live worker (seconds)
STALE_AFTER = 2.0
#: how often a worker republishes its count and heartbeat while nothing happens
HEARTBEAT = 0.1
#: a worker that exits sooner than this after its start failed to start; after
#: ``MAX_FAST_FAILURES`` of those in a row the supervisor gives up rather than loop
FAST_FAILURE = 10.0
MAX_FAST_FAILURES = 3
#: exit status of a server that could not start (uvicorn's)
STARTUP_FAILURE = 3
_SLOT = struct.Struct("<qd")  # open connections, heartbeat (time.monotonic: host-wide)


class ConnectionTable:
    """Open connections per worker of one server, in a small shared memory-mapped file."""

    def __init__(self, path: Path, slots: int) -> None:
        self.path, self.slots = path, slots
        size = _SLOT.size * slots
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._mm = mmap.mmap(fd, size, mmap.MAP_SHARED)
        finally:
            os.close(fd)

    def publish(self, slot: int, connections: int, now: float | None = None) -> None:
        _SLOT.pack_into(self._mm, slot * _SLOT.size, connections,
                        time.monotonic() if now is None else now)

    def others(self, slot: int, now: float | None = None) -> list[int]:
        """The open connections of every other worker that is alive (recent heartbeat)."""
        now = time.monotonic() if now is None else now
        out = []
        for i in range(self.slots):
            if i != slot:
                n, beat = _SLOT.unpack_from(self._mm, i * _SLOT.size)
                if now - beat < STALE_AFTER:
                    out.append(n)
        return out

    def clear(self, slot: int) -> None:
        _SLOT.pack_into(self._mm, slot * _SLOT.size, 0, 0.0)

    def close(self) -> None:
        self._mm.close()


def should_accept(mine: int, others: list[int], deferred_for: float) -> bool:
    """Accept now if no live peer holds fewer connections, or after holding back long
    enough (a busy or stuck peer must not keep clients waiting)."""
    return not others or mine <= min(others) or deferred_for >= MAX_DEFER


class BalancedAcceptor:
    """Accepts connections from the shared listening socket for one worker's event loop.

    ``BalancedServer.shutdown`` closes it before uvicorn's shutdown begins.
    """

    def __init__(self, sock: socket.socket, protocol_factory: Callable[[], asyncio.Protocol],
                 table: ConnectionTable, slot: int, connections: Any, ssl: Any = None) -> None:
        self.sock, self.factory, self.ssl = sock, protocol_factory, ssl
        self.table, self.slot, self.connections = table, slot, connections
        self.loop = asyncio.get_running_loop()
        self._pending = 0  # accepted, not yet a protocol in ``connections``
        self._deferred_at: float | None = None  # when it began holding back this time
        self._last_call = 0.0
        self._armed = False
        self._closed = False
        self._beat: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # hand-overs in flight (kept referenced)

    def count(self) -> int:
        return len(self.connections) + self._pending

    def start(self) -> None:
        self.sock.setblocking(False)
        self._heartbeat()
        self._arm()

    def _arm(self) -> None:
        if not self._closed and not self._armed:
            self.loop.add_reader(self.sock.fileno(), self._readable)
            self._armed = True

    def _disarm(self) -> None:
        if self._armed:
            self.loop.remove_reader(self.sock.fileno())
            self._armed = False

    def _heartbeat(self) -> None:
        if self._closed:
            return
        self.table.publish(self.slot, self.count())
        self._beat = self.loop.call_later(HEARTBEAT, self._heartbeat)

    def _readable(self) -> None:
        now = time.monotonic()
        if now - self._last_call > 5 * MAX_DEFER:  # the last wait ended: a peer took it
            self._deferred_at = None
        self._last_call = now
        mine = self.count()
        self.table.publish(self.slot, mine, now)
        waited = 0.0 if self._deferred_at is None else now - self._deferred_at
        if not should_accept(mine, self.table.others(self.slot, now), waited):
            if self._deferred_at is None:
                self._deferred_at = now
            self._disarm()  # look again shortly: a less busy peer should take it first
            self.loop.call_later(RECHECK, self._arm)
            return
        self._deferred_at = None
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # a peer took it, or the client gave up
        except OSError as exc:  # out of file descriptors, say: back off, keep serving
            log.error("accept failed: %s", exc)
            self._disarm()
            self.loop.call_later(0.1, self._arm)
            return
        conn.setblocking(False)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending += 1
        self.table.publish(self.slot, self.count(), now)
        task = self.loop.create_task(self._connect(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn, ssl=self.ssl)
        except Exception as exc:  # the client went away during the hand-over
            log.debug("connection dropped at accept: %s", exc)
            conn.close()
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._closed = True
        self._disarm()
        if self._beat is not None:
            self._beat.cancel()
        self.table.clear(self.slot)


class BalancedServer(uvicorn.Server):
    """uvicorn's server, accepting through a ``BalancedAcceptor`` instead of a
    ``loop.create_server`` of its own."""

    def __init__(self, config: uvicorn.Config, table: ConnectionTable, slot: int) -> None:
        super().__init__(config)
        self.table, self.slot = table, slot
        self.acceptor: BalancedAcceptor | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan, no listener
        if self.should_exit or not sockets:
            return
        config = self.config
        loop = asyncio.get_running_loop()
        # uvicorn types the class as a bare asyncio.Protocol; its HTTP protocols (and
        # ours, vigil.api.server.http) take these keywords
        protocol_class: Callable[..., asyncio.Protocol] = config.http_protocol_class

        def create_protocol() -> asyncio.Protocol:
            return protocol_class(config=config, server_state=self.server_state,
                                  app_state=self.lifespan.state, _loop=loop)

        self.acceptor = BalancedAcceptor(sockets[0], create_protocol, self.table, self.slot,
                                         self.server_state.connections, ssl=config.ssl)
        self.acceptor.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting first, as uvicorn does with the servers it creates itself."""
        if self.acceptor is not None:
            self.acceptor.close()
        await super().shutdown(sockets)


def _worker(app: str, options: dict[str, Any], sock: socket.socket, table_path: str,
            slots: int, slot: int) -> None:
    """A worker process: uvicorn's server on the shared socket, in slot ``slot``."""
    config = uvicorn.Config(app, **options)
    table = ConnectionTable(Path(table_path), slots)
    BalancedServer(config, table, slot).run(sockets=[sock])


def run(app: str, workers: int, **options: Any) -> None:
    """``uvicorn.run(app, workers=workers, **options)``, with the workers' connections
    spread evenly (see the module docstring). One worker: exactly ``uvicorn.run``."""
    if workers <= 1:
        uvicorn.run(app, workers=1, **options)
        return
    config = uvicorn.Config(app, workers=workers, **options)
    sock = config.bind_socket()  # logs where it listens
    sock.listen(config.backlog)
    sock.set_inheritable(True)
    run_dir = Path(tempfile.mkdtemp(prefix="vigil-workers-"))
    table_path = run_dir / "connections"
    ConnectionTable(table_path, workers).close()  # created, zeroed, before any worker
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(slot: int) -> multiprocessing.process.BaseProcess:
        p = ctx.Process(target=_worker, name=f"vigil-worker-{slot}",
                        args=(app, {**options, "workers": workers}, sock, str(table_path),
                              workers, slot))
        p.start()
        log.info("Started worker process [%s]", p.pid)
        return p

    previous = {s: signal.signal(s, lambda *_: stop.set())
                for s in (signal.SIGINT, signal.SIGTERM)}
    procs = [start(i) for i in range(workers)]
    started = [time.monotonic()] * workers
    failures = [0] * workers
    code = 0
    try:
        while not stop.wait(0.5):
            for i, p in enumerate(procs):
                if p.is_alive():
                    continue
                fast = time.monotonic() - started[i] < FAST_FAILURE
                failures[i] = failures[i] + 1 if fast else 0
                if failures[i] >= MAX_FAST_FAILURES:
                    log.error("worker process [%s] failed to start %d times in a row "
                              "(exit code %s); stopping", p.pid, failures[i], p.exitcode)
                    code = STARTUP_FAILURE
                    stop.set()
                    break
                log.warning("worker process [%s] died (exit code %s); restarting",
                            p.pid, p.exitcode)
                procs[i], started[i] = start(i), time.monotonic()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn shuts down gracefully
        deadline = time.monotonic() + (config.timeout_graceful_shutdown or 30) + 5
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        sock.close()
        for s, h in previous.items():
            signal.signal(s, h)
        with contextlib.suppress(OSError):
            table_path.unlink()
            run_dir.rmdir()
    if code:
        raise SystemExit(code)

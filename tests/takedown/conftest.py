"""Takedown test rig: loopback web hosts serving benign corpus photos, an SMTP server on
loopback (aiosmtpd), a bank holding the photos' signals, and an injectable clock.

Hosts bind to their own loopback addresses (127.0.0.2, 127.0.0.3, ...), so each is a
host of its own in the per-host figures; the fetcher is allowed 127.0.0.0/8 explicitly.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from tests.api.conftest import free_port
from vigil.banks import Banks, EntryReader, Labels
from vigil.banks.files import records_of_file
from vigil.banks.indexes import BankIndexes
from vigil.matching import Matcher
from vigil.signals import hash_file
from vigil.takedown.clock import ManualClock
from vigil.takedown.fetch import Fetcher, FetchLimits
from vigil.takedown.mail import SmtpMailer
from vigil.takedown.schedule import Loop
from vigil.takedown.settings import Settings

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
AGENCY = "SG-SPF"


def corpus(shared: Path, n: int) -> list[Path]:
    return sorted((shared / "corpus" / "bsds500" / "test").glob("*.jpg"))[:n]


# ---- web hosts ------------------------------------------------------------------------------

Route = Callable[[BaseHTTPRequestHandler], None]


class WebHost:
    """A small web app on a loopback address: ``files`` maps paths to (bytes, type);
    ``routes`` maps paths to handlers for misbehaviour (redirects, slow drips)."""

    def __init__(self, ip: str = "127.0.0.1") -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.routes: dict[str, Route] = {}
        self.requests: list[dict[str, str]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                host.requests.append({"path": self.path, **{k.lower(): v for k, v in
                                                            self.headers.items()}})
                route = host.routes.get(self.path)
                if route is not None:
                    route(self)
                    return
                item = host.files.get(self.path)
                if item is None:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body, ctype = item
                self.send_response(200)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.daemon_threads = True
        self.server = ThreadingHTTPServer((ip, 0), Handler)
        self.ip = ip
        self.base = f"http://{ip}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web() -> Iterator[Callable[[str], WebHost]]:
    made: list[WebHost] = []

    def make(ip: str = "127.0.0.1") -> WebHost:
        h = WebHost(ip)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


# ---- SMTP ------------------------------------------------------------------------------------


@dataclass
class Smtp:
    """Messages received by the loopback SMTP server, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: called with each message as it is accepted (a host removes its photo)
    on_message: Callable[[EmailMessage], None] | None = None
    #: the RCPT (1-based, counting every message's) that blocks until ``release`` is set:
    #: a message stuck before its data is sent
    block_rcpt: int | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    rcpts: int = 0
    address: str = ""

    def notices(self) -> list[tuple[str, int, str]]:
        """(reference, number, kind) of every message received, in order."""
        out = []
        with self.lock:
            for m in self.messages:
                ref, *rest = str(m["X-Vigil-Notice"]).split("; ")
                kv = dict(p.split("=", 1) for p in rest)
                out.append((ref, int(kv["number"]), kv["kind"]))
        return out

    def wait(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} messages, expected {n}")


class _Handler:
    def __init__(self, box: Smtp) -> None:
        self.box = box

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        import asyncio

        with self.box.lock:
            self.box.rcpts += 1
            blocked = self.box.rcpts == self.box.block_rcpt
        while blocked and not self.box.release.is_set():
            self.box.held.set()
            await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.box.lock:
            self.box.messages.append(msg)
        if self.box.on_message is not None:
            self.box.on_message(msg)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    box = Smtp()
    port = free_port()
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    box.address = f"127.0.0.1:{port}"
    try:
        yield box
    finally:
        box.release.set()
        controller.stop()


# ---- a bank of corpus photos and a loop ------------------------------------------------------


def fill_bank(engine: Engine, photos: dict[Path, str], bank: str = "known") -> None:
    """A bank holding each photo's signals, labelled with its series and category."""
    banks = Banks(engine, "tester")
    banks.create(bank, AGENCY)
    recs = []
    for path, series in photos.items():
        r = hash_file(path)
        assert r.ok, r.error
        recs += records_of_file(r, Labels(category=("us", "1"), series=series))
    banks.apply(bank, recs)


def settings(smtp: Smtp | None = None, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        limits=FetchLimits(allow_networks=LOOPBACK, total_seconds=10),
        smtp=smtp.address if smtp else None, renotice=timedelta(hours=24),
        deadline=timedelta(hours=48), concurrency=4, sender="sg@vigil.invalid")
    base.update(kw)
    return Settings(**base)


def make_loop(engine: Engine, tmp_path: Path, smtp: Smtp, clock: ManualClock,
              name: str = "w1", **kw: Any) -> Loop:
    s = settings(smtp, **kw)
    matcher = Matcher(EntryReader(engine), BankIndexes(engine, tmp_path / f"indexes-{name}"))
    return Loop(engine, matcher, Fetcher(s.limits), SmtpMailer(s.smtp or ""), s, clock,
                AGENCY, name)

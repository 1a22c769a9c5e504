"""The notice loop inside ``vigil serve``: every worker process runs a cycle every
``VIGIL_TAKEDOWN_INTERVAL`` seconds (default 60; 0 turns it off).

No lock between workers is needed: a cycle only does what it claimed in the database
(vigil.takedown.repo), so two workers, or two hosts on one PostgreSQL, share the work
and never do the same row twice.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from vigil.exchange.peers import list_peers
from vigil.matching import Matcher
from vigil.takedown.clock import Clock, clock_from_env
from vigil.takedown.fetch import Fetcher
from vigil.takedown.forward import pull
from vigil.takedown.mail import Mailer, OutboxMailer, SmtpMailer
from vigil.takedown.schedule import Loop
from vigil.takedown.settings import Settings, from_env

log = logging.getLogger("vigil.takedown")


def mailer_for(settings: Settings) -> Mailer:
    """The SMTP relay if one is set, else the outbox folder."""
    if settings.smtp:
        return SmtpMailer(settings.relay or settings.smtp)
    if settings.outbox is None:
        raise ValueError("set VIGIL_TAKEDOWN_SMTP (host:port) or VIGIL_TAKEDOWN_OUTBOX")
    return OutboxMailer(settings.outbox)


def make_loop(engine: Engine, matcher: Matcher, agency: str, home: Path,
              settings: Settings | None = None, clock: Clock | None = None,
              name: str | None = None) -> Loop:
    settings = settings or from_env(home)
    return Loop(engine, matcher, Fetcher(settings.limits, connections=settings.concurrency * 2),
                mailer_for(settings), settings, clock or clock_from_env(), agency,
                name or f"{os.uname().nodename}:{os.getpid()}")


class TakedownThread:
    """Runs ``Loop.cycle`` every ``interval`` seconds in the background, and pulls the
    notices partners forwarded every ``settings.forward_interval`` seconds (given
    ``home``, where the peers' tokens are)."""

    def __init__(self, loop: Loop, interval: float, home: Path | None = None) -> None:
        self.loop, self.interval, self.home = loop, interval, home
        self._last_pull = float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-takedown", daemon=True)

    @classmethod
    def from_env(cls, engine: Engine, matcher: Matcher, agency: str, home: Path,
                 ) -> TakedownThread:
        settings = from_env(home)
        return cls(make_loop(engine, matcher, agency, home, settings), settings.interval, home)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.loop.stopping.set()
        if self._thread.is_alive():
            # a fetch in hand ends within its time limit; a DNS lookup cannot be cut short
            # (the thread is a daemon: it does not hold the process up past this)
            self._thread.join(timeout=self.loop.settings.limits.total_seconds + 5)
        self.loop.fetcher.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                stats = self.loop.cycle()
                if stats.errors:
                    log.warning("takedown cycle: %d error(s), first: %s", len(stats.errors),
                                stats.errors[0])
            except Exception as exc:  # keep serving; the next tick tries again
                log.warning("takedown cycle failed: %s: %s", type(exc).__name__, exc)
            self._pull_forwarded()

    def _pull_forwarded(self) -> None:
        every = self.loop.settings.forward_interval
        if self.home is None or every <= 0 or time.monotonic() - self._last_pull < every:
            return
        self._last_pull = time.monotonic()
        for peer in list_peers(self.loop.engine):
            try:
                got = pull(self.loop.engine, self.home, peer, self.loop.agency,
                           self.loop.clock.now())
                if got.added:
                    log.info("takedown: %d URL(s) forwarded by %s", got.added, peer.name)
            except Exception as exc:  # one partner down does not stop the others
                log.warning("takedown: pulling forwarded notices from %s failed: %s: %s",
                            peer.name, type(exc).__name__, exc)

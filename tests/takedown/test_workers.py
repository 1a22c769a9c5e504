"""Two workers on one store share the due work and send every message exactly once;
SQLite, and PostgreSQL with VIGIL_TEST_DATABASE_URL (where the two really race)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.takedown.conftest import Smtp, WebHost, corpus, fill_bank, make_loop
from vigil.takedown import intake, repo
from vigil.takedown.clock import ManualClock
from vigil.takedown.repo import Contact
from vigil.takedown.schedule import CycleStats

pytestmark = pytest.mark.shared


def test_two_workers_send_each_message_once(engine: Engine, tmp_path: Path, shared: Path,
                                            smtp: Smtp, web: Callable[[str], WebHost]) -> None:
    photos = corpus(shared, 3)
    fill_bank(engine, {p: f"S-{i}" for i, p in enumerate(photos)})
    hosts = [web(f"127.0.0.{i}") for i in (9, 10)]
    clock = ManualClock()
    n = 0
    for h in hosts:
        repo.set_contact(engine, Contact(h.ip, f"abuse@{h.ip}"), clock.now())
        for i in range(12):
            h.files[f"/{i}.jpg"] = (photos[i % 3].read_bytes(), "image/jpeg")
            intake.add(engine, intake.check(h.url(f"/{i}.jpg"), "C-1"), None, clock.now())
            n += 1
    loops = [make_loop(engine, tmp_path, smtp, clock, name=f"w{k}", concurrency=3)
             for k in (1, 2)]
    for loop in loops:
        loop.batch = 2

    def both() -> list[CycleStats]:
        out: list[CycleStats] = [CycleStats(), CycleStats()]
        start = threading.Barrier(2)

        def run(k: int) -> None:
            start.wait()
            out[k] = loops[k].cycle()

        threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    first = both()
    assert sum(s.opened for s in first) == n and sum(s.sent for s in first) == n
    assert all(s.errors == [] for s in first)
    clock.advance(hours=24)
    second = both()
    assert sum(s.sent for s in second) == n
    sent = smtp.notices()
    assert len(sent) == 2 * n
    assert sorted((r, k) for r, k, _ in sent) == sorted(
        {(r, k) for r, k, _ in sent}), "a message went out twice"
    assert {k for _, k, _ in sent} == {1, 2}
    assert all(x.state == "sent" for x in repo.sends(engine))
    assert len(repo.list_notices(engine)) == n  # no URL opened two notices

"""``vigil.api.server.eager``: coroutines driven from callbacks, and the audit commit callback
that sends the lean path's responses (``AuditLog.append_async(on_commit=...)``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from vigil.api.server.eager import EagerResponse, drive
from vigil.audit import AuditLog
from vigil.node import audit_key, init_node


def test_drive_runs_to_the_end_through_futures_and_bare_yields() -> None:
    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        gate: asyncio.Future[int] = loop.create_future()
        seen: list[Any] = []

        async def work() -> None:
            seen.append("start")  # runs at once, inside drive()
            await asyncio.sleep(0)  # a bare yield
            seen.append(await gate)  # a future resolved later
            seen.append("end")

        finished: asyncio.Future[BaseException | None] = loop.create_future()
        drive(work(), finished.set_result)
        assert seen == ["start"]
        loop.call_later(0.01, gate.set_result, 7)
        assert await finished is None
        return seen

    assert asyncio.run(scenario()) == ["start", 7, "end"]


def test_drive_reports_an_exception_and_an_immediate_end() -> None:
    async def scenario() -> list[Any]:
        out: list[Any] = []

        async def fails() -> None:
            await asyncio.sleep(0)
            raise ValueError("boom")

        async def instant() -> int:
            return 1

        drive(instant(), out.append)  # no suspension: done synchronously
        assert out == [None]
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        drive(fails(), done.set_result)
        out.append(await done)
        return out

    out = asyncio.run(scenario())
    assert out[0] is None and isinstance(out[1], ValueError)


def test_eager_response_sends_in_order_once_and_reports_failures() -> None:
    async def scenario() -> tuple[list[Any], BaseException | None]:
        sent: list[Any] = []
        loop = asyncio.get_running_loop()
        slow: asyncio.Future[None] = loop.create_future()

        async def send(msg: Any) -> None:
            if msg["n"] == 1:
                await slow  # flow control: the client is not reading yet
            sent.append(msg["n"])

        r = EagerResponse(send, [{"n": 0}, {"n": 1}, {"n": 2}])
        r.start()
        r.start()  # a second start changes nothing
        assert sent == [0] and not r.done.done()
        slow.set_result(None)
        await r.done
        assert sent == [0, 1, 2]

        async def broken(msg: Any) -> None:
            raise ConnectionResetError("gone")

        bad = EagerResponse(broken, [{"n": 0}, {"n": 1}])
        bad.start()
        try:
            await bad.done
        except ConnectionResetError as exc:
            return sent, exc
        return sent, None

    sent, exc = asyncio.run(scenario())
    assert sent == [0, 1, 2] and isinstance(exc, ConnectionResetError)


@pytest.mark.parametrize("group_commit", [True, False])
def test_on_commit_runs_once_committed_and_before_the_caller_resumes(
        engine: Engine, tmp_path: Path, group_commit: bool) -> None:
    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    log = AuditLog(engine, audit_key(tmp_path), tmp_path / "audit", group_commit=group_commit)

    async def scenario() -> list[str]:
        events: list[str] = []

        async def one(i: int) -> None:
            def committed() -> None:
                # the record is in the store when the callback runs
                assert any(r.detail.get("i") == i for r in log.records(action="match"))
                events.append(f"commit {i}")

            await log.append_async("match", detail={"i": i}, on_commit=committed)
            events.append(f"resumed {i}")

        def broken() -> None:
            raise RuntimeError("a callback that fails")

        await asyncio.gather(*(one(i) for i in range(5)),
                             log.append_async("match", detail={"i": 99}, on_commit=broken))
        return events

    events = asyncio.run(scenario())
    for i in range(5):
        assert events.index(f"commit {i}") < events.index(f"resumed {i}")
    rep = log.verify()
    assert rep.ok and rep.records == 6, rep.problems

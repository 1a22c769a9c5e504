"""The coalescing HTTP protocol (``vigil.api.server.http``) under a real uvicorn on loopback.

A small response leaves in one write; streamed bodies, HEAD, 204, ``connection: close``
and keep-alive request after request still come out whole and in order.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import uvicorn

from vigil.api.server.http import CoalescingHttpToolsProtocol, CoalescingTransport

WRITES: list[int] = []  # bytes of each write the real transport got


class _Counting(CoalescingTransport):
    def flush(self) -> None:
        if self._pending:
            WRITES.append(sum(map(len, self._pending)))
        super().flush()


class _Protocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # as CoalescingHttpToolsProtocol does
        super(CoalescingHttpToolsProtocol, self).connection_made(_Counting(stream, self.loop))


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/small":
        body = b'{"ok": true}'
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(3):
            await asyncio.sleep(0.02)
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"end"})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/close":
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", b"3"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"bye"})


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port, http=_Protocol,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_small_response_is_one_write(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        client.get("/small")  # the connection is open: count from here
        WRITES.clear()
        for _ in range(20):
            r = client.get("/small")
            assert r.status_code == 200 and r.json() == {"ok": True}
    assert len(WRITES) == 20, WRITES  # head and body together, once per response
    assert all(w > len(b'{"ok": true}') for w in WRITES)


def test_streamed_head_empty_and_closing_responses_arrive_whole(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        WRITES.clear()
        r = client.get("/stream")
        assert r.status_code == 200 and r.text == "part0;part1;part2;end"
        assert len(WRITES) >= 4  # chunks sent a turn apart are not held back for later ones
        assert client.head("/small").status_code == 200
        r = client.get("/empty")
        assert r.status_code == 204 and r.content == b""
        r = client.get("/close")
        assert r.text == "bye" and r.headers["connection"] == "close"
        assert client.get("/small").json() == {"ok": True}  # a new connection, as it should

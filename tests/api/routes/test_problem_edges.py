"""Every error the node returns is an RFC 9457 problem document — also those made before
a request reaches a route: a request the HTTP parser cannot read, a head too large, an
unknown route, a method a route does not take, a wrong media type, a body that is not
JSON, an invalid path or query parameter, an oversized body, a HEAD, an upgrade."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.api.conftest import Node
from tests.api.wire import raw_request
from vigil.api.server.wire import LastResort

PROBLEM = "application/problem+json"


def _token(node: Node, role: str = "admin") -> bytes:
    return node.tokens[("SG-SPF", role)].encode()


def _head(node: Node, method: bytes, path: bytes, *extra: bytes, role: str = "admin") -> bytes:
    return b"\r\n".join([method + b" " + path + b" HTTP/1.1", b"Host: vigil",
                         b"Authorization: Bearer " + _token(node, role), *extra]) + b"\r\n\r\n"


@pytest.mark.parametrize(("what", "request_bytes", "status"), [
    ("a request line that is not HTTP", lambda n: b"HELLO\r\n\r\n", 400),
    ("a Content-Length that is not a number",
     lambda n: _head(n, b"POST", b"/v1/banks", b"Content-Type: application/json",
                     b"Content-Length: ten") + b"{}", 400),
    ("a negative Content-Length",
     lambda n: _head(n, b"POST", b"/v1/banks", b"Content-Type: application/json",
                     b"Content-Length: -5") + b"{}", 400),
    ("broken chunked encoding",
     lambda n: _head(n, b"POST", b"/v1/banks", b"Content-Type: application/json",
                     b"Transfer-Encoding: chunked") + b"zz\r\n{}\r\n0\r\n\r\n", 400),
    ("a path that is not ASCII", lambda n: _head(n, b"GET", b"/v1/banks/\xff"), 400),
    ("a header of a megabyte",
     lambda n: _head(n, b"GET", b"/v1/banks", b"X-Padding: " + b"a" * (1 << 20)), 431),
    ("headers that never end",
     lambda n: _head(n, b"GET", b"/v1/banks")[:-2] + b"".join(
         b"X-%d: %s\r\n" % (i, b"a" * 1000) for i in range(200)), 431),
], ids=lambda v: v if isinstance(v, str) else None)
def test_requests_the_http_parser_refuses_get_a_problem(node: Node, what: str, request_bytes,  # type: ignore[no-untyped-def]
                                                         status: int) -> None:
    r = raw_request(node.url, request_bytes(node))
    assert r.status == status, (what, r.status, r.body[:200])
    assert r.headers["content-type"] == PROBLEM, what
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"], body


def test_an_upgrade_request_is_answered_as_plain_http(node: Node) -> None:
    req = _head(node, b"GET", b"/v1/me", b"Connection: Upgrade", b"Upgrade: websocket",
                b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
    r = raw_request(node.url, req)
    assert r.status == 200 and r.json()["agency"] == "SG-SPF"
    anonymous = req.replace(b"Authorization: Bearer " + _token(node), b"X-None: 1")
    r = raw_request(node.url, anonymous)
    assert r.status == 401 and r.headers["content-type"] == PROBLEM


def test_head_of_a_route_is_a_405_problem(node: Node) -> None:
    r = raw_request(node.url, _head(node, b"HEAD", b"/v1/banks", b"Connection: close"))
    assert r.status == 405 and r.headers["content-type"] == PROBLEM
    assert "GET" in r.headers["allow"]
    assert r.body == b""


def _problem(r: httpx.Response, status: int, *words: str) -> dict:  # type: ignore[type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM, r.headers
    body = r.json()
    assert body["status"] == status
    for w in words:
        assert w in body["detail"], body
    return body  # type: ignore[no-any-return]


def test_router_and_framework_errors_are_problems(node: Node, bank: str) -> None:
    with node.client("admin") as c:
        _problem(c.get("/v1/nowhere"), 404)
        _problem(c.post("/v1/nowhere", content=b"x", headers={"content-type": "text/plain"}),
                 404)
        # the method is wrong whatever the media type: 405, not 415
        _problem(c.put("/v1/match"), 405)
        _problem(c.put("/v1/match", content=b"x", headers={"content-type": "text/plain"}), 405)
        _problem(c.delete("/v1/banks"), 405)
        _problem(c.post("/v1/banks", content=b'{"name": ', headers={
            "content-type": "application/json"}), 400, "JSON")
        _problem(c.post("/v1/banks", content=b"{}", headers={"content-type": "text/plain"}),
                 415, "application/json")
        _problem(c.post("/v1/banks", content=b"{}"), 415, "nothing")
        _problem(c.delete("/v1/users/abc"), 422, "path.user_id")
        _problem(c.get("/v1/audit", params={"limit": "many"}), 422, "query.limit")
        _problem(c.get(f"/v1/banks/{bank}/export", params={"format": "xls"}), 422,
                 "query.format")
        _problem(c.post("/v1/banks", content=b"{" + b" " * (9 << 20) + b"}",
                        headers={"content-type": "application/json"}), 413, "limit")

        def chunks():  # type: ignore[no-untyped-def]
            yield b'{"name": "'
            for _ in range(9):
                yield b"a" * (1 << 20)
            yield b'"}'

        _problem(c.post("/v1/banks", content=chunks(),
                        headers={"content-type": "application/json"}), 413, "limit")


def test_an_error_no_handler_saw_is_a_problem() -> None:
    async def broken(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    sent: list[dict] = []  # type: ignore[type-arg]

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/v1/me", "headers": []}
    asyncio.run(LastResort(broken)(scope, receive, send))
    assert sent[0]["status"] == 500
    assert (b"content-type", PROBLEM.encode()) in sent[0]["headers"]
    body = json.loads(sent[1]["body"])
    assert body["status"] == 500 and "boom" not in json.dumps(body)

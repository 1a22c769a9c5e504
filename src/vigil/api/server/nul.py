"""NUL is refused at the door: in a request's path, query or JSON body, it is a 422.

Why one middleware: no text Vigil stores or looks up may hold U+0000 (PostgreSQL cannot
store it, and the driver's error once put the request's hash values into the log), and
a NUL can reach the store through any of a hundred fields and parameters. Field
validators guard the fields they know; this guards every one, including those added
later, and names the field (``query.action``, ``body.entries.3.note``) in the problem.

It costs one substring search per JSON body: a NUL can only be written ``\\u0000`` in
JSON (a raw control character is invalid JSON), and only when that text is present is
the body parsed to find the field. Bodies of imports and uploads are not JSON requests:
their readers check what they read (``vigil.banks.entry``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.api.schemas.problems import FieldError, problem
from vigil.api.server.limits import route_kind
from vigil.banks.text import visible

MESSAGE = "NUL (U+0000) is not allowed in any text"


class RefuseNul:
    """Pure ASGI middleware; sits inside ``BodyLimits``, which bounds the JSON it reads."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field = in_target(scope)
        if field is None and scope["method"] in ("POST", "PUT", "PATCH") \
                and route_kind(scope["path"]) == "json":
            body, receive = await _buffered(receive)
            if b"\\u0000" in body:
                field = in_json(body)
        if field is None:
            await self.app(scope, receive, send)
            return
        await _drain(receive)
        errors = [FieldError(field=field, message=MESSAGE)]
        await problem(422, f"{field}: {MESSAGE}", Request(scope), errors)(scope, receive, send)


def in_target(scope: Scope) -> str | None:
    """``path`` or ``query.NAME`` if the request's target holds a NUL, else None."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" not in query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return "query." + visible(key)
    return None


def in_json(body: bytes) -> str | None:
    """Where (``body.a.3.b``) a JSON document holds a string with a NUL, or None (also
    when it is not JSON at all: the route then answers as for any malformed body)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("body", doc)]
    while stack:  # iterative: a deep document must not exhaust the stack
        where, node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return where
        elif isinstance(node, dict):
            for k, v in node.items():
                if "\x00" in k:
                    return f"{where}.{visible(k)}"
                stack.append((f"{where}.{visible(k)}", v))
        elif isinstance(node, list):
            stack.extend((f"{where}.{i}", v) for i, v in reversed(list(enumerate(node))))
    return None


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that gives it to the app again."""
    chunks: list[bytes] = []
    first: Message | None = None
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            first = msg  # the client went away: the app will see that
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    body = b"".join(chunks)
    pending: list[Message] = [first] if first is not None else \
        [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return body, replay


async def _drain(receive: Receive, limit: int = 1 << 20) -> None:
    """Read (a bounded part of) a refused body so the connection stays usable."""
    seen = 0
    while seen <= limit:
        msg = await receive()
        if msg["type"] != "http.request":
            return
        seen += len(msg.get("body", b""))
        if not msg.get("more_body"):
            return

"""The HTTP layer under the app: a bounded request head, and problem documents for the
errors uvicorn answers itself.

Why: some requests never reach the app. uvicorn answers a malformed request (a bad
request line, a non-numeric ``Content-Length``, broken chunked encoding, a non-ASCII
path) with ``400 Invalid HTTP request received.`` and an app that fails before it
responds with ``500 Internal Server Error``, both as plain text, while a client of the
node is promised ``application/problem+json`` for every error (:class:`LastResort`
covers the second). And its httptools parser
keeps a request's head (request line and headers) in memory however long it grows: a
client could send headers forever.

:class:`ProblemHttpToolsProtocol` is uvicorn's httptools protocol with those answers as
problem documents, a request head of at most ``MAX_HEAD_BYTES`` (431 beyond), and
WebSocket upgrades declined: the node serves none, so an ``Upgrade`` header is ignored
and the request is answered as plain HTTP (uvicorn's WebSocket layer answered a bare,
empty 403 instead).
"""

from __future__ import annotations

import http
import logging

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vigil.api.schemas.problems import PROBLEM, problem_body

log = logging.getLogger("uvicorn.error")
#: request line and headers of one request (a match with 1,000 bank names in its query
#: string fits; a typical request head is under 1 KiB)
MAX_HEAD_BYTES = 64 << 10
#: after refusing a request, how long (seconds) and how much more of it (bytes) the
#: connection reads and drops before it closes: closing at once with unread data makes
#: the kernel reset the connection, and the client would lose the answer
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 << 20


class HeadTooLarge(Exception):
    """Stops the parser at a request head past ``MAX_HEAD_BYTES``."""


def problem_response(status: int, detail: str) -> bytes:
    """A whole HTTP/1.1 response carrying a problem document; the connection closes."""
    body = orjson.dumps(problem_body(status, detail))
    phrase = http.HTTPStatus(status).phrase
    return b"".join([
        f"HTTP/1.1 {status} {phrase}\r\n".encode(),
        f"content-type: {PROBLEM}\r\ncontent-length: {len(body)}\r\n".encode(),
        b"connection: close\r\n\r\n", body])


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol; every answer it makes itself is a problem document."""

    _head_bytes = 0  # bytes of the current request head past the data it began in
    _in_head = False
    _began_here = False
    _refusal: tuple[int, str] | None = None
    _lingering = -1  # bytes dropped since the refusal (-1: not refused)

    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        self._began_here = False
        super().data_received(data)
        if self._in_head and not self._began_here and not self.transport.is_closing():
            # httptools holds a header until it ends: bound what an unfinished head takes
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                self.send_400_response("")

    def on_message_begin(self) -> None:
        self._in_head, self._began_here, self._head_bytes = True, True, 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > MAX_HEAD_BYTES:
            self._refuse_head()
            raise HeadTooLarge()  # the parser stops; uvicorn calls send_400_response
        super().on_headers_complete()

    def _refuse_head(self) -> None:
        self._refusal = (431, f"request line and headers: more than {MAX_HEAD_BYTES:,} bytes")

    def send_400_response(self, msg: str) -> None:
        status, detail = self._refusal or (
            400, "malformed HTTP request (request line, headers, Content-Length or "
                 "chunked encoding)")
        self.transport.write(problem_response(status, detail))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the answer is complete; what the client still
        self._lingering = 0  # sends is read and dropped, then the connection closes
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _should_upgrade_to_ws(self) -> bool:
        return False

    def _unsupported_upgrade_warning(self) -> None:
        log.debug("upgrade request answered as plain HTTP (the node serves no WebSocket)")


class LastResort:
    """The outermost ASGI layer: an exception that escapes everything inside (the app's
    own handlers answer all they see) gets a problem document, not uvicorn's plain text,
    if no response has started; the exception is logged either way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = orjson.dumps(problem_body(
                500, "an internal error occurred; the node's log has the details",
                scope.get("path")))
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", PROBLEM.encode()),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

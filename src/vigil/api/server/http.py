"""uvicorn's httptools protocol, with a response's writes made in one system call.

Why: uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and the body as a second write when ``http.response.body``
follows. Over TCP that is two system calls and two segments for every small JSON answer;
on loopback each one also runs the receiving side's network stack, and at thousands of
match requests a second the pair was a tenth of a worker's CPU (py-spy, bench/HISTORY.md).

``CoalescingTransport`` keeps a write back until the next one (a head until its body)
and hands both to the real transport as one; a write nothing follows goes out when the
current turn of the event loop ends (``loop.call_soon``), or before anything that must
see it sent (close, EOF, a protocol switch). Order is kept, no byte is held longer than
the current turn, and everything else is the real transport's.
``vigil serve`` runs uvicorn with ``CoalescingHttpToolsProtocol``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from vigil.api.server.wire import ProblemHttpToolsProtocol


class CoalescingTransport(asyncio.Transport):
    """A transport that sends a response's head and body as one write.

    A real ``asyncio.Transport`` (what uvicorn's protocol is typed to take) that hands
    every call but the writes to the transport it wraps."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._pending:  # a head, now with its body: out together, at once
            self._pending.append(bytes(data))
            self.flush()
            return
        self._loop.call_soon(self.flush)  # at the latest when this turn ends
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in list_of_data:
            self.write(chunk)

    def flush(self) -> None:
        """Hand everything kept so far to the real transport (one write)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    # everything else is the real transport's
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


class CoalescingHttpToolsProtocol(ProblemHttpToolsProtocol):
    """uvicorn's httptools protocol (with problem documents: ``vigil.api.server.wire``) on
    a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP connection's stream transport: asyncio's are asyncio.Transport; uvloop's
        # (uvicorn runs on uvloop where it is installed) have its methods, not its class.
        stream = cast(asyncio.Transport, transport)
        super().connection_made(CoalescingTransport(stream, self.loop))

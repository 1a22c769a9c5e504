"""Bridges between the async HTTP body and the synchronous format readers and writers.

Imports and exports are streamed both ways: an import reads the request body chunk by
chunk as the format reader asks for bytes (so memory stays flat and nothing is written
to disk), and an export yields what the format writer writes as it writes it.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio.from_thread


class BodyReader(io.RawIOBase):
    """A blocking binary file over an async byte stream; use from a worker thread only."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buf = b""
        self._done = False
        self.name = "<request body>"

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._done:
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._done = True
            else:
                self._buf = chunk
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _QueueSink(io.RawIOBase):
    def __init__(self, q: queue.Queue[bytes | BaseException | None]) -> None:
        super().__init__()
        self._q = q

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        if data:
            self._q.put(data)
        return len(data)


def stream_writer(write: Callable[[io.RawIOBase], object], chunk: int = 1 << 16,
                  ) -> Iterator[bytes]:
    """Run ``write(sink)`` in a thread and yield what it writes, in chunks of ~``chunk``.

    The queue is bounded, so a slow client slows the writer instead of filling memory.
    """
    q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=64)

    def run() -> None:
        try:
            sink = io.BufferedWriter(_QueueSink(q), buffer_size=chunk)
            write(sink)  # type: ignore[arg-type]
            sink.flush()
            q.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises
            q.put(exc)

    t = threading.Thread(target=run, name="vigil-export", daemon=True)
    t.start()
    while True:
        item = q.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    t.join()

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


class ExportCancelled(Exception):
    """The consumer of a streamed export went away (the client disconnected)."""


class _QueueSink(io.RawIOBase):
    def __init__(self, q: queue.Queue[bytes | BaseException | None],
                 stop: threading.Event) -> None:
        super().__init__()
        self._q = q
        self._stop = stop
        #: set once the writer failed: what its buffer still flushes (on close) is dropped
        self.discard = False

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        if data and not self.discard:
            while True:  # a bounded wait, so a writer whose reader is gone does not hang
                try:
                    self._q.put(data, timeout=0.5)
                    break
                except queue.Full:
                    if self._stop.is_set():
                        raise ExportCancelled("the client went away") from None
        return len(data)


def stream_writer(write: Callable[[io.RawIOBase], object], chunk: int = 1 << 16,
                  ) -> Iterator[bytes]:
    """Run ``write(sink)`` in a thread and yield what it writes, in chunks of ~``chunk``.

    The queue is bounded, so a slow client slows the writer instead of filling memory.
    An exception of the writer is raised here, after the chunks written before it, so
    the response ends without its final chunk and the client sees an incomplete body
    (see ``export`` in ``vigil.api.routes.banks``). If the consumer stops early (the
    client went away), the writer is stopped at its next write instead of waiting for
    a reader forever while it holds a database connection.
    """
    q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=64)
    stop = threading.Event()

    def run() -> None:
        raw = _QueueSink(q, stop)
        try:
            sink = io.BufferedWriter(raw, buffer_size=chunk)
            write(sink)  # type: ignore[arg-type]
            sink.flush()
            _put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises
            raw.discard = True
            _put(exc)

    def _put(item: bytes | BaseException | None) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.5)
                return
            except queue.Full:
                pass

    t = threading.Thread(target=run, name="vigil-export", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
    t.join()

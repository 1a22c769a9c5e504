"""Raw HTTP/1.1 over a socket, for requests no client library would send."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(url: str, data: bytes, timeout: float = 30) -> RawResponse:
    """Send ``data`` as is to the server at ``url``; read one response (to its
    Content-Length, or until the server closes)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before a response: {buf[:200]!r}")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:])}
        want = int(headers.get("content-length", "-1"))
        head_only = data.startswith(b"HEAD ")
        while not head_only and (want < 0 or len(body) < want):
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            body += chunk
        return RawResponse(status, headers, body if head_only or want < 0 else body[:want])

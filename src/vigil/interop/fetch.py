"""Fetching media by URL for HMA-style lookups, only from hosts the operator allowed.

HMA's ``GET /h/hash?url=`` and ``GET /m/lookup?url=`` make the server download a URL. A
Vigil node holds an agency's banks, so it downloads nothing unless its operator named the
hosts it may fetch from (``VIGIL_HMA_FETCH_HOSTS``: comma-separated ``host`` or
``host:port``; unset, every URL is refused). The bytes are held in memory, never written
to disk, and dropped after hashing. Limits: http and https only, no redirects, at most
the node's upload limit in bytes, ``TIMEOUT`` seconds.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import httpx

ENV = "VIGIL_HMA_FETCH_HOSTS"
TIMEOUT = 30.0


class FetchRefused(Exception):
    """The URL may not be or could not be fetched; the message says why (never the body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def allowed_hosts() -> frozenset[str]:
    return frozenset(h.strip().lower() for h in os.environ.get(ENV, "").split(",") if h.strip())


def fetch(url: str, limit: int, transport: httpx.BaseTransport | None = None,
          ) -> tuple[bytes, str]:
    """The body and content type at ``url`` (see the module doc for what is refused)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(400, "url must be an http:// or https:// URL with a host")
    host = parts.hostname.lower()
    hosts = allowed_hosts()
    if host not in hosts and f"{host}:{parts.port}" not in hosts:
        raise FetchRefused(403, f"this node fetches URLs only from the hosts in {ENV}; "
                                f"{host!r} is not one (upload the file instead)")
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=transport) as c, \
                c.stream("GET", url) as r:
            if r.status_code != 200:
                raise FetchRefused(400, f"fetching the url answered {r.status_code} "
                                        "(redirects are not followed)")
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise FetchRefused(413, f"the url's content is larger than {limit:,} bytes")
            return bytes(body), r.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise FetchRefused(400, f"fetching the url failed: {type(exc).__name__}") from None


__all__ = ["ENV", "FetchRefused", "allowed_hosts", "fetch"]

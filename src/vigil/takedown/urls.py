"""Reported URLs at the door: what a URL must be before it is stored, and its host's
registrable domain.

A URL is refused (``UrlError``, naming what is wrong) unless it is ``http`` or ``https``
with a host, has no user name or password in it (credentials are never stored), no
whitespace or control characters, a valid port, and at most ``MAX_URL_CHARS``
characters. It is stored normalised: scheme and host lowercased, an internationalised
host in its ASCII (IDNA) form, the fragment dropped (it never reaches the server).

The registrable domain (``example.co.uk`` for ``img.cdn.example.co.uk``) is what the
contact table and the per-host figures key on. It comes from ``tldextract`` with the
public suffix list bundled in the package: no network fetch and no cache on disk, so a
node works offline and an outside list can never change how hosts are grouped.
"""

from __future__ import annotations

import hashlib
import ipaddress
from functools import cache
from urllib.parse import SplitResult, urlsplit, urlunsplit

MAX_URL_CHARS = 2048


class UrlError(ValueError):
    """A URL that cannot be taken; the message says why."""


def normalise(url: str) -> str:
    """The URL as stored, or ``UrlError`` saying what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise UrlError("url is empty")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise UrlError(f"url is longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UrlError("url holds whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"url cannot be parsed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UrlError("url must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UrlError("url must not hold a user name or password")
    host = parts.hostname
    if not host:
        raise UrlError("url has no host")
    try:
        ascii_host = _ascii_host(host)
    except UnicodeError:
        raise UrlError("url's host is not a valid domain name") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit(SplitResult(parts.scheme.lower(), netloc, parts.path or "/",
                                  parts.query, ""))


def _ascii_host(host: str) -> str:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    host = host.lower().rstrip(".")
    if not host or len(host) > 253:
        raise UnicodeError("bad length")
    out = host.encode("idna").decode("ascii")
    if any(not label or len(label) > 63 for label in out.split(".")):
        raise UnicodeError("bad label")
    return out


def url_key(url: str) -> str:
    """A fixed-size key for a stored URL (unique index without indexing long text)."""
    return hashlib.sha256(url.encode()).hexdigest()


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


@cache
def _extractor() -> object:
    import tldextract

    # suffix_list_urls=(): never fetch the list; cache_dir=None: never write it to disk;
    # the snapshot bundled with the package is used.
    # private suffixes too (github.io, blogspot.com): each name under one is registered by
    # someone else, and notices go to whoever hosts that name
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                 fallback_to_snapshot=True, include_psl_private_domains=True)


def registrable_domain(host: str) -> str:
    """``example.co.uk`` for ``a.b.example.co.uk``; an IP address or a name with no
    public suffix (``localhost``) is its own domain."""
    host = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    ext = _extractor()(host)  # type: ignore[operator]
    if ext.domain and ext.suffix:
        return f"{ext.domain}.{ext.suffix}"
    return host

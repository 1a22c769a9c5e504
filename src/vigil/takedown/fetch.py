"""The safe fetcher: download a reported URL within hard limits, hash it in memory, drop it.

A reported URL points at a server nobody here controls, and the node fetching it sits
inside an agency's network. So every fetch is bounded and guarded:

* **addresses**: every connection, the first and each redirect's, goes to an address
  this module resolved and checked itself (``GuardedBackend``): loopback, private,
  link-local, shared, multicast, reserved and unspecified addresses are refused unless
  ``FetchLimits.allow_networks`` names them. The socket connects to the checked address,
  so a second DNS answer (rebinding) cannot slip another one in. This is what keeps a
  reported URL from reaching the agency's own services (server-side request forgery).
* **redirects** are followed by hand, at most ``max_redirects``; a URL seen twice is a loop.
* **bytes**: a ``Content-Length`` over ``max_bytes`` is refused before reading; the body
  is read in chunks and refused as soon as it passes ``max_bytes``.
* **time**: the whole fetch, redirects and a slowly dripping body included, is refused
  once it passes ``total_seconds`` (checked after each chunk; one read waits at most
  ``read_seconds``, so a fetch ends within ``total_seconds + read_seconds``).
* **content types**: only the ``content_types`` prefixes (images, videos, and untyped
  bytes, which are sniffed) are read; the pipeline must then find an image or a video.
* **no compression** (``identity`` is asked for; an encoded body is refused, so no
  bomb inflates past the cap), **no cookies** (a jar that refuses every cookie), no
  proxies from the environment, no credentials.

The body is hashed with the one pipeline of ``vigil hash`` (``vigil.signals.hash_bytes``)
and dropped: content never touches the disk, and only its signals leave this module.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

from vigil import __version__
from vigil.signals import FileSignals, HashOptions, hash_bytes

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: statuses that say the content is gone from the URL
GONE_STATUSES = frozenset({404, 410, 451})
USER_AGENT = f"Vigil/{__version__} (takedown verification)"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """The hard limits of one fetch (see the module doc)."""

    max_bytes: int = 32 * 1024 * 1024
    total_seconds: float = 30.0
    connect_seconds: float = 10.0
    read_seconds: float = 10.0
    max_redirects: int = 5
    content_types: tuple[str, ...] = ("image/", "video/", "application/octet-stream")
    #: networks that may be fetched from although not global (tests: 127.0.0.0/8)
    allow_networks: tuple[Network, ...] = ()


class FetchError(Exception):
    """Why a URL could not be fetched and hashed. ``code`` is stable, the message is for
    people and never holds the content."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class FetchResult:
    """What one fetch found: the answer's facts, and the signals or the error."""

    url: str
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    #: the IP address connected to for the final answer
    address: str | None = None
    seconds: float = 0.0
    size: int | None = None
    signals: FileSignals | None = None
    error: FetchError | None = None
    redirects: list[str] = field(default_factory=list)

    @property
    def gone(self) -> bool:
        """The server says the content is not there (404, 410, 451)."""
        return self.status in GONE_STATUSES

    @property
    def ok(self) -> bool:
        return self.error is None and self.signals is not None


def address_allowed(addr: Address, allow: Iterable[Network] = ()) -> bool:
    """Whether a connection to ``addr`` is allowed: a global address, or one inside a
    network the configuration allows. An IPv4 address mapped into IPv6 is judged as the
    IPv4 address it is."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if any(addr.version == n.version and addr in n for n in allow):
        return True
    return addr.is_global and not addr.is_multicast


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend that connects only to addresses it checked itself."""

    def __init__(self, allow: tuple[Network, ...]) -> None:
        self.allow = allow
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[typing.Any] | None = None,
                    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError("dns", f"the host {host!r} could not be resolved "
                                    f"({exc.args[-1] if exc.args else exc})") from None
        addrs = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        refused = [a for a in addrs if not address_allowed(a, self.allow)]
        if refused or not addrs:
            shown = refused[0] if refused else "nothing"
            raise FetchError("address-refused", f"the host {host!r} resolves to {shown}, a "
                                                "private, loopback, link-local or reserved "
                                                "address this node does not fetch from")
        return self._inner.connect_tcp(str(addrs[0]), port, timeout, local_address,
                                       socket_options)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[typing.Any] | None = None,
                            ) -> httpcore.NetworkStream:
        raise FetchError("address-refused", "unix sockets are never fetched from")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _no_cookies() -> CookieJar:
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class Fetcher:
    """Fetches and hashes URLs within ``limits``; one instance is shared by threads (its
    connection pool is thread-safe)."""

    def __init__(self, limits: FetchLimits | None = None,
                 options: HashOptions | None = None, connections: int = 100) -> None:
        self.limits = limits or FetchLimits()
        # dihedral variants cost nothing more (DESIGN.md) and find mirrored re-uploads
        self.options = options or HashOptions(dihedral=True)
        transport = httpx.HTTPTransport(
            trust_env=False, limits=httpx.Limits(max_connections=connections,
                                                 max_keepalive_connections=connections))
        pool = getattr(transport, "_pool", None)
        if not isinstance(pool, httpcore.ConnectionPool) or \
                not hasattr(pool, "_network_backend"):
            raise RuntimeError("this httpx/httpcore version hides its connection pool: the "
                               "fetcher cannot guard its connections")
        pool._network_backend = GuardedBackend(self.limits.allow_networks)
        self.client = httpx.Client(transport=transport, trust_env=False,
                                   follow_redirects=False, cookies=_no_cookies(),
                                   headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity",
                                            "Accept": "image/*, video/*;q=0.9, */*;q=0.1"})

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, url: str) -> FetchResult:
        """Fetch, check and hash ``url``. Never raises for what the server does: the
        result carries the error (``FetchResult.error``)."""
        t0 = time.monotonic()
        result = FetchResult(url=url)
        try:
            body = self._get(url, result, t0)
            if body is not None:
                result.signals = self._hash(body, url)
        except FetchError as exc:
            result.error = exc
        except httpx.TimeoutException:
            result.error = FetchError("timeout", f"no answer within the time limit "
                                                 f"({self.limits.total_seconds:g} s)")
        except httpx.HTTPError as exc:
            result.error = FetchError("http", f"fetching failed: {type(exc).__name__}: "
                                              f"{str(exc)[:200]}")
        finally:
            result.seconds = time.monotonic() - t0
        return result

    def _remaining(self, t0: float) -> float:
        left = self.limits.total_seconds - (time.monotonic() - t0)
        if left <= 0:
            raise FetchError("too-slow", f"the fetch took longer than "
                                         f"{self.limits.total_seconds:g} s")
        return left

    def _get(self, url: str, result: FetchResult, t0: float) -> bytes | None:
        lim = self.limits
        seen = {url}
        for _hop in range(lim.max_redirects + 1):
            left = self._remaining(t0)
            timeout = httpx.Timeout(connect=min(lim.connect_seconds, left),
                                    read=min(lim.read_seconds, left),
                                    write=min(lim.read_seconds, left), pool=left)
            request = self.client.build_request("GET", url, timeout=timeout)
            request.headers.pop("Cookie", None)
            response = self.client.send(request, stream=True, follow_redirects=False)
            try:
                result.final_url, result.status = str(response.url), response.status_code
                result.content_type = response.headers.get("content-type", "")[:200] or None
                stream = response.extensions.get("network_stream")
                if stream is not None:
                    peer = stream.get_extra_info("server_addr")
                    result.address = str(peer[0]) if peer else None
                if response.is_redirect:
                    url = self._next(response, seen)
                    result.redirects.append(url)
                    continue
                if response.status_code in GONE_STATUSES:
                    return None
                if response.status_code != 200:
                    raise FetchError("http-status", f"the server answered "
                                                    f"{response.status_code}")
                self._check_type(result.content_type)
                return self._read(response, t0)
            finally:
                response.close()
        raise FetchError("too-many-redirects", f"more than {lim.max_redirects} redirects")

    @staticmethod
    def _next(response: httpx.Response, seen: set[str]) -> str:
        location = response.headers.get("location")
        if not location:
            raise FetchError("http", f"a {response.status_code} redirect without a Location")
        try:
            nxt = response.url.join(location)
        except (httpx.InvalidURL, ValueError):
            raise FetchError("bad-redirect", "a redirect to an invalid URL") from None
        if nxt.scheme not in ("http", "https"):
            raise FetchError("bad-redirect", f"a redirect to a {nxt.scheme}: URL "
                                             "(only http and https are followed)")
        text = str(nxt)
        if text in seen:
            raise FetchError("redirect-loop", "the redirects go round in a loop")
        seen.add(text)
        return text

    def _check_type(self, content_type: str | None) -> None:
        media = (content_type or "application/octet-stream").split(";", 1)[0].strip().lower()
        if not any(media.startswith(p) for p in self.limits.content_types):
            raise FetchError("content-type", f"the content type {media[:80]!r} is not an "
                                             "image or a video")

    def _read(self, response: httpx.Response, t0: float) -> bytes:
        cap = self.limits.max_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise FetchError("too-large", f"the content is {int(declared):,} bytes, over "
                                          f"the limit of {cap:,}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            # asked for identity: a compressed answer could inflate past any cap
            raise FetchError("content-encoding", f"the content is {encoding[:40]}-encoded "
                                                 "although identity was asked for")
        body = bytearray()
        for chunk in response.iter_raw():  # as it arrives (a chunk size would buffer)
            body += chunk
            if len(body) > cap:
                raise FetchError("too-large", f"the content is over the limit of {cap:,} "
                                              "bytes")
            self._remaining(t0)
        return bytes(body)

    def _hash(self, body: bytes, url: str) -> FileSignals:
        signals = hash_bytes(body, url, self.options)
        if signals.kind not in ("image", "video"):
            raise FetchError("not-media", "the content is not an image or a video this "
                                          "node can hash")
        return signals

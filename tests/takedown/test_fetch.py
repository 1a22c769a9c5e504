"""The safe fetcher against misbehaving loopback servers: every refusal has its code and
a clear message, and nothing is followed, read or kept past a limit."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import encode
from tests.takedown.conftest import LOOPBACK, WebHost
from vigil.demo.synthetic import synthetic_image
from vigil.signals import hash_bytes
from vigil.takedown.fetch import Fetcher, FetchLimits, address_allowed
from vigil.takedown.urls import registrable_domain

JPEG = encode(synthetic_image(3, (320, 240)))


def fetcher(**kw: object) -> Fetcher:
    return Fetcher(FetchLimits(allow_networks=LOOPBACK, **kw))  # type: ignore[arg-type]


def redirect(to: str, status: int = 302) -> Callable[[BaseHTTPRequestHandler], None]:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("location", to)
        h.send_header("set-cookie", "session=abc; Path=/")
        h.send_header("content-length", "0")
        h.end_headers()
    return route


@pytest.fixture
def host(web: Callable[[str], WebHost]) -> WebHost:
    h = web("127.0.0.1")
    h.files["/ok.jpg"] = (JPEG, "image/jpeg")
    return h


def test_an_image_is_hashed_with_the_pipeline_of_vigil_hash(host: WebHost) -> None:
    ref = hash_bytes(JPEG, "x")  # (and the PDQ kernels compiled before the clock runs)
    with fetcher() as f:
        r = f.fetch(host.url("/ok.jpg"))
    assert r.ok and r.error is None
    assert r.signals is not None and r.signals.digests == ref.digests
    assert r.signals.pdq is not None and ref.pdq is not None
    assert r.signals.pdq.hex == ref.pdq.hex
    assert (r.status, r.content_type, r.address) == (200, "image/jpeg", "127.0.0.1")
    assert r.final_url == host.url("/ok.jpg") and 0 < r.seconds < 10


def test_loopback_is_refused_unless_the_configuration_allows_it(host: WebHost) -> None:
    with Fetcher(FetchLimits()) as f:
        r = f.fetch(host.url("/ok.jpg"))
    assert r.error is not None and r.error.code == "address-refused"
    assert "127.0.0.1" in str(r.error) and host.requests == []  # never connected


@pytest.mark.parametrize("addr,ok", [
    ("8.8.8.8", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
    ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False),
    ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False), ("fe80::1", False),
    ("fc00::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("224.0.0.1", False), ("255.255.255.255", False)])
def test_which_addresses_are_allowed(addr: str, ok: bool) -> None:
    assert address_allowed(ipaddress.ip_address(addr)) is ok


def test_a_redirect_to_a_private_address_is_refused(host: WebHost) -> None:
    host.routes["/r"] = redirect("http://10.0.0.1/x.jpg")
    host.routes["/r6"] = redirect("http://[::1]:9/x.jpg")
    with Fetcher(FetchLimits(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))) as f:
        for path, shown in (("/r", "10.0.0.1"), ("/r6", "::1")):
            r = f.fetch(host.url(path))
            assert r.error is not None and r.error.code == "address-refused", r.error
            assert shown in str(r.error)
            assert r.status == 302  # the first hop was fetched and recorded


def test_redirects_are_followed_within_the_limit_and_without_cookies(host: WebHost) -> None:
    host.routes["/r1"] = redirect("/r2", 301)
    host.routes["/r2"] = redirect(host.url("/ok.jpg"), 307)
    with fetcher() as f:
        r = f.fetch(host.url("/r1"))
        assert r.ok and r.final_url == host.url("/ok.jpg") and len(r.redirects) == 2
        assert all("cookie" not in req for req in host.requests)  # set, never sent back
        r = fetcher(max_redirects=1).fetch(host.url("/r1"))
    assert r.error is not None and r.error.code == "too-many-redirects"


def test_a_redirect_loop_is_refused(host: WebHost) -> None:
    host.routes["/a"] = redirect("/b")
    host.routes["/b"] = redirect("/a")
    with fetcher() as f:
        r = f.fetch(host.url("/a"))
    assert r.error is not None and r.error.code == "redirect-loop"
    assert len(host.requests) == 2
    host.routes["/ftp"] = redirect("ftp://example.com/x")
    r = fetcher().fetch(host.url("/ftp"))
    assert r.error is not None and r.error.code == "bad-redirect"


def test_a_non_image_is_refused(host: WebHost) -> None:
    host.files["/page"] = (b"<html>hello</html>", "text/html; charset=utf-8")
    host.files["/fake.jpg"] = (b"<html>not a jpeg</html>" * 20, "image/jpeg")
    with fetcher() as f:
        r = f.fetch(host.url("/page"))
        assert r.error is not None and r.error.code == "content-type"
        assert "text/html" in str(r.error)
        r = f.fetch(host.url("/fake.jpg"))
        assert r.error is not None and r.error.code == "not-media"


def test_a_response_over_the_size_cap_is_refused(host: WebHost) -> None:
    big = JPEG + b"\0" * 200_000

    def chunked(h: BaseHTTPRequestHandler) -> None:  # no Content-Length: counted as read
        h.send_response(200)
        h.send_header("content-type", "image/jpeg")
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        for i in range(0, len(big), 10_000):
            part = big[i:i + 10_000]
            h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    host.files["/big.jpg"] = (big, "image/jpeg")
    host.routes["/chunked.jpg"] = chunked
    with fetcher(max_bytes=100_000) as f:
        for path in ("/big.jpg", "/chunked.jpg"):
            r = f.fetch(host.url(path))
            assert r.error is not None and r.error.code == "too-large", (path, r.error)
            assert "100,000" in str(r.error) and r.signals is None


def test_a_slow_drip_is_cut_at_the_time_limit(host: WebHost) -> None:
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("content-type", "image/jpeg")
        h.send_header("content-length", str(len(JPEG)))
        h.end_headers()
        try:
            for i in range(len(JPEG)):
                h.wfile.write(JPEG[i:i + 1])
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    host.routes["/drip.jpg"] = drip
    t0 = time.monotonic()
    with fetcher(total_seconds=1.5, read_seconds=1.0) as f:
        r = f.fetch(host.url("/drip.jpg"))
    took = time.monotonic() - t0
    assert r.error is not None and r.error.code == "too-slow", r.error
    assert 1.5 <= took < 1.5 + 1.0 + 0.5


def test_a_compressed_answer_is_refused(host: WebHost) -> None:
    def gz(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("content-type", "image/jpeg")
        h.send_header("content-encoding", "gzip")
        h.send_header("content-length", "4")
        h.end_headers()
        h.wfile.write(b"\x1f\x8b\0\0")

    host.routes["/gz.jpg"] = gz
    r = fetcher().fetch(host.url("/gz.jpg"))
    assert r.error is not None and r.error.code == "content-encoding"


def test_gone_and_server_errors(host: WebHost) -> None:
    def status(code: int) -> Callable[[BaseHTTPRequestHandler], None]:
        def route(h: BaseHTTPRequestHandler) -> None:
            h.send_response(code)
            h.send_header("content-length", "0")
            h.end_headers()
        return route

    host.routes["/410"] = status(410)
    host.routes["/503"] = status(503)
    with fetcher() as f:
        r = f.fetch(host.url("/missing.jpg"))
        assert r.gone and r.error is None and r.status == 404
        assert f.fetch(host.url("/410")).gone
        r = f.fetch(host.url("/503"))
        assert not r.gone and r.error is not None and r.error.code == "http-status"
        r = f.fetch("http://no-such-host.invalid/x.jpg")
        assert r.error is not None and r.error.code == "dns"


def test_nothing_is_written_to_disk(host: WebHost, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with fetcher() as f:
        assert f.fetch(host.url("/ok.jpg")).ok
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("host,domain", [
    ("img.cdn.example.co.uk", "example.co.uk"), ("example.com", "example.com"),
    ("a.b.github.io", "b.github.io"), ("127.0.0.2", "127.0.0.2"), ("localhost", "localhost"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example")])
def test_registrable_domains_come_from_the_bundled_list(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain

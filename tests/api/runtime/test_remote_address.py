"""The caller's address in the audit log: the connection's, unless a proxy the operator
named (VIGIL_TRUSTED_PROXIES) forwarded the request; only ever a valid IP address."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import Node, serve, stop
from vigil.api.runtime.auth import client_address
from vigil.api.runtime.settings import Settings

LOCAL = ("127.0.0.1", 50000)
PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))
MD5 = "0123456789abcdef" * 2


def _xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", v.encode()) for v in values]


@pytest.mark.parametrize(("client", "headers", "trusted", "expect"), [
    (LOCAL, _xff("203.0.113.7"), (), "127.0.0.1"),  # no proxy trusted: the connection
    (LOCAL, _xff("<script>alert(1)</script>"), (), "127.0.0.1"),
    (LOCAL, _xff("203.0.113.7"), PROXIES, "203.0.113.7"),
    (LOCAL, _xff("<script>alert(1)</script>"), PROXIES, "127.0.0.1"),
    (LOCAL, _xff("198.51.100.1, 10.1.2.3"), PROXIES, "198.51.100.1"),  # two trusted hops
    (LOCAL, _xff("6.6.6.6, 198.51.100.1"), PROXIES, "198.51.100.1"),  # a forged left part
    (LOCAL, _xff("6.6.6.6", "198.51.100.1"), PROXIES, "198.51.100.1"),  # two header lines
    (LOCAL, _xff("junk, 10.1.2.3"), PROXIES, "10.1.2.3"),  # believe nothing left of junk
    (LOCAL, _xff("10.9.9.9, 10.1.2.3"), PROXIES, "10.9.9.9"),  # all trusted: the farthest
    (LOCAL, _xff("2001:DB8:0:0::1"), PROXIES, "2001:db8::1"),  # normalised
    (LOCAL, _xff("203.0.113.7:4711"), PROXIES, "127.0.0.1"),  # with a port: not an address
    (("203.0.113.50", 1), _xff("198.51.100.1"), PROXIES, "203.0.113.50"),  # not a proxy
    (("::ffff:127.0.0.1", 1), _xff("198.51.100.1"), PROXIES, "198.51.100.1"),  # mapped v4
    (None, _xff("198.51.100.1"), PROXIES, None),
    (("not-an-ip", 1), [], (), None),
])
def test_client_address(client, headers, trusted, expect) -> None:  # type: ignore[no-untyped-def]
    assert client_address(client, headers, trusted) == expect


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8 ::1")
    assert [str(n) for n in Settings.from_env().trusted_proxies] == [
        "127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    monkeypatch.setenv("VIGIL_TRUSTED_PROXIES", "")
    assert Settings.from_env().trusted_proxies == ()
    monkeypatch.setenv("VIGIL_TRUSTED_PROXIES", "127.0.0.1 proxy.example")
    with pytest.raises(ValueError, match=r"VIGIL_TRUSTED_PROXIES: 'proxy\.example' is not"):
        Settings.from_env()


def _recorded(node: Node, url: str, forwarded: str) -> tuple[str | None, str | None]:
    """(remote of a bank.create, remote of a match answered by the lean path), both
    requested with ``X-Forwarded-For: forwarded``."""
    headers = {"Authorization": f"Bearer {node.tokens[('SG-SPF', 'admin')]}",
               "X-Forwarded-For": forwarded}
    name = f"xff-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        assert c.post("/v1/banks", json={"name": name}).status_code == 201
        with node.client("auditor") as a:
            last = a.get("/v1/audit", params={"limit": 1000, "action": "match"}).json()
        after = max([r["id"] for r in last], default=0)
        for _ in range(6):  # the first requests cache the token; then the lean path answers
            assert c.post("/v1/match", json={"signals": [{"type": "md5", "value": MD5}]}
                          ).status_code == 200
    with node.client("auditor") as a:
        made = [r for r in a.get("/v1/audit", params={"limit": 1000, "action": "bank.create"}
                                 ).json() if r["target"] == name]
        matches = a.get("/v1/audit", params={"after_id": after, "action": "match",
                                             "limit": 1000}).json()
    remotes = {r["remote"] for r in matches if r["actor"] == "SG-SPF/admin"}
    assert len(remotes) == 1, remotes
    return made[0]["remote"], remotes.pop()


def test_forwarded_for_is_ignored_by_default(node: Node) -> None:
    assert _recorded(node, node.url, "<script>alert(1)</script>") == ("127.0.0.1", "127.0.0.1")
    assert _recorded(node, node.url, "203.0.113.7") == ("127.0.0.1", "127.0.0.1")


@pytest.fixture
def behind_proxy(node: Node) -> Iterator[str]:
    """A server on the test node that trusts loopback as its reverse proxy."""
    url, proc = serve(node.home, node.db_url, node.workers, name=f"xff-{uuid.uuid4().hex[:6]}",
                      VIGIL_TRUSTED_PROXIES="127.0.0.1")
    try:
        yield url
    finally:
        stop(proc)


def test_forwarded_for_from_a_trusted_proxy_is_validated(node: Node, behind_proxy: str) -> None:
    assert _recorded(node, behind_proxy, "203.0.113.7") == ("203.0.113.7", "203.0.113.7")
    assert _recorded(node, behind_proxy, "<script>alert(1)</script>") == (
        "127.0.0.1", "127.0.0.1")

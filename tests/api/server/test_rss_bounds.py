"""A node survives hostile requests in bounded memory (issue 15: one request of 400 KB
grew a node to 24 GB until the OOM killer ended it).

A fresh `vigil serve` on the test node's store (so its processes' peak RSS starts low)
gets each hostile request; each must answer a 4xx problem document within seconds, and
the server processes' RSS — and their peak, VmHWM — may grow by less than 100 MB in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Node, serve, stop
from tests.api.wire import raw_request

MB = 1 << 20
MD5 = uuid.uuid4().hex  # this module's own: the test node's banks are shared by all tests
JSON = {"content-type": "application/json"}
OCTET = {"content-type": "application/octet-stream"}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _processes(root: int) -> list[int]:
    """``root`` and its descendants (the supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _memory(pids: list[int]) -> dict[int, tuple[int, int]]:
    """pid -> (VmRSS, VmHWM) in bytes."""
    out = {}
    for pid in pids:
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
        out[pid] = (fields["VmRSS"], fields["VmHWM"])
    return out


def _stream(head: bytes, unit: bytes, size: int, tail: bytes = b"") -> Iterator[bytes]:
    yield head
    block = unit * ((1 << 16) // len(unit))
    for _ in range(size // len(block)):
        yield block
    yield tail


def _hostile(bank: str) -> list[tuple[str, Callable[[httpx.Client], httpx.Response]]]:
    imp = f"/v1/banks/{bank}/import"
    return [
        ("the VICS import of issue 15", lambda c: c.post(
            f"{imp}?format=vics", headers=OCTET,
            content=b'{"value":' + b"[" * 200_000 + b"]" * 200_000 + b"}")),
        ("an endless VICS string, 64 MB", lambda c: c.post(
            f"{imp}?format=vics", headers=OCTET,
            content=_stream(b'{"value":[{"MD5":"', b"a", 64 * MB))),
        ("a CSV line of 64 MB", lambda c: c.post(
            f"{imp}?format=csv", headers=OCTET,
            content=_stream(b"signal_type,hash\nmd5,", b"a", 64 * MB))),
        ("NCMEC XML text of 64 MB", lambda c: c.post(
            f"{imp}?format=ncmec", headers=OCTET,
            content=_stream(b"<records><record><md5>", b"a", 64 * MB))),
        ("NCMEC XML nested a million deep", lambda c: c.post(
            f"{imp}?format=ncmec", headers=OCTET,
            content=_stream(b"<records>", b"<a>", 3 * MB))),
        ("a match body of 600,000 keys", lambda c: c.post(
            "/v1/match", headers=JSON,
            content=("{" + ",".join(f'"k{i}":1' for i in range(600_000)) + "}").encode())),
        ("a match body nested 200,000 deep", lambda c: c.post(
            "/v1/match", headers=JSON,
            content=b'{"signals":' + b"[" * 200_000 + b"]" * 200_000 + b"}")),
        ("10,000 signals of 20 unknown keys", lambda c: c.post(
            "/v1/match", json={"signals": [{f"k{j}": 1 for j in range(20)}] * 10_000})),
        ("2,500,000 empty lists", lambda c: c.post(
            "/v1/match", headers=JSON, content=b'{"signals":[' + b"[]," * 2_500_000 + b"[]]}")),
        ("entries of 8 MB of one-letter tags", lambda c: c.post(
            f"/v1/banks/{bank}/entries", headers=JSON,
            content=json.dumps({"entries": [{"type": "md5", "value": MD5,
                                             "tags": ["a"] * 1_500_000}]}).encode())),
    ]


@pytest.fixture
def fresh(node: Node) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A second server on the test node's store and home, started for this test."""
    url, proc = serve(node.home, node.db_url, node.workers, name=f"rss-{uuid.uuid4().hex[:6]}")
    try:
        yield url, proc
    finally:
        stop(proc)


def test_hostile_requests_are_refused_in_bounded_memory(
        node: Node, fresh: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = fresh
    headers = {"Authorization": f"Bearer {node.tokens[('SG-SPF', 'admin')]}"}
    bank = f"rss-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
        assert c.post("/v1/banks", json={"name": bank}).status_code == 201
        for _ in range(2 * node.workers):  # warm every worker up: imports, caches, a match
            assert c.post("/v1/match", json={"signals": [{"type": "md5", "value": MD5}]}
                          ).status_code == 200
            assert c.post(f"/v1/banks/{bank}/import?format=csv", headers=OCTET,
                          content=b"signal_type,hash\nmd5," + MD5.encode() + b"\n"
                          ).status_code == 200
        pids = _processes(proc.pid)
        before = _memory(pids)
        for what, send in _hostile(bank):
            start = time.perf_counter()
            r = send(c)
            took = time.perf_counter() - start
            assert 400 <= r.status_code < 500, (what, r.status_code, r.text[:300])
            assert r.headers["content-type"] == "application/problem+json", what
            assert took < 30, f"{what}: answered after {took:.1f} s"
        r = raw_request(url, b"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (16 * MB)
                        + b"\r\n\r\n")
        assert r.status == 431
        assert c.get(f"/v1/banks/{bank}").json()["entries"] == 1
    after = _memory(pids)
    rss = sum(after[p][0] for p in pids) - sum(before[p][0] for p in pids)
    peak = sum(max(0, after[p][1] - before[p][1]) for p in pids)
    detail = {p: (before[p], after[p]) for p in pids}
    assert rss < 100 * MB, f"RSS grew {rss / MB:.0f} MB: {detail}"
    assert peak < 100 * MB, f"peak RSS grew {peak / MB:.0f} MB: {detail}"
    assert os.path.exists(f"/proc/{proc.pid}")

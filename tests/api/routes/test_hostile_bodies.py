"""Hostile and sloppy request bodies against a running node (SQLite and PostgreSQL):
bodies that cross the JSON limits are refused before they are parsed, imports of hostile
files are refused naming the record and leave the bank as it was, and request models are
strict — no string or boolean for a number, no whitespace around a hash value."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from tests.api.conftest import Node
from vigil.api.runtime.settings import JSON_DEPTH, JSON_ITEMS, JSON_STRING

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}
OCTET = {"content-type": "application/octet-stream"}
MD5 = uuid.uuid4().hex  # this module's own: the test node's banks are shared by all tests
PDQ = "f0" * 32


def _problem(r: httpx.Response, status: int, field: str | None = None,
             *words: str) -> dict:  # type: ignore[type-arg]
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    if field is not None:
        assert body["detail"].startswith(field), body["detail"]
    for w in words:
        assert w in body["detail"], body["detail"]
    return body  # type: ignore[no-any-return]


def _timed(send, limit: float = 5.0) -> httpx.Response:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    r = send()
    took = time.perf_counter() - start
    assert took < limit, f"answered after {took:.1f} s"
    return r  # type: ignore[no-any-return]


def _signals(n: int, **extra: object) -> list[dict[str, object]]:
    return [{"type": "md5", "value": f"{i:032x}", **extra} for i in range(n)]


@pytest.mark.parametrize(("what", "body", "status", "field", "says"), [
    ("nested past the depth limit", b'{"signals":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
     422, "body.signals.0.0", f"nested deeper than {JSON_DEPTH} levels"),
    ("600,000 keys", ("{" + ",".join(f'"k{i}":1' for i in range(600_000)) + "}").encode(),
     422, f"body.k{JSON_ITEMS}", f"more than {JSON_ITEMS:,} keys"),
    ("2,500,000 empty lists", b'{"signals":[' + b"[]," * 2_500_000 + b"[]]}",
     422, f"body.signals.{JSON_ITEMS}", f"more than {JSON_ITEMS:,} items"),
    ("a string past the limit",
     json.dumps({"signals": [{"type": "md5", "value": "a" * (JSON_STRING + 1)}]}).encode(),
     422, "body.signals.0.value", "a string longer than"),
    ("a number of 30 digits", b'{"signals": [{"type": "md5", "value": "' + MD5.encode()
     + b'"}], "threshold": 1' + b"0" * 30 + b"}", 422, "body.threshold", "64"),
    ("bytes that are not UTF-8", b'{"signals": [], "x": "\xff"}', 400, "body", "invalid JSON"),
    ("NaN", b'{"signals": [], "threshold": NaN, "x": [' + b"1," * 20 + b"1]}",
     400, "body", "invalid JSON"),
], ids=lambda v: v if isinstance(v, str) and " " in v else None)
def test_bodies_past_the_json_limits_are_refused_before_parsing(
        node: Node, what: str, body: bytes, status: int, field: str, says: str) -> None:
    with node.client("analyst") as c:
        for _ in range(3):  # the route, and the lean path once the token is cached
            r = _timed(lambda: c.post("/v1/match", content=body, headers=JSON))
            _problem(r, status, field, says)


def test_a_batch_of_bad_signals_reports_the_first_not_all(node: Node) -> None:
    bad = [{f"k{j}": 1 for j in range(20)} for _ in range(10_000)]
    with node.client("analyst") as c:
        r = _timed(lambda: c.post("/v1/match", json={"signals": bad}))
    body = _problem(r, 422, "body.signals.0")
    assert len(body["errors"]) == 22 and "(and 21 more)" in body["detail"]


@pytest.mark.parametrize(("change", "field"), [
    ({"threshold": "31"}, "body.threshold"),
    ({"threshold": True}, "body.threshold"),
    ({"threshold": 31.0}, "body.threshold"),
    ({"min_quality": "50"}, "body.min_quality"),
    ({"signals": [{"type": "md5", "value": MD5, "quality": "90"}]}, "body.signals.0.quality"),
    ({"signals": [{"type": "md5", "value": MD5 + "\n"}]}, "body.signals.0.value"),
    ({"signals": [{"type": "md5", "value": " " + MD5}]}, "body.signals.0.value"),
    ({"signals": [{"type": "md5\n", "value": MD5}]}, "body.signals.0.type"),
    ({"signals": [{"type": "pdq", "value": PDQ, "variants": {"rotate90": PDQ + "\r\n"}}]},
     "body.signals.0.variants"),
    ({"banks": "all"}, "body.banks"),
])
def test_match_requests_are_strict(node: Node, change: dict, field: str) -> None:  # type: ignore[type-arg]
    req = {"signals": [{"type": "md5", "value": MD5}], **change}
    with node.client("matcher") as c:
        assert c.post("/v1/match", json={"signals": [{"type": "md5", "value": MD5}]}
                      ).status_code == 200
        for _ in range(4):  # the lean path (a cached token) must refuse it as the route does
            _problem(c.post("/v1/match", json=req), 422, field)


def test_other_bodies_are_strict(node: Node, bank: str) -> None:
    with node.client("admin") as c:
        _problem(c.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "md5", "value": MD5 + "\n"}]}), 422, "body.entries.0.value",
            "whitespace or a newline")
        _problem(c.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "md5", "value": MD5, "quality": "80"}]}), 422, "body.entries.0.quality")
        _problem(c.post(f"/v1/banks/{bank}/entries/remove", json={"signals": [
            {"type": "sha1", "value": "a" * 40 + " "}]}), 422, "body.signals.0.value")
        _problem(c.put(f"/v1/banks/{bank}/shares/HK-POL", json={"reshare": "false"}), 422,
                 "body.reshare")
        _problem(c.post("/v1/tokens", json={"user_id": "1"}), 422, "body.user_id")
        _problem(c.post("/v1/tokens", json={"user_id": 1, "days": 7.5}), 422, "body.days")
        body = _problem(c.post(f"/v1/banks/{bank}/opinions", json={
            "signals": [{"type": "md5", "value": "x"}] * 1000, "opinion": "agree"}), 422,
            "body.signals.0.value")
        assert len(body["errors"]) == 1  # the first bad signal, not a thousand reports
        assert c.get(f"/v1/banks/{bank}").json()["entries"] == 0
        # exact values still take any case of hex
        r = c.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "md5", "value": MD5.upper()}]})
        assert r.status_code == 200 and r.json()["added"] == 1


def _stream(head: bytes, unit: bytes, size: int, tail: bytes = b""):  # type: ignore[no-untyped-def]
    yield head
    block = unit * ((1 << 16) // len(unit))
    for _ in range(size // len(block)):
        yield block
    yield tail


@pytest.mark.parametrize(("fmt", "body", "words"), [
    ("vics", lambda: b'{"value":' + b"[" * 200_000 + b"]" * 200_000 + b"}",
     ("record 1", "nested deeper than 32 levels", "VIGIL_MAX_DEPTH")),
    ("vics", lambda: _stream(b'{"value":[{"MD5":"', b"a", 64 << 20, b'"}]}'),
     ("record 1", "VIGIL_MAX_RECORD_BYTES")),
    ("ncmec", lambda: _stream(b"<records>", b"<a>", 1 << 20),
     ("nested deeper than 32 levels",)),
    ("ncmec", lambda: _stream(b"<records><record><md5>", b"a", 64 << 20),
     ("record 1", "VIGIL_MAX_RECORD_BYTES")),
    ("csv", lambda: _stream(b"signal_type,hash\nmd5,", b"a", 64 << 20),
     ("line 2", "VIGIL_MAX_RECORD_BYTES")),
    ("stopncii", lambda: b"[" * 100_000, ("record 1", "VIGIL_MAX_DEPTH")),
    ("pdq-list", lambda: _stream(b"", b"f", 64 << 20), ("line 1", "VIGIL_MAX_RECORD_BYTES")),
], ids=lambda v: v if isinstance(v, str) else None)
def test_hostile_imports_are_refused_and_change_nothing(
        node: Node, bank: str, fmt: str, body, words: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    with node.client("curator") as c:
        c.post(f"/v1/banks/{bank}/entries", json={"entries": [{"type": "md5", "value": MD5}]})
        before = c.get(f"/v1/banks/{bank}").json()
        for skip in ("false", "true"):
            url = f"/v1/banks/{bank}/import?format={fmt}&skip_invalid={skip}"
            r = _timed(lambda u=url: c.post(u, content=body(), headers=OCTET), limit=30)
            _problem(r, 422, "body: body: ", *words)
        assert c.get(f"/v1/banks/{bank}").json() == before
    with node.client("auditor") as a:
        recs = a.get("/v1/audit", params={"action": "bank.import", "limit": 1000}).json()
    failed = [x for x in recs if x["target"] == bank and x["outcome"] == "failed"]
    assert len(failed) == 2 and words[-1] in failed[0]["detail"]["error"]


def test_skipped_records_are_listed_up_to_a_thousand(node: Node, bank: str) -> None:
    rows = b"signal_type,hash\n" + b"md5,zz\n" * 3000 + b"md5," + MD5.encode() + b"\n"
    with node.client("curator") as c:
        r = c.post(f"/v1/banks/{bank}/import?format=csv&skip_invalid=true", content=rows,
                   headers=OCTET)
    assert r.status_code == 200 and r.json()["added"] == 1
    skipped = r.json()["skipped"]
    assert len(skipped) == 1001 and skipped[-1] == "... and 2,000 more skipped records"
    assert skipped[0].startswith("body: line 2: value:")

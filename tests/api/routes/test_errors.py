"""Bad requests get a 4xx RFC 9457 problem naming the field, never a 500."""

from __future__ import annotations

import pytest

from tests.api.conftest import Node

JSON = {"content-type": "application/json"}
OCTET = {"content-type": "application/octet-stream"}


def _problem(r, status: int, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    if field is not None:
        assert field in body["detail"], body
    return body


@pytest.mark.parametrize(("signal", "field", "says"), [
    ({"type": "md5", "value": "abc"}, "body.signals.0.value", "32 hex characters"),
    ({"type": "pdq", "value": "g" * 64}, "body.signals.0.value", "hexadecimal"),
    ({"type": "sha256", "value": "a" * 63}, "body.signals.0.value", "64 hex"),
    ({"type": "md5"}, "body.signals.0.value", "Field required"),
    ({"type": "no such!", "value": "x"}, "body.signals.0.type", "pattern"),
    ({"type": "md5", "value": "a" * 32, "quality": 101}, "body.signals.0.quality", "100"),
    ({"type": "md5", "value": "a" * 32, "variants": {"rotate90": "a" * 64}},
     "body.signals.0.variants", "pdq"),
    ({"type": "pdq", "value": "a" * 64, "variants": {"spin": "a" * 64}},
     "body.signals.0.variants", "rotate90"),
    ({"type": "md5", "value": "a" * 32, "extra": 1}, "body.signals.0.extra", "not permitted"),
])
def test_bad_signals_name_the_field(node: Node, signal: dict, field: str, says: str) -> None:
    with node.client("analyst") as c:
        body = _problem(c.post("/v1/match", json={"signals": [signal]}), 422, field)
    assert says in body["detail"]
    assert body["errors"][0]["field"].startswith(field)
    value = signal.get("value")
    if value and len(value) > 8:
        assert value not in str(body)  # hash values are not echoed back


def test_malformed_json_and_media_types(node: Node) -> None:
    with node.client("analyst") as c:
        _problem(c.post("/v1/match", content=b'{"signals": [', headers=JSON), 400, "body")
        _problem(c.post("/v1/match", content=b"signals", headers={"content-type": "text/plain"}),
                 415, "application/json")
        _problem(c.post("/v1/match", content=b"{}", headers={}), 415)
        _problem(c.post("/v1/hash", files={"file": ("a.jpg", b"abc")}), 415, "multipart")
        _problem(c.post("/v1/hash", content=b"", headers=OCTET), 422, "empty")
        _problem(c.post("/v1/match", json=[1, 2]), 422, "body")
        _problem(c.post("/v1/match", json={"signals": []}), 422, "body.signals")
        _problem(c.post("/v1/match", json={"signals": [{"type": "md5", "value": "a" * 32}],
                                            "threshold": 65}), 422, "body.threshold")
        _problem(c.post("/v1/match", json={"signals": [{"type": "md5", "value": "a" * 32}],
                                            "banks": ["nope"]}), 404, "banks")
        _problem(c.get("/v1/nowhere"), 404)
        _problem(c.put("/v1/match", json={}), 405)


def test_too_many_signals_and_oversized_bodies(node: Node) -> None:
    with node.client("analyst") as c:
        sig = [{"type": "md5", "value": f"{i:032x}"} for i in range(10_001)]
        _problem(c.post("/v1/match", json={"signals": sig}), 422, "body.signals")
        big = b"\0" * (4 << 20) + b"x"  # the test server's upload cap is 4 MiB
        _problem(c.post("/v1/hash", content=big, headers=OCTET), 413, "limit")

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(5):
                yield b"\0" * (1 << 20)

        _problem(c.post("/v1/hash", content=chunks(), headers=OCTET), 413, "limit")
        _problem(c.post("/v1/match", content=b" " * (9 << 20), headers=JSON), 413, "limit")


def test_bank_errors(node: Node, bank: str) -> None:
    with node.client("curator") as c:
        _problem(c.post("/v1/banks", json={"name": bank}), 409, "already exists")
        _problem(c.post("/v1/banks", json={"name": "a/b"}), 422, "body.name")
        _problem(c.post(f"/v1/banks/{bank}/entries",
                        json={"entries": [{"type": "md5", "value": "a" * 32,
                                           "category": "us:9"}]}), 422,
                 "body.entries.0.category")
        _problem(c.patch(f"/v1/banks/{bank}/entries", json={"set": {"series": "x"}}), 422)
        _problem(c.post(f"/v1/banks/{bank}/import?format=csv",
                        content=b"signal_type,hash\nmd5,zz\n", headers=OCTET), 422, "body")
        _problem(c.post(f"/v1/banks/{bank}/import?format=xml", content=b"x", headers=OCTET),
                 422, "query.format")
        _problem(c.post(f"/v1/banks/{bank}/import?format=vics", content=b"\xff\xfe{",
                        headers=OCTET), 422)
        _problem(c.post(f"/v1/banks/{bank}/entries/file?category=zz", content=b"x",
                        headers=OCTET), 422, "category")

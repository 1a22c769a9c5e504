"""HMA-compatible lookups on a real node (`vigil serve` on loopback): HMA's parameters and
answer shapes, behind Vigil's authentication, every call audited without hash values.

The expected shapes are HMA's published ones (hasher-matcher-actioner,
OpenMediaMatch/schemas/matching.py and blueprints/matching.py, hashing.py, app.py):
``MatchWithDistance = {bank_content_id: int, distance: str}``, ``RawLookupResponse =
{matches: [int | MatchWithDistance]}``, lookups ``{bank: [MatchWithDistance]}`` (keyed by
signal type first for files and URLs), index status ``{type: {present, built_to, size}}``,
hashing ``{signal_type: signal}``, and ``/status`` answering ``I-AM-ALIVE``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import HK, SG, Node, wait_for

pytestmark = pytest.mark.shared

MATCH_WITH_DISTANCE = {"bank_content_id": int, "distance": str}
INDEX_STATUS = {"present": bool, "built_to": int, "size": int}
HMA_ROUTES = [("GET", "/m/raw_lookup"), ("GET", "/m/lookup"), ("POST", "/m/lookup"),
              ("GET", "/m/index/status"), ("GET", "/h/hash"), ("POST", "/h/hash"),
              ("GET", "/status")]


def _is_match(m: Any) -> bool:
    return isinstance(m, dict) and set(m) == set(MATCH_WITH_DISTANCE) and all(
        type(m[k]) is t for k, t in MATCH_WITH_DISTANCE.items())


def _multipart(field: str, data: bytes, filename: str = "upload.jpg") -> dict[str, Any]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return {"content": body,
            "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


@pytest.fixture
def banked(node: Node, bank: str, shared: Path) -> dict[str, Any]:
    """Two corpus photos banked (us:1) in a fresh SG bank; their hashes."""
    photos = sorted((shared / "corpus/bsds500/val").glob("*.jpg"))[:3]
    out: dict[str, Any] = {"bank": bank, "photos": photos, "hashes": []}
    with node.client("admin") as c:
        for p in photos[:2]:
            r = c.post(f"/v1/banks/{bank}/entries/file", params={"category": "us:1"},
                       content=p.read_bytes(),
                       headers={"content-type": "application/octet-stream"})
            assert r.status_code == 200, r.text
            h = c.post("/v1/hash", params={"reference": "true"}, content=p.read_bytes(),
                       headers={"content-type": "application/octet-stream"})
            out["hashes"].append(h.json())
    # The index follows the store within its interval. Other tests on this shared node bank
    # the same photos, so wait for each hash in *this* bank, not for any match at all; and
    # on fresh connections, 10 in a row, so that every worker process of the node has it.
    def everywhere(h: dict[str, Any]) -> bool:
        for _ in range(10):
            with node.client("analyst") as c:
                if not c.get("/m/raw_lookup", params={"signal": h["pdq"], "signal_type": "pdq",
                                                      "banks": bank}).json()["matches"]:
                    return False
        return True

    for h in out["hashes"]:
        wait_for(lambda h=h: everywhere(h))
    return out


@pytest.mark.parametrize("method,path", HMA_ROUTES)
def test_every_hma_route_refuses_a_caller_without_a_token(node: Node, method: str,
                                                          path: str) -> None:
    body = _multipart("photo", b"\xff\xd8 not read") if method == "POST" else {}
    params = {"signal": "0" * 64, "signal_type": "pdq", "url": "http://127.0.0.1:9/x.jpg"}
    with node.client(role=None) as c:
        r = c.request(method, path, params=params, **body)
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    with node.client(role=None, token="vgl_not-a-token") as c:
        assert c.request(method, path, params=params, **body).status_code == 401


def test_a_peer_token_may_not_look_up(node: Node) -> None:
    with node.client("peer", HK) as c:
        r = c.get("/m/raw_lookup", params={"signal": "0" * 64, "signal_type": "pdq"})
        assert r.status_code == 403, r.text


def test_lookups_answer_in_hma_shapes(node: Node, banked: dict[str, Any]) -> None:
    bank, (h0, h1) = banked["bank"], banked["hashes"]
    with node.client("analyst") as c:
        # raw lookup: ids, or ids with string distances
        r = c.get("/m/raw_lookup", params={"signal": h0["pdq"], "signal_type": "pdq",
                                           "banks": bank})
        assert r.status_code == 200, r.text
        ids = r.json()["matches"]
        assert set(r.json()) == {"matches"} and ids and all(type(i) is int for i in ids)
        r = c.get("/m/raw_lookup", params={"signal": h0["pdq"], "signal_type": "pdq",
                                           "include_distance": "true", "banks": bank})
        ms = r.json()["matches"]
        assert all(_is_match(m) for m in ms) and [m["bank_content_id"] for m in ms] == ids
        assert ms[0]["distance"] == "0"

        # lookup by hash: {bank: [match]}; exact types have no distance ("-")
        r = c.get("/m/lookup", params={"signal": h1["md5"], "signal_type": "video_md5"})
        assert r.status_code == 200, r.text
        assert list(r.json()) == [bank] and all(_is_match(m) for m in r.json()[bank])
        assert r.json()[bank][0]["distance"] == "-"
        r = c.get("/m/lookup", params={"signal": "f" * 64, "signal_type": "pdq"})
        assert r.status_code == 200 and r.json() == {}

        # a file: {signal_type: {bank: [match]}}; an unbanked photo matches nothing
        photo, other = banked["photos"][0], banked["photos"][2]
        r = c.post("/m/lookup", params={"banks": bank}, **_multipart("photo", photo.read_bytes()))
        assert r.status_code == 200, r.text
        assert list(r.json()) == ["pdq"] and list(r.json()["pdq"]) == [bank]
        assert all(_is_match(m) for m in r.json()["pdq"][bank])
        r = c.post("/m/lookup", **_multipart("photo", other.read_bytes()))
        assert r.status_code == 200 and r.json() == {"pdq": {}}

        # hashing: {signal_type: signal}
        r = c.post("/h/hash", **_multipart("photo", photo.read_bytes()))
        assert r.status_code == 200 and r.json() == {"pdq": h0["pdq"]}

        # index status and liveness
        r = c.get("/m/index/status")
        assert r.status_code == 200 and set(r.json()) >= {"pdq", "video_md5"}
        for st in r.json().values():
            assert set(st) == set(INDEX_STATUS)
            assert all(type(st[k]) is t for k, t in INDEX_STATUS.items())
        assert r.json()["pdq"]["size"] >= 2 and r.json()["pdq"]["present"] is True
        assert c.get("/m/index/status", params={"signal_type": "pdq"}).json().keys() == {"pdq"}
        r = c.get("/status")
        assert (r.status_code, r.text) == (200, "I-AM-ALIVE")


def test_another_agency_never_sees_the_banks(node: Node, banked: dict[str, Any]) -> None:
    h0 = banked["hashes"][0]
    with node.client("analyst", HK) as c:
        r = c.get("/m/raw_lookup", params={"signal": h0["pdq"], "signal_type": "pdq"})
        assert r.status_code == 200 and r.json() == {"matches": []}
        r = c.get("/m/lookup", params={"signal": h0["pdq"], "signal_type": "pdq",
                                       "banks": banked["bank"]})
        assert r.status_code == 404  # as a bank that does not exist


def test_bad_requests_name_the_parameter_never_the_hash(node: Node) -> None:
    with node.client("analyst") as c:
        r = c.get("/m/raw_lookup", params={"signal": "abc123", "signal_type": "pdq"})
        assert r.status_code == 400 and "abc123" not in r.text, r.text
        assert "signal" in r.json()["detail"]
        r = c.get("/m/raw_lookup", params={"signal": "0" * 64, "signal_type": "tmk"})
        assert r.status_code == 400 and "No such SignalType" in r.json()["detail"]
        r = c.get("/m/lookup")
        assert r.status_code == 400
        r = c.post("/h/hash", **_multipart("audio", b"x"))
        assert r.status_code == 400 and "content_type" in r.json()["detail"]
        r = c.post("/h/hash", content=b"x", headers={"content-type": "image/jpeg"})
        assert r.status_code == 415
        # URLs only from hosts the operator allowed (none here)
        r = c.get("/h/hash", params={"url": "http://127.0.0.1:9/photo.jpg"})
        assert r.status_code == 403 and "VIGIL_HMA_FETCH_HOSTS" in r.json()["detail"]


def test_every_lookup_is_audited_without_hash_values(node: Node,
                                                     banked: dict[str, Any]) -> None:
    h0 = banked["hashes"][0]
    marker = uuid.uuid4().hex[:8]
    with node.client("analyst") as c:
        r = c.get("/m/raw_lookup", params={"signal": h0["pdq"], "signal_type": "pdq",
                                           "seed": marker})
        assert r.status_code == 200
        c.post("/h/hash", **_multipart("photo", banked["photos"][0].read_bytes()))
    records: list[dict[str, Any]] = []
    with node.client("admin") as c:
        while True:  # the analyst's records, all of them (pages of 1,000)
            page = c.get("/v1/audit", params={"actor": f"{SG}/analyst-user", "limit": 1000,
                                              "after_id": records[-1]["id"] if records else 0})
            assert page.status_code == 200, page.text
            if not page.json():
                break
            records += page.json()
    text = json.dumps(records)
    assert h0["pdq"] not in text and h0["md5"] not in text
    mine = [r for r in records if r.get("target") in ("/m/raw_lookup", "/h/hash")]
    actions = {(r["action"], r["target"]) for r in mine}
    assert ("match", "/m/raw_lookup") in actions and ("hash", "/h/hash") in actions
    raw = next(r for r in reversed(mine) if r["target"] == "/m/raw_lookup")
    assert raw["detail"]["via"] == "hma" and len(raw["detail"]["digest"]) == 64

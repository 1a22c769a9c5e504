"""The lean ``POST /v1/match`` path against the FastAPI route it stands in for.

Two servers on the same node and store: the default one (lean path on) and a reference
one started with ``VIGIL_FAST_MATCH=0`` (every request through the route). The same
random requests — valid, odd and invalid, by every role — must get the same status, the
same media type, byte-identical bodies and equal audit details from both; and the lean
path must really have answered most of the valid ones.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.conftest import HK, SG, Node, serve, stop, wait_for
from vigil.api.schemas.models import MatchRequest
from vigil.api.server.fastmatch import parse
from vigil.store.models_node import AuditRecord

# ---- the parser against the route's model (no server) -------------------------------------

CATEGORIES = ["us:1", "us:2", "uk:A", "uk:B", None]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _flip(code: str, bits: int, rng: random.Random) -> str:
    n = int(code, 16)
    for b in rng.sample(range(256), bits):
        n ^= 1 << b
    return f"{n:064x}"


def _odd(rng: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    """One change that the lean path must hand to the route (valid or not there)."""
    doc = json.loads(json.dumps(doc))
    s = doc["signals"][0]
    kind = rng.randrange(14)
    if kind == 0:
        doc["threshold"] = "31"
    elif kind == 1:
        doc["threshold"] = rng.choice([65, -1, 31.0, True, None])
    elif kind == 2:
        s["value"] = s["value"][:-1] + "g"
    elif kind == 3:
        s["extra"] = 1
    elif kind == 4:
        s["type"] = s["type"].upper()
    elif kind == 5:
        s["type"] = "photodna"
    elif kind == 6:
        s["quality"] = rng.choice([True, 101, "50", 50.5])
    elif kind == 7:
        doc["signals"] = []
    elif kind == 8:
        doc["banks"] = ["no-such-bank"]
    elif kind == 9:
        s["variants"] = rng.choice([{"rotate90": "zz"}, {"rot90": "0" * 64}])
    elif kind == 10:
        s["value"] = "  " + s["value"].upper() + "\n"  # valid: stripped and lowered
    elif kind == 11:
        doc["min_quality"] = rng.choice([0, 100, 101, "x"])
    elif kind == 12:
        doc["unknown"] = True
    else:
        doc["signals"] = "pdq"
    return doc


def _random_doc(rng: random.Random, planted: list[str], md5s: list[str],
                banks: list[str]) -> dict[str, Any]:
    signals = []
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8, 20])):
        r = rng.random()
        if r < 0.45:
            s: dict[str, Any] = {"type": "pdq",
                                 "value": _flip(rng.choice(planted), rng.randrange(0, 40), rng)}
            if rng.random() < 0.3:
                s["quality"] = rng.choice([0, 10, 49, 50, 90, 100])
            if rng.random() < 0.15:
                s["variants"] = {"rotate90": rng.choice(planted), "flip-x": _hex(rng, 64)}
        elif r < 0.6:
            s = {"type": "pdq", "value": _hex(rng, 64)}
        elif r < 0.85:
            s = {"type": "md5", "value": rng.choice(md5s) if rng.random() < 0.6
                 else _hex(rng, 32)}
        else:
            t = rng.choice(["sha1", "sha256"])
            s = {"type": t, "value": _hex(rng, 40 if t == "sha1" else 64)}
        signals.append(s)
    doc: dict[str, Any] = {"signals": signals}
    if rng.random() < 0.4:
        doc["threshold"] = rng.choice([0, 10, 31, 40, 64])
    if rng.random() < 0.2:
        doc["min_quality"] = rng.choice([0, 50, 95])
    if rng.random() < 0.2:
        doc["banks"] = rng.sample(banks, rng.randrange(1, len(banks) + 1))
    return doc


def test_parse_agrees_with_the_model_whenever_it_accepts() -> None:
    """Whatever the lean parser accepts, the route's model accepts with the same values;
    and the plain requests clients send are accepted (else the path would be idle)."""
    rng = random.Random(7)
    planted = [_hex(rng, 64) for _ in range(5)]
    md5s = [_hex(rng, 32) for _ in range(5)]
    accepted = plain = 0
    for k in range(3000):
        doc = _random_doc(rng, planted, md5s, ["a", "b"])
        if k % 2:
            doc = _odd(rng, doc)
        body = json.dumps(doc).encode()
        fast = parse(body)
        try:
            ref = MatchRequest.model_validate_json(body)
        except ValueError:
            assert fast is None, doc
            continue
        if fast is None:
            continue
        accepted += 1
        plain += k % 2 == 0
        assert fast.threshold == ref.threshold and fast.min_quality == ref.min_quality
        assert fast.banks == ref.banks
        assert [(q.signal_type, q.value, q.quality, dict(q.variants)) for q in fast.queries] \
            == [(s.type, s.value, s.quality, s.variants or {}) for s in ref.signals]
    assert plain == 1500  # every unaltered request is taken
    assert accepted > 1600


@pytest.mark.parametrize("body", [
    b"", b"{", b"[]", b"null", b'{"signals": [{"type": "pdq"}]}', b"\xff\xfe",
    b'{"signals": [{"type": "md5", "value": "' + b"a" * 2000 + b'"}]}',
])
def test_parse_hands_malformed_bodies_to_the_route(body: bytes) -> None:
    assert parse(body) is None


# ---- over HTTP: the lean server against the reference server ------------------------------

@pytest.fixture(scope="module")
def reference(node: Node) -> Iterator[str]:
    """A second server of the same node with the lean path off."""
    url, proc = serve(node.home, node.db_url, 1, name="serve-reference",
                      VIGIL_FAST_MATCH="0")
    try:
        yield url
    finally:
        stop(proc)


def _fast_count(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    m = re.search(r"^vigil_match_fast_requests_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def _last_match_details(node: Node, n: int) -> list[dict[str, Any]]:
    with node.engine.connect() as conn:
        rows = conn.execute(select(AuditRecord.detail, AuditRecord.actor)
                            .where(AuditRecord.action == "match")
                            .order_by(AuditRecord.id.desc()).limit(n)).all()
    return [{**d, "actor": a} for d, a in reversed(rows)]


def test_lean_path_answers_as_the_route_does(node: Node, reference: str) -> None:
    rng = random.Random(11)
    names = [f"fm-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    hk_bank = f"fm-hk-{uuid.uuid4().hex[:6]}"
    planted = [_hex(rng, 64) for _ in range(60)]
    md5s = [_hex(rng, 32) for _ in range(30)]
    with node.client("admin") as sg:
        for name in names:
            assert sg.post("/v1/banks", json={"name": name}).status_code == 201
        for b, name in enumerate(names):
            entries = []
            for k, code in enumerate(planted[b::2] + planted[:10]):
                entries.append({"type": "pdq", "value": code, "source_id": f"f{k}",
                                "category": rng.choice(CATEGORIES),
                                "series": rng.choice([None, "S1", "S2"]),
                                "victim_status": rng.choice([None, "identified"]),
                                "tags": rng.sample(["a", "b", "c"], rng.randrange(3)),
                                "note": rng.choice([None, "private note"])})
                if k < len(md5s):  # the same file's MD5: one lead, two signal types
                    entries.append({"type": "md5", "value": md5s[k], "source_id": f"f{k}",
                                    "category": "us:1"})
            r = sg.post(f"/v1/banks/{name}/entries", json={"entries": entries})
            assert r.status_code == 200, r.text
    hk_admin = node.tokens[(HK, "admin")]
    with httpx.Client(base_url=node.url, timeout=30,
                      headers={"Authorization": f"Bearer {hk_admin}"}) as hk:
        assert hk.post("/v1/banks", json={"name": hk_bank}).status_code == 201
        r = hk.post(f"/v1/banks/{hk_bank}/entries", json={"entries": [
            {"type": "pdq", "value": c, "category": "uk:A"} for c in planted]})
        assert r.status_code == 200, r.text

    probe = {"signals": [{"type": "pdq", "value": planted[0]}]}
    tok = node.tokens[(SG, "analyst")]
    for url in (node.url, reference):
        wait_for(lambda u=url: httpx.post(  # type: ignore[misc]
            f"{u}/v1/match", json=probe, headers={"Authorization": f"Bearer {tok}"},
            timeout=10).json()["matched"] == 1, timeout=10)

    callers = [(SG, "admin"), (SG, "analyst"), (SG, "matcher"), (SG, "curator"),
               (SG, "auditor"), (HK, "analyst"), None, "bogus"]
    before = _fast_count(node.url), _fast_count(reference)
    ok = compared = 0
    with httpx.Client(timeout=30) as c:
        for k in range(400):
            doc = _random_doc(rng, planted, md5s, names)
            if k % 4 == 3:
                doc = _odd(rng, doc)
            who = callers[k % len(callers)] if k % 3 == 0 else (SG, rng.choice(
                ["admin", "analyst", "matcher"]))
            headers = {"content-type": "application/json"}
            if who == "bogus":
                headers["Authorization"] = "Bearer vgl_" + "x" * 40
            elif who is not None:
                headers["Authorization"] = f"Bearer {node.tokens[who]}"
            body = json.dumps(doc).encode()
            a = c.post(f"{node.url}/v1/match", content=body, headers=headers)
            b = c.post(f"{reference}/v1/match", content=body, headers=headers)
            assert (a.status_code, a.headers["content-type"], a.content) == \
                (b.status_code, b.headers["content-type"], b.content), doc
            compared += 1
            if a.status_code == 200:
                ok += 1
                if k % 10 == 0:  # both audited the request alike
                    x, y = _last_match_details(node, 2)
                    assert x == y and x["signals"] == len(doc["signals"])
    assert compared == 400 and ok > 150
    served = _fast_count(node.url) - before[0]
    assert _fast_count(reference) == before[1] == 0
    # the first request of a token on each worker goes through the route (it fills the
    # cache), as do odd bodies; most plain requests must have been answered lean
    assert served >= ok * 0.6, (served, ok)


def test_lean_path_refuses_nothing_it_should_not_see(node: Node, bank: str) -> None:
    """A token revoked through the API stops matching at once on the lean path too."""
    with node.client("admin") as admin:
        r = admin.post("/v1/users", json={"name": f"m-{uuid.uuid4().hex[:6]}",
                                         "roles": ["matcher"]})
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        t = admin.post("/v1/tokens", json={"user_id": uid, "days": 1})
        assert t.status_code == 201, t.text
        token, tid = t.json()["token"], t.json()["id"]
    body = {"signals": [{"type": "md5", "value": "0" * 32}]}
    with httpx.Client(base_url=node.url, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(5):  # cached on the worker(s) now
            assert c.post("/v1/match", json=body).status_code == 200
        with node.client("admin") as admin:
            assert admin.delete(f"/v1/tokens/{tid}").status_code == 200
        assert c.post("/v1/match", json=body).status_code == 401

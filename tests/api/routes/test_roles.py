"""The endpoint x role matrix (deny by default), cross-agency attempts, and tokens that
are missing, malformed, expired, revoked or belong to a disabled user.

The matrix names every route the node serves under /v1 (a test fails if one is added
without a row here), so no route's permission goes untested."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.api.conftest import HK, SG, Node, wait_for
from tests.test_docs import served_endpoints
from vigil.node import ROLES, create_principal, hash_token, issue_token
from vigil.store.models import utcnow
from vigil.store.models_node import Token

ALL = set(ROLES)
#: Who may do what: the spec's table, written independently of vigil.api.runtime.auth.
MATCH = {"admin", "analyst", "matcher"}
#: matchers hash files too: /v1/match/file hashes the file anyway, and the hashes of a
#: file the caller holds disclose nothing of any bank
HASH = {"admin", "curator", "analyst", "matcher"}
READ = {"admin", "curator", "analyst"}
WRITE = {"admin", "curator"}
ADMIN = {"admin"}
AUDIT = {"admin", "auditor"}
PEER = {"peer"}
OPINE = {"admin", "curator", "analyst"}
TAKEDOWN = {"admin", "curator", "analyst"}
SERIES_READ = {"admin", "curator", "analyst", "victim-id"}
SERIES_WRITE = {"admin", "victim-id"}
MD5 = "5" * 32
OCTET = {"content-type": "application/octet-stream"}

ENDPOINTS = [
    ("GET", "/v1/me", None, ALL),
    ("POST", "/v1/match", {"signals": [{"type": "md5", "value": MD5}]}, MATCH),
    ("POST", "/v1/hash", b"some bytes", HASH),
    ("POST", "/v1/match/file", b"some bytes", MATCH),
    ("GET", "/v1/banks", None, READ),
    ("POST", "/v1/banks", "new-bank", WRITE),
    ("GET", "/v1/banks/{bank}", None, READ),
    ("POST", "/v1/banks/{bank}/entries", {"entries": [{"type": "md5", "value": MD5}]}, WRITE),
    ("POST", "/v1/banks/{bank}/entries/file", b"file bytes", WRITE),
    ("PATCH", "/v1/banks/{bank}/entries",
     {"signals": [{"type": "md5", "value": MD5}], "set": {"series": "S"}}, WRITE),
    ("POST", "/v1/banks/{bank}/entries/remove", {"signals": [{"type": "md5", "value": "6" * 32}]},
     WRITE),
    ("POST", "/v1/banks/{bank}/import?format=csv",
     b"signal_type,hash\nmd5," + b"7" * 32 + b"\n", WRITE),
    ("GET", "/v1/banks/{bank}/export?format=csv", None, WRITE),
    ("GET", "/v1/users", None, ADMIN),
    ("POST", "/v1/users", "new-user", ADMIN),
    ("DELETE", "/v1/users/987654", None, ADMIN),
    ("GET", "/v1/tokens", None, ADMIN),
    ("POST", "/v1/tokens", {"user_id": 987654}, ADMIN),
    ("DELETE", "/v1/tokens/987654", None, ADMIN),
    ("GET", "/v1/audit", None, AUDIT),
    ("GET", "/v1/audit/head", None, PEER),
    # allowed, then refused for what it is: not a head signed by this node (422)
    ("POST", "/v1/audit/witnessed", {"agency": "x"}, PEER),
    ("GET", "/v1/audit/witnessed", None, PEER),
    ("GET", "/v1/node", None, ALL),
    ("GET", "/v1/feeds", None, PEER),
    # read by HK-POL's principals (the bank is shared with HK-POL: see test_role_matrix)
    ("GET", "/v1/feeds/{bank}", HK, PEER),
    ("GET", "/v1/opinions", None, PEER),
    ("GET", "/v1/banks/{bank}/shares", None, ADMIN),
    ("PUT", "/v1/banks/{bank}/shares/HK-POL", {"fields": ["category"]}, ADMIN),
    ("DELETE", "/v1/banks/{bank}/shares/HK-POL", None, ADMIN),
    ("GET", "/v1/banks/{bank}/opinions", None, READ),
    # allowed, then refused for what it is: opinions are about mirrored banks only (422)
    ("POST", "/v1/banks/{bank}/opinions",
     {"signals": [{"type": "md5", "value": MD5}], "opinion": "agree"}, OPINE),
    ("POST", "/v1/urls", {"urls": [{"url": "https://example.org/a.jpg", "case": "C-1"}]},
     TAKEDOWN),
    ("GET", "/v1/urls", None, TAKEDOWN),
    ("GET", "/v1/urls/987654", None, TAKEDOWN),
    ("GET", "/v1/notices", None, TAKEDOWN),
    ("GET", "/v1/notices/report", None, TAKEDOWN),
    ("GET", "/v1/notices/series/S-1/report", None, TAKEDOWN),
    ("GET", "/v1/notices/contacts", None, TAKEDOWN),
    ("GET", "/v1/notices/forwarded", None, PEER),
    ("PUT", "/v1/notices/contacts/example.org", {"email": "abuse@example.org"}, TAKEDOWN),
    ("GET", "/v1/notices/987654", None, TAKEDOWN),
    # allowed, then refused for what it is: no such notice (404)
    ("POST", "/v1/notices/987654/acknowledge", {}, TAKEDOWN),
    ("POST", "/v1/notices/987654/close", {}, TAKEDOWN),
    ("GET", "/v1/series", None, SERIES_READ),
    ("GET", "/v1/series/hits", None, SERIES_READ),
    # allowed, then refused for what it is: "987654" is not a series id (422), or no such
    # series (404)
    ("POST", "/v1/series", {"id": "987654"}, SERIES_WRITE),
    ("GET", "/v1/series/987654", None, SERIES_READ),
    ("PATCH", "/v1/series/987654", {}, SERIES_WRITE),
    ("POST", "/v1/series/987654/claim", {}, SERIES_WRITE),
    ("POST", "/v1/series/987654/renew", {}, SERIES_WRITE),
    ("POST", "/v1/series/987654/release", {}, SERIES_WRITE),
    ("POST", "/v1/series/987654/identify", {"contact_role": "VID desk"}, SERIES_WRITE),
    ("POST", "/v1/series/987654/close", {}, SERIES_WRITE),
    ("POST", "/v1/series/987654/clues", {"text": "t"}, SERIES_WRITE),
    ("GET", "/v1/registry/feed", None, PEER),
    ("GET", "/v1/registry/hits", None, PEER),
    ("GET", "/v1/registry/clues", None, PEER),
]
#: allowed calls that answer a 4xx for their content (unknown ids, not a mirror bank)
CONTENT_4XX = {"/v1/tokens", "/v1/banks/{bank}/opinions", "/v1/audit/witnessed",
               "/v1/notices/987654/acknowledge", "/v1/notices/987654/close",
               "/v1/series", "/v1/series/987654", "/v1/series/987654/claim",
               "/v1/series/987654/renew", "/v1/series/987654/release",
               "/v1/series/987654/identify", "/v1/series/987654/close",
               "/v1/series/987654/clues"}


def _call(c, method: str, path: str, body: object):  # type: ignore[no-untyped-def]
    if body == "new-bank":
        return c.request(method, path, json={"name": f"m-{uuid.uuid4().hex[:8]}"})
    if body == "new-user":
        return c.request(method, path, json={"name": f"u-{uuid.uuid4().hex[:8]}",
                                             "roles": ["matcher"]})
    if isinstance(body, bytes):
        return c.request(method, path, content=body, headers=OCTET)
    if body is None:
        return c.request(method, path)
    return c.request(method, path, json=body)


def _norm(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])


def test_the_matrix_names_every_route() -> None:
    served = {(m, p) for m, p in served_endpoints() if p.startswith("/v1/")}
    rows = {(m, _norm(re.sub(r"/(987654|HK-POL|example\.org|S-1)(?=/|$)", "/{x}", p)))
            for m, p, _, _ in ENDPOINTS}
    assert sorted(served - rows) == [], "routes without a row in the role matrix"
    assert sorted(rows - served) == [], "rows for routes the node does not serve"


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(node: Node, bank: str, role: str) -> None:
    with node.client("admin") as admin:
        assert admin.put(f"/v1/banks/{bank}/shares/{HK}", json={}).status_code == 200
    with node.client(role) as c, node.client(role, HK) as hk:
        for method, path, body, allowed in ENDPOINTS:
            client = hk if body == HK else c
            r = _call(client, method, path.format(bank=bank), None if body == HK else body)
            where = f"{role} {method} {path}: {r.status_code} {r.text[:200]}"
            if role in allowed:
                assert r.status_code not in (401, 403, 500), where
                assert r.status_code < 300 or path.endswith("987654") or \
                    (path in CONTENT_4XX and method == "POST"), where
            else:
                assert r.status_code == 403, where
                assert r.headers["content-type"] == "application/problem+json", where
                assert "do not grant" in r.json()["detail"], where


def test_cross_agency_banks_are_invisible(node: Node, bank: str) -> None:
    with node.client("curator", SG) as sg:
        sg.post(f"/v1/banks/{bank}/entries", json={"entries": [{"type": "md5", "value": MD5}]})
    for role in ("admin", "curator", "analyst"):
        with node.client(role, HK) as hk:
            assert bank not in [b["name"] for b in hk.get("/v1/banks").json()]
            assert hk.get(f"/v1/banks/{bank}").status_code == 404
            if role != "analyst":
                for method, path, body, allowed in ENDPOINTS:
                    if "{bank}" in path and method != "GET" and role in allowed:
                        r = _call(hk, method, path.format(bank=bank), body)
                        assert r.status_code == 404, (role, path, r.text)
                assert hk.get(f"/v1/banks/{bank}/export").status_code == 404
    with node.client("matcher", HK) as hk, node.client("matcher", SG) as sgm:
        sig = {"signals": [{"type": "md5", "value": MD5}]}
        wait_for(lambda: sgm.post("/v1/match", json=sig).json()["matched"] == 1)
        assert hk.post("/v1/match", json=sig).json()["matched"] == 0
        r = hk.post("/v1/match", json={**sig, "banks": [bank]})
        assert r.status_code == 404 and "banks" in r.json()["detail"]
    with node.client("admin", HK) as hk:  # another agency's users and tokens: not found
        sg_users = node.client("admin", SG).get("/v1/users").json()
        assert hk.delete(f"/v1/users/{sg_users[0]['id']}").status_code == 404
        assert hk.post("/v1/tokens", json={"user_id": sg_users[0]["id"]}).status_code == 404
        assert all(u["agency"] == HK for u in hk.get("/v1/users").json())


def _audited(node: Node, reason: str) -> bool:
    with node.client("auditor") as a:
        recs = a.get("/v1/audit", params={"action": "auth.failure", "limit": 1000}).json()
    return any(r["detail"].get("reason") == reason for r in recs)


def test_bad_tokens_are_refused_and_audited(node: Node) -> None:
    p = create_principal(node.engine, SG, f"tmp-{uuid.uuid4().hex[:6]}", ["analyst"])
    expired, _ = issue_token(node.engine, p.id, 1)
    with Session(node.engine) as s, s.begin():
        s.execute(update(Token).where(Token.token_hash == hash_token(expired))
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    cases = {"missing bearer token": None, "malformed token": "nope",
             "unknown token": "vgl_" + "x" * 43, "expired token": expired}
    for reason, tok in cases.items():
        with node.client(None, token=tok) as c:
            r = c.get("/v1/banks")
            assert r.status_code == 401, reason
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert reason in r.json()["detail"]
        assert _audited(node, reason)
    # revoked through the API: refused at once (every request checks the store)
    live, info = issue_token(node.engine, p.id, 1)
    with node.client(None, token=live) as c:
        assert c.get("/v1/banks").status_code == 200
        assert node.client("admin").delete(f"/v1/tokens/{info.id}").status_code == 200
        assert c.get("/v1/banks").status_code == 401
    assert _audited(node, "revoked token")
    # disabling a user revokes all its tokens
    live, _ = issue_token(node.engine, p.id, 1)
    assert node.client("admin").delete(f"/v1/users/{p.id}").json()["disabled"] is True
    with node.client(None, token=live) as c:
        assert c.get("/v1/banks").status_code == 401
    # the audit log never holds a token
    with node.client("auditor") as a:
        text = a.get("/v1/audit", params={"limit": 1000}).text
    assert expired not in text and live not in text


def test_tokens_are_shown_once_and_stored_hashed(node: Node) -> None:
    with node.client("admin") as c:
        u = c.post("/v1/users", json={"name": f"svc-{uuid.uuid4().hex[:6]}", "kind": "service",
                                      "roles": ["matcher"]}).json()
        t = c.post("/v1/tokens", json={"user_id": u["id"], "days": 7}).json()
        assert t["token"].startswith("vgl_")
        listed = c.get("/v1/tokens", params={"user_id": u["id"]}).json()
        assert listed and all("token" not in x for x in listed)
    with Session(node.engine) as s:
        row = s.get(Token, t["id"])
        assert row is not None and row.token_hash == hash_token(t["token"])
        assert t["token"] not in row.token_hash
    with node.client(None, token=t["token"]) as svc:
        assert svc.get("/v1/me").json()["roles"] == ["matcher"]

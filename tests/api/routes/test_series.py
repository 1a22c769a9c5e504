"""`/v1/series` and `/v1/registry` on a running node (SQLite and PostgreSQL): who may do
what, problem documents that name the series and the rule, audit records, the peer side."""

from __future__ import annotations

from sqlalchemy import select

from tests.api.conftest import HK, SG, Node, wait_for
from vigil.store.models_node import AuditRecord


def test_series_roles_rules_and_audit(node: Node) -> None:
    sid = f"{SG}:S-API-{node.backend}"
    with node.client("victim-id") as vid, node.client("analyst") as ana, \
            node.client("matcher") as mat, node.client("peer", agency=HK) as peer:
        r = vid.post("/v1/series", json={"id": sid, "victims": ["V1"], "country": "SG",
                                         "country_confidence": 70, "tags": ["signage"]})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "unidentified"
        assert ana.get(f"/v1/series/{sid}").json()["victims"] == ["V1"]
        assert mat.get(f"/v1/series/{sid}").status_code == 403
        assert ana.post(f"/v1/series/{sid}/claim", json={}).status_code == 403
        # a name where an opaque reference belongs: refused, the field named
        r = vid.patch(f"/v1/series/{sid}", json={"victims": ["Jane Doe"]})
        assert r.status_code == 422 and "victims must be opaque references" in r.json()["detail"]
        r = vid.post(f"/v1/series/{sid}/claim", json={"lease": "7d"})
        assert r.status_code == 200 and r.json()["claim"]["agency"] == SG
        r = vid.post(f"/v1/series/{sid}/identify", json={"contact_role": "VID desk"})
        assert r.json()["identified"]["contact_role"] == "VID desk"
        r = vid.post(f"/v1/series/{sid}/claim", json={})
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")
        assert sid in r.json()["detail"] and "identified cannot take a claim" in r.json()["detail"]
        r = vid.post(f"/v1/series/{HK}:S-1/claim", json={})
        assert r.status_code == 404 and f"{HK}:S-1" in r.json()["detail"]
        r = vid.post("/v1/series", json={"id": f"{HK}:S-2"})
        assert r.status_code == 409 and f"{HK}'s namespace" in r.json()["detail"]
        r = vid.post(f"/v1/series/{sid}/clues", json={"text": "kept here"})
        assert r.status_code == 201 and r.json()["grants"] == []
        # the peer side: the chain (no clue in it), and nothing for an analyst
        feed = peer.get("/v1/registry/feed", params={"after": 0})
        assert feed.status_code == 200 and sid in feed.text and "kept here" not in feed.text
        assert peer.get("/v1/registry/clues").json() == {"clues": []}
        assert ana.get("/v1/registry/feed").status_code == 403
    with node.engine.connect() as c:
        actions = {a for (a,) in c.execute(select(AuditRecord.action).where(
            AuditRecord.target == sid))}
    assert {"series.create", "series.claim", "series.identify", "series.clue"} <= actions


def test_match_names_the_series_status_for_analysts_only(node: Node) -> None:
    """`/v1/match` (the fast path hands such leads to the route) carries the registry's
    note on a lead's series; a matcher sees no series at all."""
    import uuid

    sid = f"{SG}:S-M-{uuid.uuid4().hex[:6]}"
    md5 = uuid.uuid4().hex
    bank = f"vid-{uuid.uuid4().hex[:8]}"
    with node.client("admin") as adm, node.client("victim-id") as vid:
        assert adm.post("/v1/banks", json={"name": bank}).status_code == 201
        r = adm.post(f"/v1/banks/{bank}/entries", json={"entries": [
            {"type": "md5", "value": md5, "series": sid}]})
        assert r.status_code == 200, r.text
        assert vid.post("/v1/series", json={"id": sid}).status_code == 201
        assert vid.post(f"/v1/series/{sid}/identify",
                        json={"contact_role": "VID desk"}).status_code == 200
    body = {"signals": [{"type": "md5", "value": md5}]}
    with node.client("analyst") as ana, node.client("matcher") as mat:
        # each client keeps its connection, so either worker may serve it: wait until
        # both workers' indexes hold the new entry
        for c in (ana, mat):
            wait_for(lambda c=c: c.post("/v1/match", json=body).json()["matched"] == 1, 20)
        for _ in range(2):  # the second time the token is in the worker's cache: fast path
            lead = ana.post("/v1/match", json=body).json()["results"][0]["matches"][0]
            assert lead["series"] == sid
            assert lead["series_status"]["status"] == "identified"
            assert lead["series_status"]["identified"]["agency"] == SG
            m = mat.post("/v1/match", json=body).json()["results"][0]["matches"][0]
            assert "series" not in m and "series_status" not in m

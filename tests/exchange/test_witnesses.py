"""Peers witness each other's audit logs, with two real nodes (SG and HK, each pulling from
the other): each keeps the other's signed head at sync and hands back what it kept; a
rewind of SG's log by someone holding SG's audit key — log, head row and anchor — is
reported by HK's next sync and by SG's own `vigil audit verify`, even when the insider
also deleted the copies SG held (SG fetches them again from HK)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tests.exchange.conftest import EditingProxy, FedNode
from vigil.audit import sign_head, witness_store
from vigil.audit.anchor import AnchorFile
from vigil.node import audit_key, signing_key
from vigil.store.models_node import AuditHead, AuditRecord, AuditWitness

SG, HK = "SG-SPF", "HK-POL"


@pytest.fixture(scope="module")
def peered(pair: tuple[FedNode, FedNode]) -> tuple[FedNode, FedNode]:
    sg, hk = pair
    hk.add_peer("sg", sg)
    sg.add_peer("hk", hk)
    return sg, hk


def _rewind(node: FedNode, keep: int) -> None:
    """What an insider holding the node's audit key can do: cut the log after ``keep``,
    point the head row there, re-anchor with a valid MAC, and delete the node's copies of
    what peers witnessed."""
    assert node.engine is not None
    with Session(node.engine) as s, s.begin():
        mac = s.scalar(select(AuditRecord.hash).where(AuditRecord.id == keep))
        assert mac is not None
        s.execute(delete(AuditRecord).where(AuditRecord.id > keep))
        s.execute(update(AuditHead).values(last_id=keep, last_hash=mac))
        s.execute(delete(AuditWitness).where(AuditWitness.agency == node.agency))
    (node.home / "audit" / "anchor.json").unlink()
    AnchorFile(node.home / "audit", audit_key(node.home)).advance(keep, mac)


def _copies(node: FedNode, of: str, by: str) -> list[int]:
    assert node.engine is not None
    return [w.head.id for w in witness_store.held(node.engine, of, by)]


def test_a_rewind_by_someone_with_the_key_is_caught_by_the_witnesses(
        peered: tuple[FedNode, FedNode]) -> None:
    sg, hk = peered
    for _ in range(30):  # a log of some length: every match request is a record
        sg.match([{"type": "md5", "value": uuid.uuid4().hex}])
    hk.cli("peer", "sync", "sg")
    witnessed = _copies(hk, SG, HK)
    assert witnessed and witnessed[-1] > 30  # HK keeps SG's head...
    assert _copies(sg, SG, HK) == witnessed  # ...and handed it back to SG
    sg.cli("peer", "sync", "hk")  # SG witnesses HK too, and collects what HK holds of it
    assert _copies(hk, HK, SG)  # HK got its own head back from SG
    out = sg.cli("audit", "verify")
    assert "intact" in out.stdout and "witnessed by HK-POL" in out.stderr

    _rewind(sg, keep=5)
    assert sg.cli("audit", "verify").returncode == 0  # nothing left at SG to tell

    out = hk.cli("peer", "sync", "sg", check=False)  # HK notices at its next sync
    assert out.returncode == 1
    assert f"{SG}'s audit log went back" in out.stderr and f"reached record {witnessed[-1]}" \
        in out.stderr
    out = sg.cli("audit", "verify", check=False)  # HK handed back its furthest head of SG
    assert out.returncode == 1, out.stdout
    assert f"the head {HK} witnessed" in out.stderr and f"(record {witnessed[-1]})" \
        in out.stderr

    with Session(sg.engine) as s, s.begin():  # the insider deletes SG's copies again...
        s.execute(delete(AuditWitness).where(AuditWitness.agency == SG))
    assert sg.cli("audit", "verify").returncode == 0
    sg.cli("peer", "sync", "hk")  # ...but SG's own sync fetches what HK holds of its log
    out = sg.cli("audit", "verify", check=False)
    assert out.returncode == 1 and f"the head {HK} witnessed" in out.stderr


def test_audit_head_endpoints_are_for_peers_and_take_only_heads_this_node_signed(
        peered: tuple[FedNode, FedNode]) -> None:
    sg, hk = peered
    with sg.client() as c:  # an admin is not a peer
        assert c.get("/v1/audit/head").status_code == 403
        assert c.get("/v1/audit/witnessed").status_code == 403
    token = sg.grant("KR-KNPA")
    with sg.client(token) as c:
        r = c.get("/v1/audit/head")
        assert r.status_code == 200, r.text
        head = r.json()
        assert head["agency"] == SG and head["id"] > 0 and len(head["sig"]) == 128
        assert c.post("/v1/audit/witnessed", json=head).status_code == 204
        forged = {**head, "id": head["id"] + 1}  # the signature no longer covers it
        r = c.post("/v1/audit/witnessed", json=forged)
        assert r.status_code == 422 and "signed by this node" in r.json()["detail"]
        other = sign_head(signing_key(hk.home), HK, 1, "a" * 64).as_dict()
        assert c.post("/v1/audit/witnessed", json=other).status_code == 422
        assert c.post("/v1/audit/witnessed", json={**head, "sig": "x"}).status_code == 422
        assert c.get("/v1/audit/witnessed").json() == {"heads": []}  # none of KR's held
    assert _kept_and_audited(sg, head["id"], "KR-KNPA")


def _kept_and_audited(sg: FedNode, head_id: int, by: str) -> bool:
    """SG keeps the head ``by`` handed back, as witnessed by it, and audited the change."""
    assert sg.engine is not None
    kept = [w.head.id for w in witness_store.held(sg.engine, SG, by)]
    with sg.client() as c:
        recs = c.get("/v1/audit", params={"action": "audit.witnessed"}).json()
    return head_id in kept and any(r["detail"].get("id") == head_id for r in recs)


def test_a_peer_without_audit_heads_is_still_synced(peered: tuple[FedNode, FedNode]) -> None:
    """A peer running a Vigil from before witnesses answers 404: the sync goes on."""
    sg, hk = peered
    proxy = EditingProxy(sg.url)
    proxy.missing = ("/v1/audit/",)
    try:
        hk.add_peer("sg-old", sg, url=proxy.url)
        out = hk.cli("peer", "sync", "sg-old", "--json")
        assert '"witnessed_head": null' in out.stdout
    finally:
        proxy.close()
        hk.cli("peer", "remove", "sg-old")
    with httpx.Client(base_url=proxy.upstream) as c:  # the real one still has them
        assert c.get("/v1/audit/head").status_code == 401

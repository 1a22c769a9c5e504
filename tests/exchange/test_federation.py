"""Federation end to end: four real nodes (SG, HK, KR and AU) on loopback ports.

Sharing rules decide what leaves a node; syncs pull signed feeds into read-only mirrors;
retractions travel; tampering is caught naming the record; a killed sync resumes with no
duplicates; re-sharing works only where the origin allowed it, verified back to it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.exchange.conftest import FedNode, wait_for
from vigil.store.models import Bank, Change, Entry
from vigil.store.models_exchange import Feed, FeedRecord

CAT = "us:1"


def uid() -> str:
    return uuid.uuid4().hex[:6]


def md5s(n: int, tag: str) -> list[str]:
    return [f"{tag}{i:06x}".ljust(32, "0")[:32] for i in range(n)]


def entries(values: list[str], **labels: object) -> list[dict[str, object]]:
    return [{"type": "md5", "value": v, **labels} for v in values]


def sigs(values: list[str]) -> list[dict[str, str]]:
    return [{"type": "md5", "value": v} for v in values]


def sync(node: FedNode, peer: str, *extra: str, check: bool = True,
         ) -> subprocess.CompletedProcess[str]:
    return node.cli("peer", "sync", peer, *extra, check=check)


def mirror_stats(node: FedNode, name: str) -> tuple[int, int, int, int]:
    """(live entries, rows, distinct signals, change records) of a local bank."""
    with Session(node.engine) as s:
        b = s.scalar(select(Bank).where(Bank.name == name))
        assert b is not None, f"{node.agency} has no bank {name}"
        live = s.scalar(select(func.count()).select_from(Entry).where(
            Entry.bank_id == b.id, Entry.removed.is_(False)))
        rows = s.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == b.id))
        distinct = s.scalar(select(func.count(func.distinct(Entry.value))).where(
            Entry.bank_id == b.id))
        changes = s.scalar(select(func.count()).select_from(Change).where(
            Change.bank_id == b.id))
        return live or 0, rows or 0, distinct or 0, changes or 0


@pytest.fixture(scope="module")
def peered(fed: dict[str, FedNode]) -> dict[str, FedNode]:
    sg, hk, kr, au = fed["sg"], fed["hk"], fed["kr"], fed["au"]
    hk.add_peer("sg", sg)
    kr.add_peer("sg", sg)
    sg.add_peer("hk", hk)
    kr.add_peer("hk", hk)
    au.add_peer("kr", kr)
    return fed


def test_shared_bank_reaches_peers_without_notes_and_unshared_stays_home(
        peered: dict[str, FedNode]) -> None:
    sg, hk, kr = peered["sg"], peered["hk"], peered["kr"]
    main, secret = f"sg-main-{uid()}", f"sg-secret-{uid()}"
    shared_vals, secret_vals = md5s(5, "a1"), md5s(2, "b2")
    sg.bank(main)
    sg.bank(secret)
    sg.add(main, entries(shared_vals, category=CAT, series="SG-S1", note="informant X"))
    sg.add(secret, entries(secret_vals, category=CAT, note="do not share"))
    sg.cli("bank", "share", main, "HK-POL")  # default: signals + category only
    sg.cli("bank", "share", main, "KR-KNPA", "--labels", "category")
    for node in (hk, kr):
        out = sync(node, "sg")
        assert f"SG-SPF/{main}" in out.stderr
        mirror = f"SG-SPF.{main}"
        wait_for(lambda n=node: n.match(sigs(shared_vals))["matched"] == 5, timeout=10)
        lead = node.match(sigs(shared_vals[:1]))["results"][0]["matches"][0]
        assert lead["bank"] == mirror and lead["agency"] == "SG-SPF"
        assert lead["category"] == {"scheme": "us", "value": "1"}
        assert lead.get("note") is None and lead.get("series") is None
        with Session(node.engine) as s:  # not in the store either, not only not shown
            notes = s.scalars(select(Entry.note).join(Bank, Bank.id == Entry.bank_id)
                              .where(Bank.name == mirror)).all()
            assert notes and all(n is None for n in notes)
            prov = s.execute(select(Entry.origin_agency, Entry.source_id)
                             .join(Bank, Bank.id == Entry.bank_id)
                             .where(Bank.name == mirror).order_by(Entry.id)).all()
            assert prov == [("SG-SPF", f"SG-SPF/{main}#{i}") for i in range(1, 6)]
            assert not s.scalars(select(Bank.name).where(Bank.name.contains(secret))).all()
        assert node.match(sigs(secret_vals))["matched"] == 0
    with httpx.Client(base_url=sg.url, headers={
            "Authorization": f"Bearer {sg.grant('HK-POL')}"}) as peer:
        r = peer.get(f"/v1/feeds/{secret}")
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        assert peer.get("/v1/feeds/no-such-bank").status_code == 403  # existence not disclosed
        r = peer.get(f"/v1/feeds/SG-SPF.{main}")
        assert r.status_code == 403
        page = peer.get(f"/v1/feeds/{main}", params={"after": 0, "limit": 5})
        assert page.headers["content-encoding"] == "gzip" and len(page.json()["records"]) == 5
        assert secret not in [f["bank"] for f in peer.get("/v1/feeds").json()["feeds"]]
        assert peer.post("/v1/match", json={"signals": sigs(secret_vals)}).status_code == 403
    with sg.client(sg.analyst_token) as analyst:  # a local analyst is not a peer
        assert analyst.get(f"/v1/feeds/{main}").status_code == 403
    with hk.client() as c:  # mirrors are listed as such, and read-only
        listed = {b["name"]: b for b in c.get("/v1/banks").json()}
        assert listed[f"SG-SPF.{main}"]["mirror_of"] == f"SG-SPF/{main}"
        assert c.get(f"/v1/banks/SG-SPF.{main}").json()["mirror_of"] == f"SG-SPF/{main}"
        r = c.post(f"/v1/banks/SG-SPF.{main}/entries", json={"entries": entries(md5s(1, "c3"))})
        assert r.status_code == 409 and "read-only mirror" in r.json()["detail"], r.text
    with sg.client() as c:  # every feed read is audited on the origin
        recs = c.get("/v1/audit", params={"action": "feed.read", "limit": 1000}).json()
        assert {r["actor"].split("/")[0] for r in recs} >= {"HK-POL", "KR-KNPA"}
        assert any(r["outcome"] == "denied" and r["target"] == secret for r in recs)
    # idempotent: a second sync changes nothing
    before = mirror_stats(hk, f"SG-SPF.{main}")
    res = json.loads(hk.cli("peer", "sync", "sg", "--json").stdout)
    assert all(f["from"] == f["to"] and f["added"] == 0 for f in res[0]["feeds"])
    assert mirror_stats(hk, f"SG-SPF.{main}") == before


def test_retraction_at_origin_disappears_everywhere(peered: dict[str, FedNode]) -> None:
    sg, hk, kr = peered["sg"], peered["hk"], peered["kr"]
    bank = f"hk-main-{uid()}"
    vals = md5s(3, "d4")
    hk.bank(bank)
    hk.add(bank, entries(vals, category="us:2"))
    hk.cli("bank", "share", bank, "SG-SPF")
    hk.cli("bank", "share", bank, "KR-KNPA")
    for node in (sg, kr):
        sync(node, "hk")
        wait_for(lambda n=node: n.match(sigs(vals))["matched"] == 3, timeout=10)
    with hk.client() as c:
        r = c.post(f"/v1/banks/{bank}/entries/remove", json={"signals": sigs(vals[:1])})
        assert r.status_code == 200 and r.json()["removed"] == 1
    for node in (sg, kr):
        out = sync(node, "hk")
        assert "1 retracted" in out.stderr
        wait_for(lambda n=node: n.match(sigs(vals))["matched"] == 2, timeout=10)
        assert node.match(sigs(vals[:1]))["matched"] == 0
        assert mirror_stats(node, f"HK-POL.{bank}")[0] == 2


def test_reshare_only_where_origin_allowed_and_verified_back_to_origin(
        peered: dict[str, FedNode]) -> None:
    sg, kr, au = peered["sg"], peered["kr"], peered["au"]
    passable, closed = f"sg-pass-{uid()}", f"sg-closed-{uid()}"
    vals = md5s(4, "a7")
    sg.bank(passable)
    sg.bank(closed)
    sg.add(passable, entries(vals, category=CAT, series="SG-S9", note="never leaves"))
    sg.add(closed, entries(md5s(2, "b8"), category=CAT))
    sg.cli("bank", "share", passable, "KR-KNPA", "--labels", "category,series", "--reshare")
    sg.cli("bank", "share", closed, "KR-KNPA")
    sync(kr, "sg")
    out = kr.cli("bank", "share", f"SG-SPF.{closed}", "AU-AFP", check=False)
    assert out.returncode == 1 and "did not allow passing it on" in out.stderr
    kr.cli("bank", "share", f"SG-SPF.{passable}", "AU-AFP")
    # AU does not trust SG's key yet: the feed passed on by KR is refused
    out = sync(au, "kr", check=False)
    assert out.returncode == 1 and "no trusted key for its origin SG-SPF" in out.stderr
    au.cli("peer", "trust", "SG-SPF", "--key", sg.public_key)
    # KR cannot alter what it passes on: SG's signatures no longer verify
    with Session(kr.engine) as s, s.begin():
        fid = s.scalar(select(Feed.id).where(Feed.descriptor.contains(passable)))
        body = s.scalar(select(FeedRecord.body).where(FeedRecord.feed_id == fid,
                                                      FeedRecord.seq == 2))
        s.execute(update(FeedRecord).where(FeedRecord.feed_id == fid, FeedRecord.seq == 2)
                  .values(body=body.replace("SG-S9", "KR-S1")))
    out = sync(au, "kr", check=False)
    assert out.returncode == 1 and "record seq 2" in out.stderr
    with Session(kr.engine) as s, s.begin():
        s.execute(update(FeedRecord).where(FeedRecord.feed_id == fid, FeedRecord.seq == 2)
                  .values(body=body))
    sync(au, "kr")
    mirror = f"SG-SPF.{passable}"
    assert mirror_stats(au, mirror)[0] == 4
    wait_for(lambda: au.match(sigs(vals))["matched"] == 4, timeout=10)
    lead = au.match(sigs(vals[:1]))["results"][0]["matches"][0]
    assert lead["bank"] == mirror and lead["agency"] == "SG-SPF"
    assert lead["series"] == "SG-S9" and lead.get("note") is None
    assert not any("sg-closed" in b["name"] for b in au.client().get("/v1/banks").json())


class TamperProxy:
    """A loopback HTTP proxy that can alter one feed record's content in transit."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.tamper_seq: int | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                r = httpx.get(proxy.upstream + self.path, timeout=60, headers={
                    "Authorization": self.headers.get("Authorization", "")})
                body = r.content
                if proxy.tamper_seq is not None and self.path.startswith("/v1/feeds/") \
                        and r.status_code == 200:
                    page = r.json()
                    for rec in page["records"]:
                        b = json.loads(rec[0])
                        if b["seq"] == proxy.tamper_seq:  # relabel it, keep its hash
                            b["labels"] = {"category": ["us", "5"]}
                            rec[0] = json.dumps(b, sort_keys=True, separators=(",", ":"))
                    body = json.dumps(page).encode()
                self.send_response(r.status_code)
                self.send_header("content-type", r.headers.get("content-type", "text/plain"))
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_record_altered_in_transit_is_refused_then_sync_resumes(
        peered: dict[str, FedNode]) -> None:
    sg, au = peered["sg"], peered["au"]
    bank = f"sg-tamper-{uid()}"
    vals = md5s(6, "e5")
    sg.bank(bank)
    sg.add(bank, entries(vals, category=CAT))
    sg.cli("bank", "share", bank, "AU-AFP")
    proxy = TamperProxy(sg.url)
    try:
        au.add_peer("sgp", sg, url=proxy.url)
        proxy.tamper_seq = 5
        out = sync(au, "sgp", "--page-size", "2", check=False)
        assert out.returncode == 1
        assert "record seq 5" in out.stderr and "does not match its hash" in out.stderr
        mirror = f"SG-SPF.{bank}"
        assert mirror_stats(au, mirror)[:2] == (4, 4)  # pages 1-2 and 3-4 kept
        with Session(au.engine) as s:
            f = s.scalar(select(Feed).where(Feed.descriptor.contains(bank)))
            assert f is not None and f.last_seq == 4 and "record seq 5" in (f.error or "")
        with au.client() as c:  # the error is visible to the operator
            peers = {p["name"]: p for p in json.loads(au.cli("peer", "list", "--json").stdout)}
            assert "record seq 5" in (peers["sgp"]["error"] or "")
            assert c.get("/v1/banks").status_code == 200
        proxy.tamper_seq = None
        out = sync(au, "sgp", "--page-size", "2")
        assert mirror_stats(au, mirror)[:3] == (6, 6, 6)
        wait_for(lambda: au.match(sigs(vals))["matched"] == 6, timeout=10)
        lead = au.match(sigs(vals[4:5]))["results"][0]["matches"][0]
        assert lead["category"] == {"scheme": "us", "value": "1"}  # never the altered label
    finally:
        proxy.close()


def test_sync_killed_midway_resumes_without_duplicates_or_loss(
        peered: dict[str, FedNode]) -> None:
    sg, kr = peered["sg"], peered["kr"]
    bank = f"sg-big-{uid()}"
    n = 3000
    vals = md5s(n, "f6")
    sg.bank(bank)
    for i in range(0, n, 1000):
        sg.add(bank, entries(vals[i:i + 1000], category=CAT))
    sg.cli("bank", "share", bank, "KR-KNPA")
    mirror = f"SG-SPF.{bank}"
    proc = subprocess.Popen([sys.executable, "-m", "vigil", "peer", "sync", "sg",
                             "--page-size", "25", "-q"],
                            # a commit every 8 pages (200 records): several before the kill
                            env={**kr.env, "VIGIL_SYNC_TXN_RECORDS": "200"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def progressed() -> bool:
        with Session(kr.engine) as s:
            seq = s.scalar(select(Feed.last_seq).where(Feed.descriptor.contains(bank)))
        return seq is not None and seq >= 200

    try:
        wait_for(progressed, timeout=60, interval=0.01)
        assert proc.poll() is None, "the sync finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    with Session(kr.engine) as s:
        cut = s.scalar(select(Feed.last_seq).where(Feed.descriptor.contains(bank)))
    assert cut is not None and 200 <= cut < n
    live, rows, distinct, changes = mirror_stats(kr, mirror)
    assert live == rows == distinct == changes == cut  # checkpoint and entries agree
    sync(kr, "sg")
    assert mirror_stats(kr, mirror) == (n, n, n, n)
    wait_for(lambda: kr.match(sigs(vals[-5:]))["matched"] == 5, timeout=10)


def test_conflicting_labels_are_kept_and_flagged(peered: dict[str, FedNode]) -> None:
    sg, hk = peered["sg"], peered["hk"]
    own, theirs = f"sg-own-{uid()}", f"hk-conf-{uid()}"
    val = md5s(1, "c9")
    sg.bank(own)
    sg.add(own, entries(val, category="us:1"))
    hk.bank(theirs)
    hk.add(theirs, entries(val, category="us:3"))
    hk.cli("bank", "share", theirs, "SG-SPF")
    sync(sg, "hk")
    wait_for(lambda: len(sg.match(sigs(val))["results"][0]["matches"]) == 2, timeout=10)
    res = sg.match(sigs(val))["results"][0]
    assert res["disagreement"] is True
    labels = {(m["agency"], m["category"]["value"]) for m in res["matches"]}
    assert labels == {("SG-SPF", "1"), ("HK-POL", "3")}


def test_disputes_on_a_mirror_go_back_to_the_origin(peered: dict[str, FedNode]) -> None:
    sg, hk = peered["sg"], peered["hk"]
    bank = f"sg-disp-{uid()}"
    vals = md5s(2, "d0")
    sg.bank(bank)
    sg.add(bank, entries(vals, category=CAT))
    sg.cli("bank", "share", bank, "HK-POL")
    sync(hk, "sg")
    with hk.client(hk.analyst_token) as c:
        r = c.post(f"/v1/banks/SG-SPF.{bank}/opinions", json={
            "signals": sigs(vals[:1]), "opinion": "dispute",
            "reason": "benign holiday photo, not CSAM"})
        assert r.status_code == 201, r.text
        r = c.post(f"/v1/banks/SG-SPF.{bank}/opinions", json={
            "signals": sigs(vals[:1]), "opinion": "dispute"})
        assert r.status_code == 422 and "reason" in r.json()["detail"]
    sync(sg, "hk")
    sync(sg, "hk")  # pulling again does not duplicate
    with sg.client() as c:
        ops = c.get(f"/v1/banks/{bank}/opinions").json()["opinions"]
    assert [(o["agency"], o["opinion"], o["reason"]) for o in ops] == [
        ("HK-POL", "dispute", "benign holiday photo, not CSAM")]
    assert ops[0]["value"] == vals[0]
    time.sleep(0)


def test_rule_changes_resync_and_unshare_stops_the_feed(peered: dict[str, FedNode]) -> None:
    sg, hk = peered["sg"], peered["hk"]
    bank = f"sg-rule-{uid()}"
    vals = md5s(3, "e1")
    sg.bank(bank)
    sg.add(bank, entries(vals, category=CAT, series="SG-S3"))
    sg.cli("bank", "share", bank, "HK-POL")
    sync(hk, "sg")
    mirror = f"SG-SPF.{bank}"
    with Session(hk.engine) as s:
        assert set(s.scalars(select(Entry.series).join(Bank, Bank.id == Entry.bank_id)
                             .where(Bank.name == mirror))) == {None}
    sg.cli("bank", "share", bank, "HK-POL", "--labels", "category,series")  # widen the rule
    sync(hk, "sg")
    with Session(hk.engine) as s:
        assert set(s.scalars(select(Entry.series).join(Bank, Bank.id == Entry.bank_id)
                             .where(Bank.name == mirror))) == {"SG-S3"}
    assert mirror_stats(hk, mirror)[:3] == (3, 3, 3)
    sg.cli("bank", "unshare", bank, "HK-POL")
    out = sync(hk, "sg")
    assert f"SG-SPF/{bank} is no longer shared with us" in out.stderr
    assert mirror_stats(hk, mirror)[0] == 3  # kept: nothing can be taken back remotely
    with Session(hk.engine) as s:
        f = s.scalar(select(Feed).where(Feed.descriptor.contains(bank)))
        assert f is not None and not f.active and "no longer shares" in (f.error or "")
    shown = json.loads(hk.cli("bank", "show", mirror, "--json").stdout)["mirror"]
    assert shown["origin"] == "SG-SPF" and shown["origin_bank"] == bank
    assert shown["peer"] == "sg" and shown["active"] is False and shown["origin_seq"] == 3

"""Victim identification across three real nodes (SG, HK, KR): `vigil serve` processes on
loopback, administered with the `vigil` command line, as in the federation tests.

One module, one set of nodes, each scenario building on the one before (as an operation
would): a series from a scan group, its hit in another agency's seizure and the notice
back; claims that conflict and resolve; identified status in match output and the scan
report; a lapsing lease; a clue that was not granted staying home.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageEnhance

from tests.browser import Watched, browser_page  # noqa: F401
from tests.exchange.conftest import FedNode, make_node
from vigil.demo.synthetic import synthetic_image
from vigil.exchange.peers import add_peer
from vigil.node import create_principal, ensure_agency, issue_token
from vigil.triage.scandb import ScanDB
from vigil.victimid.sync import sync_all

SID = "SG-SPF:S-000017"
SECRET = "crest of Tampines North school on the blazer"
GRANTED = "wall socket type G, UK style"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FedNode]]:
    root = tmp_path_factory.mktemp("vid")
    ns = {c: make_node(root, a, j) for c, a, j in (
        ("sg", "SG-SPF", "SG"), ("hk", "HK-POL", "HK"), ("kr", "KR-KNPA", "KR"))}
    try:
        for n in ns.values():
            n.start()
        for a, na in ns.items():  # every node pulls from every other (what `vigil peer
            for b, nb in ns.items():  # grant` and `vigil peer add` do, without 12 processes)
                if a != b:
                    assert na.engine is not None and nb.engine is not None
                    ensure_agency(nb.engine, na.agency)
                    p = create_principal(nb.engine, na.agency, "node", ["peer"], "service")
                    add_peer(na.engine, na.home, b, nb.url, nb.public_key,
                             issue_token(nb.engine, p.id, 1)[0])
        yield ns
    finally:
        for n in ns.values():
            n.stop()
            if n.engine is not None:
                n.engine.dispose()


def _sync(*ns: FedNode, banks: bool = False) -> None:
    """`vigil peer sync` (bank feeds and registries), or the registry sync that `vigil
    series sync` runs, called here against the node's store and home (over HTTP to the
    peers all the same: a process less per sync)."""
    for n in ns:
        if banks:
            n.cli("peer", "sync", "-q")
            continue
        assert n.engine is not None
        for r in sync_all(n.engine, n.home):
            assert r.error is None, r.as_dict()


def _show(n: FedNode, sid: str = SID) -> dict:  # type: ignore[type-arg]
    """The series as the node's API gives it to an analyst (faster than a CLI process)."""
    with n.client(n.analyst_token) as c:
        r = c.get(f"/v1/series/{sid}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def _photos(folder: Path, scale: float) -> list[Path]:
    """Three near-duplicate pictures of one (generated, benign) scene, and one other."""
    folder.mkdir(parents=True, exist_ok=True)
    base = synthetic_image(1717, (640, 480))
    variants = [base, ImageEnhance.Brightness(base).enhance(1.06),
                base.crop((8, 6, 632, 474)).resize((640, 480))]
    out = []
    for i, img in enumerate([*variants, synthetic_image(99, (640, 480))]):
        if scale != 1:
            img = img.resize((int(640 * scale), int(480 * scale)), Image.Resampling.LANCZOS)
        p = folder / f"img_{i}.jpg"
        img.save(p, quality=90 - 5 * i)
        out.append(p)
    return out


def test_series_from_scan_hits_abroad_and_the_origin_hears_of_it(
        nodes: dict[str, FedNode], tmp_path: Path) -> None:
    sg, hk, kr = nodes["sg"], nodes["hk"], nodes["kr"]
    _photos(tmp_path / "sg-seizure", 1)
    sg.cli("scan", str(tmp_path / "sg-seizure"), "--out", str(tmp_path / "sg-scan"), "-j", "1",
           "-q")
    db = ScanDB(tmp_path / "sg-scan" / "scan.db")
    groups = db.groups()
    db.close()
    big = max(groups, key=lambda g: g.size)
    assert big.size == 3
    out = sg.cli("series", "create", SID, "--from-scan", str(tmp_path / "sg-scan"), "--group",
                 str(big.id), "--bank", "sg-series", "--category", "us:1", "--victim", "V1",
                 "--country", "SG", "--confidence", "60", "--tag", "school-uniform",
                 "--alias", "ICSE:12345").stdout
    assert "unidentified" in out and "entries added to bank" in out
    sg.cli("series", "clue", SID, SECRET)
    sg.cli("series", "clue", SID, GRANTED, "--grant", "HK-POL")
    for agency in ("HK-POL", "KR-KNPA"):
        sg.cli("bank", "share", "sg-series", agency, "--labels", "category,series")
    _sync(hk, kr, banks=True)
    # HK's seizure holds resized copies: its scan names the SG series and its status
    _photos(tmp_path / "hk-seizure", 0.6)
    hk.cli("series", "notify", "SG-SPF")  # hit notices to SG: deny by default
    scan = hk.cli("scan", str(tmp_path / "hk-seizure"), "--out", str(tmp_path / "hk-scan"),
                  "-j", "1", "-q", "--case", "HK-2026-114").stdout
    assert f"hit notice queued for SG-SPF: series {SID}, 3 item(s), case HK-2026-114" in scan
    report = (tmp_path / "hk-scan" / "report.html").read_text()
    assert SID in report and f"{SID} unidentified (origin SG-SPF)" in report
    rows = [json.loads(line) for line in
            (tmp_path / "hk-scan" / "results.jsonl").read_text().splitlines()]
    notes = [m["series_status"] for r in rows for m in r["matches"]]
    assert len(notes) >= 3 and all(n["id"] == SID and n["status"] == "unidentified"
                                   for n in notes)
    # after its next sync, SG has the hit notice (no hash, no path in it)
    _sync(sg)
    hits = sg.cli("series", "hits").stdout
    assert f"your series {SID} appeared in HK-POL seizure HK-2026-114: 3 items" in hits
    assert json.loads(sg.cli("series", "hits", "--json").stdout)[0].keys() == {
        "series", "finder", "items", "case_ref", "at"}
    # KR's and HK's view of the series equals SG's
    assert _show(hk)["aliases"] == _show(kr)["aliases"] == ["ICSE:12345"]


def test_claims_conflict_then_resolve_everywhere(nodes: dict[str, FedNode]) -> None:
    sg, hk, kr = nodes["sg"], nodes["hk"], nodes["kr"]
    hk.cli("series", "claim", SID)
    time.sleep(0.01)
    kr.cli("series", "claim", SID)  # before either synced: both think they hold it
    _sync(hk, kr)
    for n in (hk, kr):
        s = _show(n)
        assert s["claim"]["agency"] == "HK-POL"
        assert [c["agency"] for c in s["contested"]] == ["KR-KNPA"]
        assert s["conflicts"][0] == {**s["conflicts"][0], "holder": "HK-POL",
                                     "contender": "KR-KNPA", "open": True}
    assert "conflict: HK-POL held, KR-KNPA claimed" in kr.cli("series", "show", SID).stdout
    hk.cli("series", "release", SID)
    _sync(sg, kr, hk)
    for n in (sg, hk, kr):
        s = _show(n)
        assert s["status"] == "claimed" and s["claim"]["agency"] == "KR-KNPA"
        assert not s["conflicts"][0]["open"]
    # an unknown series and a forged create are refused with the series named
    r = hk.cli("series", "claim", "SG-SPF:S-404", check=False)
    assert r.returncode == 1 and "no series SG-SPF:S-404 is known" in r.stderr
    r = hk.cli("series", "create", "SG-SPF:S-9", check=False)
    assert r.returncode == 1 and "SG-SPF's namespace" in r.stderr


def test_identified_status_travels_to_match_and_report(nodes: dict[str, FedNode],
                                                       tmp_path_factory: pytest.TempPathFactory,
                                                       ) -> None:
    sg, hk, kr = nodes["sg"], nodes["hk"], nodes["kr"]
    kr.cli("series", "identify", SID, "--contact-role", "VID desk", "--case-ref", "KR-77")
    _sync(sg, hk)
    folder = tmp_path_factory.mktemp("probe")
    probe = _photos(folder, 0.5)[0]
    for n in (sg, hk):
        assert _show(n)["identified"]["contact_role"] == "VID desk"
        out = n.cli("match", str(probe), "-q").stdout
        assert f"{SID} identified by KR-KNPA on" in out and "contact their VID desk" in out
        js = json.loads(n.cli("match", str(probe), "-q", "--json").stdout.splitlines()[0])
        st = js["matches"][0]["series_status"]
        assert st["status"] == "identified" and st["identified"]["agency"] == "KR-KNPA"
    # HK's scan report, written again, says so too; an identified series takes no claim
    root = hk.home.parent
    scans = [p for p in root.parent.rglob("hk-scan") if p.is_dir()]
    assert scans
    hk.cli("scan", str(scans[0].parent / "hk-seizure"), "--out", str(scans[0]), "-j", "1", "-q")
    report = (scans[0] / "report.html").read_text()
    assert f"{SID} identified by KR-KNPA" in report and "contact their VID desk" in report
    r = hk.cli("series", "claim", SID, check=False)
    assert r.returncode == 1 and "a series identified cannot take a claim" in r.stderr
    vics = json.loads((scans[0] / "case.vics.json").read_text())
    assert any(m.get("VictimIdentified") == "true" for m in vics["value"][0]["Media"])


def test_a_lapsed_lease_is_unidentified_on_every_node(nodes: dict[str, FedNode]) -> None:
    sg, hk, kr = nodes["sg"], nodes["hk"], nodes["kr"]
    sg.cli("series", "create", "SG-SPF:S-000018")
    _sync(hk)
    hk.cli("series", "claim", "SG-SPF:S-000018", "--lease", "4s")
    _sync(sg, kr)
    s = _show(kr, "SG-SPF:S-000018")
    assert s["status"] == "claimed" and s["claim"]["agency"] == "HK-POL"
    expires = datetime.strptime(s["claim"]["expires"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC)
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() + 0.2))
    for n in (sg, hk, kr):
        assert _show(n, "SG-SPF:S-000018")["status"] == "unidentified"


def test_a_clue_not_granted_never_leaves_sg(nodes: dict[str, FedNode]) -> None:
    sg, hk, kr = nodes["sg"], nodes["hk"], nodes["kr"]
    for n, agency in ((hk, "HK-POL"), (kr, "KR-KNPA")):
        token = sg.grant(agency)
        with httpx.Client(base_url=sg.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as c:
            raw = b"".join(c.get(p, params={"after": 0}).content for p in (
                "/v1/registry/feed", "/v1/registry/clues", "/v1/registry/hits",
                *[f"/v1/feeds/{b}" for b in ("sg-series",)]))
        assert SECRET.encode() not in raw
        assert (GRANTED.encode() in raw) == (agency == "HK-POL")
        db = n.home / "vigil.db"
        with sqlite3.connect(db) as conn:
            dump = "\n".join(conn.iterdump())
        for side in db.parent.glob("vigil.db*"):
            assert SECRET.encode() not in side.read_bytes()
        assert SECRET not in dump
        assert (GRANTED in dump) == (agency == "HK-POL")
    assert GRANTED in hk.cli("series", "show", SID).stdout
    # the API: an analyst reads, a victim-ID principal writes, a matcher may not read
    with sg.client(sg.analyst_token) as c:
        assert c.get(f"/v1/series/{SID}").json()["status"] == "identified"
        r = c.post("/v1/series/SG-SPF:S-000018/claim", json={})
        assert r.status_code == 403


def test_the_operation_report_renders_offline(nodes: dict[str, FedNode], tmp_path: Path,
                                              browser_page: Watched) -> None:  # noqa: F811
    """`vigil op report` for the three-node operation: the figures, and a page that
    renders in headless Chromium with no console errors and no network requests."""
    sg = nodes["sg"]
    today = datetime.now(UTC).date().isoformat()
    sg.cli("op", "create", "Operation Tide", "--from", today, "--to", today, "--partners",
           "HK-POL,KR-KNPA")
    sg.cli("op", "report", "Operation Tide", "--out", str(tmp_path))
    r = json.loads((tmp_path / "op.json").read_text())
    assert r["series"]["identified"] == 1 and r["series"]["total"] == 2
    assert r["victims_identified_by_jurisdiction"] == {"KR": 1}
    assert r["hits_across_borders"][0]["finder"] == "HK-POL"
    assert r["hits_across_borders"][0]["items"] == 3
    assert {"claimed", "identified"} <= {t["event"] for t in r["timeline"]}
    page = tmp_path / "op.html"
    text = page.read_text()
    assert SECRET not in text and "<script" not in text
    browser_page.page.goto(page.as_uri())
    assert "Operation Tide" in browser_page.page.inner_text("h1")
    assert browser_page.errors == []
    assert [r.url for r in browser_page.requests] == [page.as_uri()]

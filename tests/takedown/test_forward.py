"""Forwarding notices hotline to hotline: SG's notice about a host in Hong Kong reaches
HK's node (two real `vigil serve` processes), which reports the URL, matches it and
notices the host itself over SMTP; a host in Singapore stays with SG. Pages are signed,
addressed and positioned: an altered, misaddressed or replayed page is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from tests.api.conftest import wait_for
from tests.exchange.conftest import make_node
from tests.takedown.conftest import Smtp, WebHost, corpus
from vigil.banks import Banks, Labels
from vigil.banks.files import records_of_file
from vigil.formats.limits import Limits
from vigil.signals import hash_file
from vigil.store import make_engine, migrate
from vigil.takedown import intake, repo
from vigil.takedown.forward import ForwardError, host_country, outgoing, parse_page
from vigil.takedown.repo import Contact

pytestmark = pytest.mark.shared
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _notice(engine: Engine, url: str, case: str = "SG-C-1") -> int:
    row, _ = intake.add(engine, intake.check(url, case), None, NOW)
    return repo.open_notice(engine, row, [("us", "1")], ["S-7"], [], NOW,
                            timedelta(hours=48)).notice.id


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    migrate(engine)
    return engine


def _bank(engine: Engine, agency: str, photo: Path) -> None:
    banks = Banks(engine, "tester")
    banks.create("known", agency)
    r = hash_file(photo)
    assert r.ok, r.error
    banks.apply("known", records_of_file(r, Labels(category=("us", "1"), series="S-7")))


def test_host_country_from_contact_then_country_code_domain() -> None:
    assert host_country("example.com", "hk") == "HK"
    assert host_country("img.example.hk", None) == "HK"
    assert host_country("example.co.uk", None) == "GB"
    assert host_country("example.com", None) is None
    assert host_country("127.0.0.31", None) is None


def test_pages_are_checked_for_signature_address_and_position(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    for i in range(3):
        _notice(engine, f"http://img{i}.example.hk/{i}.jpg")
    _notice(engine, "http://img.example.sg/x.jpg")
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes_raw().hex()
    lim = Limits()

    # paged by cursor: 2, then 1, then nothing; only Hong Kong's hosts
    p1 = outgoing(engine, key, "SG-SPF", "HK-POL", "HK", 0, limit=2)
    items, nxt = parse_page(json.dumps(p1).encode(), pub, "SG-SPF", "HK-POL", 0, lim)
    assert [f.url for f in items] == ["http://img0.example.hk/0.jpg",
                                      "http://img1.example.hk/1.jpg"]
    assert items[0].case == f"forwarded:SG-SPF:notice-{items[0].notice}"
    assert items[0].categories == (("us", "1"),)
    p2 = outgoing(engine, key, "SG-SPF", "HK-POL", "HK", nxt)
    items2, nxt2 = parse_page(json.dumps(p2).encode(), pub, "SG-SPF", "HK-POL", nxt, lim)
    assert [f.url for f in items2] == ["http://img2.example.hk/2.jpg"]
    p3 = outgoing(engine, key, "SG-SPF", "HK-POL", "HK", nxt2)
    assert parse_page(json.dumps(p3).encode(), pub, "SG-SPF", "HK-POL", nxt2, lim) == \
        ([], nxt2)
    # an agency whose jurisdiction is not known yet gets nothing, and its cursor stays
    unknown = outgoing(engine, key, "SG-SPF", "HK-POL", "", 0)
    assert unknown["items"] == [] and unknown["next"] == 0
    # what travels: never the case reference or the series
    text = json.dumps(p1)
    assert "SG-C-1" not in text and "S-7" not in text

    def refused(page: dict[str, object], after: int = 0, us: str = "HK-POL",
                key_hex: str = pub) -> str:
        with pytest.raises(ForwardError) as e:
            parse_page(json.dumps(page).encode(), key_hex, "SG-SPF", us, after, lim)
        return str(e.value)

    altered = json.loads(json.dumps(p1))
    altered["items"][0]["url"] = "http://evil.example.hk/x.jpg"
    assert "signature" in refused(altered)
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    assert "signature" in refused(p1, key_hex=other)
    assert "to" in refused(p1, us="KR-KNPA")      # addressed to another agency
    assert "after" in refused(p1, after=5)        # replayed at another position
    # signed but malformed items are named
    bad = {"from": "SG-SPF", "to": "HK-POL", "after": 0, "next": 1,
           "items": [{"notice": 1, "url": 7, "country": "HK", "categories": [],
                      "first_seen_at": NOW.isoformat(), "deadline_at": NOW.isoformat()}]}
    bad["signature"] = key.sign(b"vigil-forward-v1\n" + json.dumps(
        {k: v for k, v in bad.items()}, sort_keys=True, separators=(",", ":")).encode()).hex()
    assert "items[0]" in refused(bad)
    deep = b"[" * 10_000 + b"]" * 10_000
    with pytest.raises(ForwardError, match="malformed"):
        parse_page(deep, pub, "SG-SPF", "HK-POL", 0, lim)


def test_a_notice_about_a_host_in_hong_kong_is_noticed_by_hong_kong(
        tmp_path: Path, shared: Path, smtp: Smtp, web: Callable[[str], WebHost]) -> None:
    sg, hk = make_node(tmp_path, "SG-SPF", "SG"), make_node(tmp_path, "HK-POL", "HK")
    assert sg.engine is not None and hk.engine is not None
    photo = corpus(shared, 1)[0]
    in_hk, in_sg = web("127.0.0.31"), web("127.0.0.32")
    in_hk.files["/a.jpg"] = (photo.read_bytes(), "image/jpeg")
    in_sg.files["/b.jpg"] = (photo.read_bytes(), "image/jpeg")
    # SG knows each host's country; HK has the photo banked (as its mirror of SG's bank
    # would) and its own contact for the Hong Kong host
    repo.set_contact(sg.engine, Contact(in_hk.ip, f"abuse@{in_hk.ip}", country="HK"), NOW)
    repo.set_contact(sg.engine, Contact(in_sg.ip, f"abuse@{in_sg.ip}", country="SG"), NOW)
    sg_hk = _notice(sg.engine, in_hk.url("/a.jpg"))
    _notice(sg.engine, in_sg.url("/b.jpg"))
    _bank(hk.engine, "HK-POL", photo)
    repo.set_contact(hk.engine, Contact(in_hk.ip, "desk@hk.invalid"), NOW)

    sg.env["VIGIL_TAKEDOWN_INTERVAL"] = "0"
    hk.env.update({"VIGIL_TAKEDOWN_INTERVAL": "0.3", "VIGIL_TAKEDOWN_FORWARD_INTERVAL": "0.3",
                   "VIGIL_TAKEDOWN_SMTP": smtp.address,
                   "VIGIL_TAKEDOWN_ALLOW_NETWORKS": "127.0.0.0/8"})
    sg.start()
    hk.start()
    try:
        hk.add_peer("sg", sg)   # HK pulls from SG: SG learns HK-POL's code only...
        time.sleep(1)           # (HK's pulls meanwhile get nothing, and skip nothing)
        sg.add_peer("hk", hk)   # ...and its jurisdiction when SG adds HK in turn
        case = f"forwarded:SG-SPF:notice-{sg_hk}"
        wait_for(lambda: any(u.case_ref == case for u in repo.list_urls(hk.engine)),
                 timeout=60)
        urls = repo.list_urls(hk.engine)
        assert [u.url for u in urls] == [in_hk.url("/a.jpg")]  # SG's own host stays home
        # HK's loop fetched it, matched it against HK's bank and noticed the host
        smtp.wait(1)
        assert [m["To"] for m in smtp.messages] == ["desk@hk.invalid"]
        assert repo.list_notices(hk.engine)[0].case_ref == case
        # pulled once: a second pull finds nothing new
        r = hk.cli("notice", "pull", "sg", "--json")
        assert json.loads(r.stdout) == [{"peer": "sg", "agency": "SG-SPF", "added": 0,
                                         "known": 0}]
        with sg.client() as c:
            recs = c.get("/v1/audit", params={"action": "takedown.forward"}).json()
        assert recs and recs[0]["target"] == "HK-POL" and recs[0]["detail"]["notices"] == 1
    finally:
        hk.stop()
        sg.stop()

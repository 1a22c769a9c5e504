"""Feeds on the store (SQLite, and PostgreSQL when configured): what a rule lets out,
the chain and signatures a peer will check, concurrent materialisation, read-only mirrors."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from vigil.banks import BankError, Banks, ReadOnlyBankError
from vigil.banks.entry import EntryRecord, Labels
from vigil.exchange import feeds, rules
from vigil.exchange.records import SIGN_EVERY, Descriptor, genesis, public_key, verify_page
from vigil.node import init_node, signing_key
from vigil.store.models_exchange import Feed, FeedRecord

LAB = Labels(category=("us", "2"), series="S1", note="informant", tags=("t",))


def md5(i: int) -> str:
    return f"{i:032x}"


@pytest.fixture
def origin(engine: Engine, tmp_path: Path) -> tuple[Engine, str, Path]:
    ident, _ = init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    return engine, ident.public_key, tmp_path


def _fill(engine: Engine, bank: str, n: int) -> None:
    Banks(engine, user="t").create(bank, "SG-SPF")
    Banks(engine, user="t").apply(bank, [EntryRecord("md5", md5(i), LAB) for i in range(n)])


def test_a_page_carries_only_the_shared_labels_and_verifies(origin) -> None:  # type: ignore[no-untyped-def]
    engine, pub, home = origin
    _fill(engine, "csam", 5)
    b = Banks(engine, user="t")
    b.apply("csam", [EntryRecord("md5", md5(0), Labels(category=("us", "3"), note="x")),
                     EntryRecord("md5", md5(1), op="remove")])
    rules.share(engine, "csam", "HK-POL", ["category", "series"])
    key = signing_key(home)
    p = feeds.page(engine, key, "SG-SPF", "HK-POL", "csam", 0, 100)
    d = Descriptor("SG-SPF", "csam", ("category", "series"), False)
    assert p.descriptor == d and p.head == 7
    vp = verify_page(d, public_key(pub), 0, genesis(d), p.records)
    assert vp.error is None and vp.last_seq == 7
    bodies = [b for b, _ in vp.records]
    assert [b["op"] for b in bodies] == ["add"] * 5 + ["update", "remove"]
    assert bodies[0]["labels"] == {"category": ["us", "2"], "series": "S1"}
    assert bodies[5]["labels"] == {"category": ["us", "3"]}
    assert not any("note" in r.body or "informant" in r.body or "tags" in r.body
                   for r in p.records)
    # an agency with no rule, or a bank that does not exist: the same refusal
    for agency, bank in (("KR-KNPA", "csam"), ("HK-POL", "nope")):
        with pytest.raises(feeds.FeedAccessError):
            feeds.page(engine, key, "SG-SPF", agency, bank, 0, 10)
    # pages end on a signed record, and the next page continues the chain
    p1 = feeds.page(engine, key, "SG-SPF", "HK-POL", "csam", 0, 3)
    assert len(p1.records) == 3 and p1.records[-1].sig
    p2 = feeds.page(engine, key, "SG-SPF", "HK-POL", "csam", 3, 3)
    vp2 = verify_page(d, public_key(pub), 3, p1.records[-1].hash, p2.records)
    assert vp2.error is None and vp2.last_seq == 6


def test_concurrent_first_reads_make_one_chain(origin) -> None:  # type: ignore[no-untyped-def]
    engine, pub, home = origin
    n = SIGN_EVERY * 3 + 7
    _fill(engine, "big", n)
    rules.share(engine, "big", "HK-POL")
    key = signing_key(home)
    with ThreadPoolExecutor(6) as pool:
        pages = list(pool.map(lambda _: feeds.page(engine, key, "SG-SPF", "HK-POL", "big", 0,
                                                   n), range(6)))
    assert all([r.hash for r in p.records] == [r.hash for r in pages[0].records] for p in pages)
    d = Descriptor.parse(pages[0].descriptor.as_dict())
    vp = verify_page(d, public_key(pub), 0, genesis(d), pages[0].records)
    assert vp.error is None and vp.last_seq == n
    assert sum(1 for r in pages[0].records if r.sig) >= 3
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(FeedRecord)) == n
        assert s.scalar(select(func.count()).select_from(Feed)) == 1


def test_mirrors_are_read_only_and_reshare_follows_the_origin(origin) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = origin
    b = Banks(engine, user="t")
    b.create("HK-POL.hk", "SG-SPF")
    for reshare in (False, True):
        name = f"HK-POL.m{int(reshare)}"
        b.create(name, "SG-SPF")
        d = Descriptor("HK-POL", f"m{int(reshare)}", ("category",), reshare)
        with Session(engine) as s, s.begin():
            bank_id = b.get(name).id
            s.add(Feed(bank_id=bank_id, mirror=True, descriptor=d.text(), origin="HK-POL",
                       last_seq=0, last_hash=genesis(d), peer="hk", active=True))
        with pytest.raises(ReadOnlyBankError, match="read-only mirror"):
            b.apply(name, [EntryRecord("md5", md5(1))])
        assert b.apply(name, [EntryRecord("md5", md5(1))], mirror=True).added == 1
        assert b.is_mirror(name)
    with pytest.raises(BankError, match="did not allow passing it on"):
        rules.share(engine, "HK-POL.m0", "KR-KNPA")
    with pytest.raises(BankError, match="cannot be changed"):
        rules.share(engine, "HK-POL.m1", "KR-KNPA", ["category", "note"])
    r = rules.share(engine, "HK-POL.m1", "KR-KNPA")
    assert r.fields == ("category",) and r.reshare
    with pytest.raises(BankError, match="unknown label field"):
        rules.share(engine, "HK-POL.hk", "KR-KNPA", ["password"])
    with pytest.raises(BankError, match="owns bank"):
        rules.share(engine, "HK-POL.hk", "SG-SPF")
    assert not b.is_mirror("HK-POL.hk")
    assert json.loads(Descriptor.parse(d.as_dict()).text())["reshare"] is True


def test_periodic_sync_runs_in_one_worker_at_a_time(origin) -> None:  # type: ignore[no-untyped-def]
    import fcntl

    from vigil.audit import AuditLog
    from vigil.exchange.periodic import PeerSyncThread
    from vigil.node import audit_key

    engine, _, home = origin
    t = PeerSyncThread(engine, home, AuditLog(engine, audit_key(home)), interval=60)
    assert t.tick() is True  # no peers: a round that does nothing, but this worker's
    t.lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(t.lock_path, "a") as other:  # another worker is in a round
        fcntl.flock(other, fcntl.LOCK_EX)
        assert t.tick() is False
    assert t.tick() is True

"""The series registry on one store (SQLite and PostgreSQL), and chains moved between two
stores without HTTP: the fold, the rules, verification of a peer's chain, annotation."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine

from tests.conftest import _backends, store_engine
from vigil.formats.limits import Limits
from vigil.victimid import registry
from vigil.victimid.annotate import annotate, annotate_reference, series_notes
from vigil.victimid.model import Event, SeriesError, fold, iso
from vigil.victimid.service import Registry, descriptor, make_record
from vigil.victimid.sync import serve_page, verify_page

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SID = "SG-SPF:S-000017"


def _hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _ev(origin: str, seq: int, minutes: float, kind: str, **fields: object) -> Event:
    return Event(origin, seq, iso(T0 + timedelta(minutes=minutes)), kind, SID, dict(fields))


def test_fold_first_claim_wins_in_any_order_and_conflicts_show() -> None:
    day = 86_400
    events = [_ev("SG-SPF", 1, 0, "series", aliases=[], victims=["V1"],
                  offender_identified=False, tags=[]),
              _ev("HK-POL", 1, 10, "claim", lease_seconds=30 * day),
              _ev("KR-KNPA", 1, 11, "claim", lease_seconds=30 * day)]
    now = T0 + timedelta(hours=1)
    for _ in range(5):  # the order records arrive in does not matter
        random.shuffle(events)
        s = fold(SID, events, now)
        assert s is not None and s.status == "claimed" and s.holder is not None
        assert s.holder.agency == "HK-POL" and [c.agency for c in s.contested] == ["KR-KNPA"]
        assert s.conflicts == [{"holder": "HK-POL", "contender": "KR-KNPA",
                                "at": iso(T0 + timedelta(minutes=11)), "open": True}]
    released = fold(SID, [*events, _ev("HK-POL", 2, 20, "release")], now)
    assert released is not None and released.holder is not None
    assert released.holder.agency == "KR-KNPA" and not released.conflicts[0]["open"]
    # a lease that lapsed lapses: back to unidentified
    lapsed = fold(SID, [*events, _ev("HK-POL", 2, 20, "release")], T0 + timedelta(days=40))
    assert lapsed is not None and lapsed.status == "unidentified" and lapsed.holder is None
    # identified by the holder; then a claim is refused by the fold (an invalid transition)
    done = fold(SID, [*events, _ev("HK-POL", 2, 20, "identify", contact_role="VID desk",
                                   case_ref="HK-1"),
                      _ev("KR-KNPA", 2, 30, "claim", lease_seconds=day)], now)
    assert done is not None and done.status == "identified"
    assert done.identified is not None and done.identified["agency"] == "HK-POL"
    assert done.refused and done.refused[0]["kind"] == "claim"
    # nothing before the series is known (a claim that came first waits for it)
    assert fold(SID, [_ev("HK-POL", 1, 10, "claim", lease_seconds=day)], now) is None


@pytest.fixture(params=_backends())
def two(request: pytest.FixtureRequest, tmp_path: Path,
        ) -> object:
    """Two stores: SG's and HK's registries (SQLite, or both on PostgreSQL)."""
    (tmp_path / "sg").mkdir()
    (tmp_path / "hk").mkdir()
    with store_engine(request.param, tmp_path / "sg") as a, \
            store_engine(request.param, tmp_path / "hk") as b:
        yield (Registry(a, Ed25519PrivateKey.generate(), "SG-SPF"),
               Registry(b, Ed25519PrivateKey.generate(), "HK-POL"))


def _pull(src: Registry, dst: Registry, peer: str = "sg") -> str | None:
    """Move ``src``'s chain to ``dst`` the way a sync does (serve, verify, keep)."""
    c = registry.cursor(dst.engine, peer, src.agency,
                        json.loads(make_record(src.key, src.agency, 1, None, "close", SID, {},
                                               iso(T0)).body)["prev"])
    page = json.dumps(serve_page(src.engine, src.agency, c.last_seq, 1000)).encode()
    _, recs, error = verify_page(page, src.agency, _hex(src.key), c.last_seq, c.last_hash,
                                    Limits())
    assert registry.store_page(dst.engine, peer, c.last_seq, recs)
    return error


def test_rules_refuse_with_the_series_named(two: tuple[Registry, Registry]) -> None:
    sg, hk = two
    sg.create(SID, {"victims": ["V1", "V2"], "country": "SG", "country_confidence": 60,
                    "tags": ["school-uniform"]})
    with pytest.raises(SeriesError, match="exists already"):
        sg.create(SID)
    with pytest.raises(SeriesError, match="HK-POL's namespace"):
        sg.create("HK-POL:S-1")
    with pytest.raises(SeriesError, match="no series SG-SPF:S-9 is known"):
        sg.claim("SG-SPF:S-9")
    with pytest.raises(SeriesError, match="victims must be opaque references"):
        sg.describe(SID, {"victims": ["Jane Doe"]})
    sg.identify(SID, "VID desk", "SG-2026-1")
    with pytest.raises(SeriesError, match=f"series {SID}: claim refused: a series identified"):
        sg.claim(SID)
    # HK has none of it before a sync; after one, the same state
    with pytest.raises(SeriesError):
        hk.get(SID)
    assert _pull(sg, hk) is None
    a, b = sg.get(SID).as_dict(), hk.get(SID).as_dict()
    assert a == b and b["status"] == "identified" and b["identified"]["agency"] == "SG-SPF"
    with pytest.raises(SeriesError, match="belongs to SG-SPF"):
        hk.describe(SID, {"country": "HK"})


def test_contest_release_and_lease_over_two_stores(two: tuple[Registry, Registry]) -> None:
    sg, hk = two
    now = datetime.now(UTC)
    sg.create(SID, now=now)
    assert _pull(sg, hk) is None
    hk.claim(SID, timedelta(days=30), now=now + timedelta(seconds=1))
    ch = sg.claim(SID, timedelta(days=30), now=now + timedelta(seconds=2))
    assert ch.state.holder is not None and ch.state.holder.agency == "SG-SPF"  # not seen yet
    _pull(hk, sg, "hk")
    _pull(sg, hk)
    for reg in (sg, hk):
        s = reg.get(SID)
        assert s.holder is not None and s.holder.agency == "HK-POL"
        assert s.conflicts and s.conflicts[0]["contender"] == "SG-SPF"
    hk.release(SID, now=now + timedelta(seconds=3))
    _pull(hk, sg, "hk")
    s = sg.get(SID)
    assert s.holder is not None and s.holder.agency == "SG-SPF"
    # renewing a claim one does not hold is refused
    with pytest.raises(SeriesError, match="HK-POL holds no live claim"):
        hk.renew(SID, now=now + timedelta(seconds=4))


def test_tampered_and_forged_records_are_refused(two: tuple[Registry, Registry]) -> None:
    sg, hk = two
    sg.create(SID)
    sg.claim(SID)
    page = serve_page(sg.engine, "SG-SPF", 0, 100)
    bad = json.loads(json.dumps(page))
    bad["records"][1][0] = bad["records"][1][0].replace("lease_seconds", "lease_secondz")
    g = json.loads(make_record(sg.key, "SG-SPF", 1, None, "close", SID, {}, iso(T0)).body)
    _, recs, error = verify_page(json.dumps(bad).encode(), "SG-SPF", _hex(sg.key), 0,
                                 g["prev"], Limits())
    assert error is not None and "record 2: its hash does not match" in error
    assert [r.seq for r in recs] == [1]  # what verified before it is kept
    # HK signs a record that creates a series in SG's namespace: a forgery
    forged = make_record(hk.key, "HK-POL", 1, None, "series", "SG-SPF:S-99",
                         {"aliases": [], "victims": [], "offender_identified": False,
                          "tags": []}, iso(T0))
    doc = {"origin": "HK-POL", "head": 1, "records": [[forged.body, forged.hash, forged.sig]]}
    _, recs, error = verify_page(json.dumps(doc).encode(), "HK-POL", _hex(hk.key), 0,
                                 json.loads(forged.body)["prev"], Limits())
    assert recs == [] and error is not None
    assert "may not create, change or close series SG-SPF:S-99" in error
    # signed by another key: refused
    _, recs, error = verify_page(json.dumps(page).encode(), "SG-SPF", _hex(hk.key), 0,
                                 g["prev"], Limits())
    assert recs == [] and error is not None and "signature does not verify" in error
    assert descriptor("SG-SPF").bank.startswith("~")


def test_annotation_matches_the_reference_and_queues_hits(engine: Engine) -> None:
    reg = Registry(engine, Ed25519PrivateKey.generate(), "HK-POL")
    # HK holds SG's series as a sync would leave it (its chain, verified)
    sg = Registry(engine, Ed25519PrivateKey.generate(), "SG-SPF")
    for i in range(30):
        sg.create(f"SG-SPF:S-{i}")
    sg.identify("SG-SPF:S-3", "VID desk")
    reg.create("HK-POL:H-1")
    labels = [random.choice([None, "nope", "SG-SPF:S-404", "HK-POL:H-1"] +
                            [f"SG-SPF:S-{i}" for i in range(30)]) for _ in range(400)]
    notes = series_notes(reg, labels)
    assert annotate(labels, notes) == annotate_reference(engine, labels)
    assert notes["SG-SPF:S-3"]["status"] == "identified"
    from vigil.victimid.annotate import queue_hits

    hits = ["SG-SPF:S-3", "SG-SPF:S-3", "HK-POL:H-1", None]
    assert queue_hits(reg, hits, "HK-2026-114", notes) == []  # no rule: deny by default
    assert registry.set_notify(engine, "SG-SPF", True, "test")
    queued = queue_hits(reg, hits, "HK-2026-114", notes)
    assert queued == [("SG-SPF", "SG-SPF:S-3", 2)]  # never for HK's own series
    out = registry.hits_for(engine, "SG-SPF", 0, 10)
    assert [(h.series_id, h.items, h.case_ref) for h in out] == [
        ("SG-SPF:S-3", 2, "HK-2026-114")]
    assert registry.hits_for(engine, "KR-KNPA", 0, 10) == []
    with pytest.raises(SeriesError, match="case reference"):
        queue_hits(reg, [], "bad\nref", notes)


def test_kept_notes_equal_the_fold_even_past_a_lease(engine: Engine) -> None:
    """The notes kept with every change (the fast path) against folding every time."""
    import time

    reg = Registry(engine, Ed25519PrivateKey.generate(), "SG-SPF")
    for i in range(5):
        reg.create(f"SG-SPF:S-{i}")
    reg.claim("SG-SPF:S-1", timedelta(seconds=1))
    reg.claim("SG-SPF:S-2")
    reg.identify("SG-SPF:S-3", "VID desk")
    labels = [f"SG-SPF:S-{i}" for i in range(6)]
    notes = series_notes(reg, labels)
    assert annotate(labels, notes) == annotate_reference(engine, labels)
    assert notes["SG-SPF:S-1"]["status"] == "claimed"
    time.sleep(1.05)  # S-1's lease lapses: its kept note is stale, folded again
    notes = series_notes(reg, labels)
    assert notes["SG-SPF:S-1"]["status"] == "unidentified"
    assert annotate(labels, notes) == annotate_reference(engine, labels)


def test_the_periodic_sync_pulls_registries_too(engine: Engine, tmp_path: Path) -> None:
    """`vigil serve`'s periodic sync runs the registry pull after the bank feeds."""
    from vigil.exchange.periodic import PeerSyncThread

    calls: list[int] = []
    t = PeerSyncThread(engine, tmp_path, None, 0, also=lambda: calls.append(1))  # type: ignore[arg-type]
    assert t.tick() and calls == [1]


def test_overlaps_and_merge(engine: Engine) -> None:
    """Series whose entries share a signal are listed; a merge links them as aliases."""
    from vigil.banks import Banks
    from vigil.banks.entry import EntryRecord, Labels

    banks = Banks(engine, user="test")
    for name, series, values in (("a", "SG-SPF:S-1", ["1" * 32, "2" * 32, "3" * 32]),
                                 ("b", "HK-POL:H-9", ["2" * 32, "3" * 32, "4" * 32]),
                                 ("c", "KR-KNPA:K-1", ["5" * 32])):
        banks.create(name, "SG-SPF")
        banks.apply(name, [EntryRecord("md5", v, Labels(series=series)) for v in values])
    assert registry.overlaps(engine) == [("HK-POL:H-9", "SG-SPF:S-1", 2)]
    reg = Registry(engine, Ed25519PrivateKey.generate(), "SG-SPF")
    reg.create("SG-SPF:S-1", {"aliases": ["ICSE:1"]})
    s = reg.merge("SG-SPF:S-1", "HK-POL:H-9").state
    assert s.aliases == ["HK-POL:H-9", "ICSE:1"]
    with pytest.raises(SeriesError, match="merged with itself"):
        reg.merge("SG-SPF:S-1", "SG-SPF:S-1")

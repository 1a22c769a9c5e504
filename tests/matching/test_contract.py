"""The match policy's two seams (``vigil.matching.protocols``), one contract for every side.

The matcher depends on an ``EntrySource`` and a ``SignalIndex``. The CLI brings
``EntryReader`` and ``BankIndexes`` (the store, read directly); a node brings
``CachedEntries`` and ``IndexService`` (through its caches, under its index lock). Each
assertion below runs against every implementation, on SQLite and PostgreSQL, over the
same bank: PDQ, MD5, SHA-1, SHA-256, a video's vPDQ (a generated video hashed by the
real pipeline), an opaque PhotoDNA value, and removed entries. What each answer should
be is worked out from the bank's contents here (a brute-force distance, the ids written),
never from one implementation's output. The matcher itself must then give the same
outcomes through the CLI's stack and the node's.

The implementations are also held to the protocols statically: ``_conforming`` assigns
each to a variable of its protocol, which mypy checks (``make lint`` type-checks this
file), and at run time with ``isinstance`` (the protocols are runtime-checkable).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.api.runtime.entries import CachedEntries, EntryCache
from vigil.api.runtime.index_service import IndexService
from vigil.api.runtime.settings import Settings
from vigil.api.runtime.state import NodeState
from vigil.banks import Banks, EntryReader, StoredEntry
from vigil.banks.derived import derived_id, split_derived_id
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.featured import FEATURES_KEY, anchor_id
from vigil.banks.indexes import BankIndexes
from vigil.cli._app import open_matcher
from vigil.demo.synthetic import synthetic_video
from vigil.index import SearchResult, codes_from_hex, hamming, hex_from_codes
from vigil.index.arrays import Codes
from vigil.index.video import VideoMatch, brute_force_score
from vigil.matching import EntrySource, Matcher, Outcome, Query, SignalIndex
from vigil.node import init_node
from vigil.signals.vpdq import VpdqFrame, hash_video, vpdq_digest, write_vpdq
from vigil.store.models import Bank, Entry

SG, HK = "contract-sg", "contract-hk"
SG_AGENCY, HK_AGENCY = "SG-SPF", "HK-POL"
RADIUS = 31
PHOTODNA = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # an opaque value, never computed


def _flip(hex_code: str, bits: int, seed: int) -> str:
    """``hex_code`` with ``bits`` distinct bits flipped."""
    v = int(hex_code, 16)
    for b in np.random.default_rng(seed).choice(256, bits, replace=False):
        v ^= 1 << int(b)
    return f"{v:064x}"


def _digests(data: bytes) -> dict[str, str]:
    return {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest()}


@dataclass(frozen=True)
class Videos:
    """vPDQ frames of two generated videos (different pictures) and their digests."""

    banked: list[VpdqFrame]
    other: list[VpdqFrame]

    @property
    def digest(self) -> str:
        return vpdq_digest(self.banked)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    folder = tmp_path_factory.mktemp("videos")
    banked = hash_video(synthetic_video(folder / "banked.mp4", seed=1))
    other = hash_video(synthetic_video(folder / "other.mp4", seed=2))
    assert len(banked) >= 5 and all(f.quality >= 50 for f in banked + other)
    return Videos(banked, other)


@dataclass
class Contents:
    """What the bank holds, as written: entry ids by name, and the signals behind them."""

    engine: Engine
    videos: Videos
    ids: dict[str, int] = field(default_factory=dict)
    #: name -> (bank, signal type, value, removed)
    spec: dict[str, tuple[str, str, str, bool]] = field(default_factory=dict)

    def live(self, signal_type: str) -> dict[str, str]:
        """Live entries of one type: name -> value."""
        return {n: v for n, (_, t, v, removed) in self.spec.items()
                if t == signal_type and not removed}

    def directory(self) -> dict[int, tuple[str, str]]:
        with Session(self.engine) as s:
            return {i: (n, a) for i, n, a in s.execute(select(Bank.id, Bank.name, Bank.agency))}


def _build(engine: Engine, videos: Videos) -> Contents:
    """Two banks of two agencies: every kind of signal, a near duplicate in the other bank,
    the same MD5 in both, and entries added then removed (a PDQ close to a live one, an
    MD5, a video)."""
    rng = np.random.default_rng(16)
    p = hex_from_codes(rng.integers(0, 256, (3, 32), dtype=np.uint8))
    file = _digests(b"a benign file both agencies hold")
    gone = _digests(b"a file removed from the bank")
    c = Contents(engine, videos)
    c.spec = {
        "pdq0": (SG, "pdq", p[0], False), "pdq1": (SG, "pdq", p[1], False),
        "pdq2": (SG, "pdq", p[2], False),
        "md5": (SG, "md5", file["md5"], False), "sha1": (SG, "sha1", file["sha1"], False),
        "sha256": (SG, "sha256", file["sha256"], False),
        "photodna": (SG, "photodna", PHOTODNA, False),
        "video": (SG, "vpdq", videos.digest, False),
        "pdq1-gone": (SG, "pdq", _flip(p[1], 3, 1), True),
        "md5-gone": (SG, "md5", gone["md5"], True),
        "video-gone": (SG, "vpdq", vpdq_digest(videos.other), True),
        "hk-pdq0-near": (HK, "pdq", _flip(p[0], 5, 2), False),
        "hk-md5": (HK, "md5", file["md5"], False),
    }
    frames = {videos.digest: videos.banked, vpdq_digest(videos.other): videos.other}
    banks = Banks(engine)
    banks.create(SG, SG_AGENCY)
    banks.create(HK, HK_AGENCY)
    for name, (bank, t, v, _) in c.spec.items():
        extra = {"vpdq": write_vpdq(frames[v])} if t == "vpdq" else {}
        labels = Labels(category=("us", "1"), series=f"S-{name}")
        source_id = "f0" if name in ("pdq0", "md5", "sha1", "sha256") else None
        banks.apply(bank, [EntryRecord(t, v, labels, 90 if t == "pdq" else None,
                                       source_id=source_id, extra=extra)])
    for bank, t, v, removed in c.spec.values():
        if removed:
            assert banks.apply(bank, [EntryRecord(t, v, op="remove")]).removed == 1
    with Session(engine) as s:
        for name, (_, t, v, _) in c.spec.items():
            i = s.scalar(select(Entry.id).where(Entry.signal_type == t, Entry.value == v,
                                                Entry.series == f"S-{name}"))
            assert i is not None, name
            c.ids[name] = i
    return c


@pytest.fixture
def contents(engine: Engine, videos: Videos) -> Contents:
    return _build(engine, videos)


# ---- the implementations --------------------------------------------------------------


def _reader(c: Contents, _folder: Path) -> EntrySource:
    return EntryReader(c.engine)


def _cached(c: Contents, _folder: Path) -> EntrySource:
    return CachedEntries(EntryReader(c.engine), EntryCache())


#: a signal index and how it catches up with the store (not part of the protocol)
Synced = tuple[SignalIndex, Callable[[], object]]


def _bank_indexes(c: Contents, folder: Path) -> Synced:
    idx = BankIndexes(c.engine, folder / "indexes")
    return idx, idx.sync


def _index_service(c: Contents, folder: Path) -> Synced:
    svc = IndexService(c.engine, Settings(home=folder))
    return svc, svc.sync


ENTRY_SOURCES = {"EntryReader": _reader, "CachedEntries": _cached}
SIGNAL_INDEXES = {"BankIndexes": _bank_indexes, "IndexService": _index_service}


@pytest.fixture(params=sorted(ENTRY_SOURCES))
def source(request: pytest.FixtureRequest, contents: Contents, tmp_path: Path) -> EntrySource:
    return ENTRY_SOURCES[request.param](contents, tmp_path)


@pytest.fixture(params=sorted(SIGNAL_INDEXES))
def index(request: pytest.FixtureRequest, contents: Contents, tmp_path: Path) -> Synced:
    return SIGNAL_INDEXES[request.param](contents, tmp_path)


def _conforming(engine: Engine, folder: Path) -> tuple[list[EntrySource], list[SignalIndex]]:
    """Every implementation, typed as its protocol: mypy checks each assignment."""
    reader: EntrySource = EntryReader(engine)
    cached: EntrySource = CachedEntries(EntryReader(engine), EntryCache())
    bank_indexes: SignalIndex = BankIndexes(engine, folder / "cli")
    service: SignalIndex = IndexService(engine, Settings(home=folder / "node"))
    return [reader, cached], [bank_indexes, service]


def test_every_implementation_is_its_protocol(engine: Engine, tmp_path: Path) -> None:
    sources, indexes = _conforming(engine, tmp_path)
    assert all(isinstance(s, EntrySource) for s in sources)
    assert all(isinstance(i, SignalIndex) for i in indexes)

    class NoVideo:  # what the node's index once was: no video search
        def search_pdq(self, codes: Codes, radius: int) -> SearchResult:
            return SearchResult.empty(len(codes))

        def lookup(self, signal_type: str, values: list[str]) -> SearchResult:
            return SearchResult.empty(len(values))

    assert not isinstance(NoVideo(), SignalIndex)

    class NoDerived(NoVideo):  # what the index was before crop ladders
        def search_videos(self, queries: object) -> list[list[VideoMatch]]:
            return []

    assert not isinstance(NoDerived(), SignalIndex)

    class NoFeatured(NoDerived):  # what the index was before the second stage
        def search_pdq_derived(self, codes: Codes, radius: int) -> SearchResult:
            return SearchResult.empty(len(codes))

    assert not isinstance(NoFeatured(), SignalIndex)


# ---- EntrySource ----------------------------------------------------------------------


def _expect_entry(c: Contents, name: str, e: StoredEntry) -> None:
    bank, t, v, removed = c.spec[name]
    assert (e.id, e.bank, e.signal_type, e.value, e.removed) == (c.ids[name], bank, t, v,
                                                                  removed), name
    assert e.agency == (SG_AGENCY if bank == SG else HK_AGENCY)
    assert e.labels.series == f"S-{name}" and e.labels.category == ("us", "1")
    assert e.source_id == ("f0" if name in ("pdq0", "md5", "sha1", "sha256") else None)
    assert e.quality == (90 if t == "pdq" else None)


def test_names_are_every_bank(contents: Contents, source: EntrySource) -> None:
    assert source.names() == {SG, HK}


def test_by_ids_resolves_every_entry_removed_ones_included(
        contents: Contents, source: EntrySource) -> None:
    unknown = max(contents.ids.values()) + 1000
    wanted = [*contents.ids.values(), unknown]
    got = source.by_ids(wanted)
    assert set(got) == set(contents.ids.values())
    for name, i in contents.ids.items():
        _expect_entry(contents, name, got[i])
    # asked again (a cache answers now), with the caller's bank directory, with part of
    # it (the source reads what it lacks), or as a generator: the same entries
    assert source.by_ids(wanted) == got
    directory = contents.directory()
    assert source.by_ids(wanted, directory) == got
    sg_only = {i: nb for i, nb in directory.items() if nb[0] == SG}
    assert source.by_ids(iter(wanted), sg_only) == got
    assert source.by_ids([]) == {}
    assert source.by_ids([unknown]) == {}


def test_find_is_exact_and_live_only(contents: Contents, source: EntrySource) -> None:
    def names(found: list[StoredEntry]) -> set[str]:
        by_id = {i: n for n, i in contents.ids.items()}
        return {by_id[e.id] for e in found}

    c = contents
    md5 = c.spec["md5"][2]
    assert names(source.find("md5", [md5])) == {"md5", "hk-md5"}
    assert names(source.find("md5", [md5], [HK])) == {"hk-md5"}
    assert names(source.find("md5", [md5], [SG], c.directory())) == {"md5"}
    assert names(source.find("photodna", [PHOTODNA, "AAAA"])) == {"photodna"}
    assert names(source.find("vpdq", [c.videos.digest])) == {"video"}
    for gone in ("md5-gone", "video-gone", "pdq1-gone"):
        _, t, v, _ = c.spec[gone]
        assert source.find(t, [v]) == [], gone
    assert source.find("photodna", [PHOTODNA.lower()]) == []  # opaque: exact, case too
    assert source.find("md5", []) == []
    for e in source.find("md5", [md5, c.spec["sha1"][2]]):
        _expect_entry(c, "md5" if e.bank == SG else "hk-md5", e)


# ---- SignalIndex ----------------------------------------------------------------------


def _pdq_truth(c: Contents, queries: list[str], radius: int) -> list[list[tuple[int, int]]]:
    """Brute force over the live PDQ entries: (id, distance) per query, best first."""
    live = c.live("pdq")
    out = []
    for q in queries:
        hits = [(c.ids[n], hamming(q, v)) for n, v in live.items()]
        out.append(sorted(((i, d) for i, d in hits if d <= radius), key=lambda h: (h[1], h[0])))
    return out


def test_search_pdq_finds_every_live_code_within_the_radius(
        contents: Contents, index: Synced) -> None:
    idx, _ = index
    c = contents
    p = [c.spec[f"pdq{k}"][2] for k in range(3)]
    far = "0" * 64
    queries = [p[0], p[1], _flip(p[2], 31, 7), _flip(p[2], 32, 8), far, c.spec["pdq1-gone"][2]]
    for radius in (RADIUS, 0, 4, 5, 64):
        res = idx.search_pdq(codes_from_hex(queries), radius)
        assert len(res) == len(queries)
        assert [res.matches(k) for k in range(len(queries))] == _pdq_truth(c, queries, radius)
    res = idx.search_pdq(codes_from_hex(queries), RADIUS)
    # the near duplicate in the other bank, 5 bits off, after the exact one
    assert [i for i, _ in res.matches(0)] == [c.ids["pdq0"], c.ids["hk-pdq0-near"]]
    # the removed code 3 bits from pdq1 is never found, by itself or by its neighbour
    assert res.matches(1) == [(c.ids["pdq1"], 0)]
    assert res.matches(5) == [(c.ids["pdq1"], 3)]
    assert res.count(2) == 1 and res.count(3) == 0
    assert len(idx.search_pdq(np.zeros((0, 32), np.uint8), RADIUS)) == 0


def test_lookup_finds_live_digests_only(contents: Contents, index: Synced) -> None:
    idx, _ = index
    c = contents
    md5 = c.spec["md5"][2]
    res = idx.lookup("md5", [md5, c.spec["md5-gone"][2], "0" * 32, md5.upper()])
    assert sorted(res.matches(0)) == sorted([(c.ids["md5"], 0), (c.ids["hk-md5"], 0)])
    assert res.count(1) == 0 and res.count(2) == 0
    assert sorted(res.matches(3)) == sorted(res.matches(0))  # hex is hex, either case
    for t in ("sha1", "sha256"):
        assert idx.lookup(t, [c.spec[t][2]]).matches(0) == [(c.ids[t], 0)]
    assert len(idx.lookup("sha256", [])) == 0
    with pytest.raises(ValueError, match="position 1"):
        idx.lookup("sha1", [c.spec["sha1"][2], "not hex"])


def test_search_videos_scores_banked_videos(contents: Contents, index: Synced) -> None:
    idx, _ = index
    c = contents
    half = c.videos.banked[: len(c.videos.banked) // 2]
    found = idx.search_videos([c.videos.banked, c.videos.other, half, []])
    assert len(found) == 4
    [whole] = found[0]
    assert isinstance(whole, VideoMatch) and whole.video_id == c.ids["video"]
    assert whole.score == brute_force_score(c.videos.banked, c.videos.banked)
    assert (whole.score.query_pct, whole.score.compared_pct) == (100.0, 100.0)
    assert whole.query_ranges == whole.compared_ranges == [
        (c.videos.banked[0].seconds, c.videos.banked[-1].seconds)]
    assert found[1] == []  # the removed video is not searched; the query is that video
    [part] = found[2]  # all of the query is in the banked video, not all of the banked one
    assert part.video_id == c.ids["video"]
    assert part.score == brute_force_score(half, c.videos.banked)
    assert part.score.query_pct == 100.0 and part.score.compared_pct < 100.0
    assert found[3] == []
    assert idx.search_videos([]) == []


def test_changes_reach_the_index_after_a_sync(contents: Contents, index: Synced) -> None:
    idx, sync = index
    c = contents
    banks = Banks(c.engine)
    p0, md5 = c.spec["pdq0"][2], c.spec["md5"][2]
    new = _flip(p0, 100, 9)
    banks.apply(SG, [EntryRecord("pdq", p0, op="remove"), EntryRecord("pdq", new),
                     EntryRecord("md5", md5, op="remove"),
                     EntryRecord("vpdq", c.videos.digest, op="remove")])
    sync()
    res = idx.search_pdq(codes_from_hex([p0, new]), RADIUS)
    assert [i for i, _ in res.matches(0)] == [c.ids["hk-pdq0-near"]]
    [(new_id, distance)] = res.matches(1)
    assert distance == 0 and new_id not in c.ids.values()
    assert idx.lookup("md5", [md5]).matches(0) == [(c.ids["hk-md5"], 0)]
    assert idx.search_videos([c.videos.banked]) == [[]]
    banks.apply(SG, [EntryRecord("vpdq", c.videos.digest,
                                 extra={"vpdq": write_vpdq(c.videos.banked)})])
    sync()
    [[back]] = idx.search_videos([c.videos.banked])
    assert back.video_id == c.ids["video"]  # the same entry, live again


def test_search_pdq_derived_finds_the_ladders_of_ladder_banks_only(
        contents: Contents, index: Synced) -> None:
    """Derived codes (``vigil.banks.derived``) of a bank with a crop ladder are searched,
    with ids packing the entry and the window; a bank without a ladder contributes none
    (whatever its entries' ``extra`` says); a removal takes every window out."""
    idx, sync = index
    banks = Banks(contents.engine)
    banks.create("ladder", SG_AGENCY, crop_ladder=True)
    rng = np.random.default_rng(22)
    codes = hex_from_codes(rng.integers(0, 256, (6, 32), dtype=np.uint8))
    ladder = [["trimmed", codes[1], 80], ["centre-0.05", codes[2], 70],
              ["bottom-0.1", codes[3], 30]]  # the flat one is never indexed
    banks.apply("ladder", [EntryRecord("pdq", codes[0], quality=90,
                                       extra={"pdq_derived": ladder})])
    banks.apply(SG, [EntryRecord("pdq", codes[4], quality=90,
                                 extra={"pdq_derived": [["trimmed", codes[5], 90]]})])
    sync()
    with Session(contents.engine) as s:
        eid = s.scalar(select(Entry.id).where(Entry.value == codes[0]))
    assert eid is not None
    queries = [codes[1], _flip(codes[2], 31, 5), _flip(codes[2], 32, 6), codes[3], codes[5],
               codes[0]]
    res = idx.search_pdq_derived(codes_from_hex(queries), RADIUS)
    truth = [[(derived_id(eid, "trimmed"), 0)], [(derived_id(eid, "centre-0.05"), 31)],
             [], [], [], []]
    assert [res.matches(k) for k in range(len(queries))] == truth
    assert [split_derived_id(i) for i, _ in res.matches(1)] == [(eid, "centre-0.05")]
    banks.apply("ladder", [EntryRecord("pdq", codes[0], op="remove")])
    sync()
    res = idx.search_pdq_derived(codes_from_hex(queries[:2]), RADIUS)
    assert res.count(0) == res.count(1) == 0


def test_search_pdq_featured_finds_the_anchors_of_pictures_with_features(
        contents: Contents, index: Synced) -> None:
    """Anchor codes (``vigil.banks.featured``) of a ladder bank's entries that keep local
    features are searched at any radius, with ids packing the entry and the anchor; an
    entry without features, a flat one, or one in a bank without a ladder contributes
    none; a removal takes every anchor out."""
    from vigil.signals.features import FeatureSet

    idx, sync = index
    banks = Banks(contents.engine)
    banks.create("featured", SG_AGENCY, crop_ladder=True)
    rng = np.random.default_rng(23)
    codes = hex_from_codes(rng.integers(0, 256, (7, 32), dtype=np.uint8))
    feats = FeatureSet(64, 48, np.zeros((20, 2), np.float32),
                       rng.integers(0, 256, (20, 32), dtype=np.uint8)).pack()
    ladder = [["centre-0.1", codes[1], 80], ["centre-0.05", codes[2], 80]]
    banks.apply("featured", [
        EntryRecord("pdq", codes[0], quality=90,
                    extra={FEATURES_KEY: feats, "pdq_derived": ladder}),
        EntryRecord("pdq", codes[3], quality=90),  # no features
        EntryRecord("pdq", codes[4], quality=30, extra={FEATURES_KEY: feats})])  # flat
    banks.apply(SG, [EntryRecord("pdq", codes[5], quality=90, extra={FEATURES_KEY: feats})])
    sync()
    with Session(contents.engine) as s:
        eid = s.scalar(select(Entry.id).where(Entry.value == codes[0]))
    assert eid is not None
    queries = [_flip(codes[0], 60, 1), _flip(codes[1], 61, 2), codes[2], codes[3], codes[4],
               codes[5]]
    res = idx.search_pdq_featured(codes_from_hex(queries), 61)
    truth = [[(anchor_id(eid, "original"), 60)], [(anchor_id(eid, "centre-0.1"), 61)],
             [], [], [], []]
    # (random codes lie ~128 bits apart: no other anchor comes within 61 bits)
    assert [res.matches(k) for k in range(len(queries))] == truth
    banks.apply("featured", [EntryRecord("pdq", codes[0], op="remove")])
    sync()
    res = idx.search_pdq_featured(codes_from_hex(queries[:2]), 61)
    assert res.count(0) == res.count(1) == 0


# ---- the Matcher through both stacks --------------------------------------------------


@pytest.fixture
def stacks(contents: Contents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           ) -> Iterator[tuple[Callable[[], Matcher], NodeState]]:
    """The CLI's matcher (``open_matcher``: opened afresh by every command) and a node
    worker's state (``NodeState``: the matcher over its caches and index service)."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "cli"))
    home = tmp_path / "node"
    init_node(contents.engine, home, SG_AGENCY, "Contract node", "SG")
    node = NodeState(contents.engine, Settings(home=home, sync_interval=60))
    node.start()
    try:
        yield (lambda: open_matcher(Banks(contents.engine))), node
    finally:
        node.stop()


def _items(c: Contents) -> list[list[Query]]:
    p0, p1 = c.spec["pdq0"][2], c.spec["pdq1"][2]
    rotated = _flip(p1, 120, 11)  # far from everything, as an original
    return [
        [Query("pdq", _flip(p0, 2, 3), 90)],  # near both banks' codes
        [Query("md5", c.spec["md5"][2]), Query("sha1", c.spec["sha1"][2]),
         Query("sha256", c.spec["sha256"][2]), Query("pdq", p0, 100)],  # one file, 4 ways
        [Query("pdq", rotated, 90, (("rotate90", p1),))],  # found through a variant
        [Query("pdq", p1, 20)],  # too flat to search
        [Query("photodna", PHOTODNA)],
        [Query("vpdq", c.videos.digest, frames=tuple(c.videos.banked))],
        [Query("vpdq", c.videos.digest)],  # the bare digest: exact
        [Query("vpdq", "0" * 64, frames=tuple(c.videos.other))],  # a removed video
        [Query("md5", c.spec["md5-gone"][2]), Query("pdq", c.spec["pdq1-gone"][2], 90)],
        [Query("sha256", "ab" * 32)],
    ]


def _summary(outcomes: list[Outcome]) -> list[list[tuple[str, str, int, str]]]:
    return [[(m.entry.bank, m.signal_type, m.distance, m.variant) for m in o.matches]
            for o in outcomes]


def test_the_matcher_answers_the_same_through_the_cli_and_the_node(
        contents: Contents, stacks: tuple[Callable[[], Matcher], NodeState]) -> None:
    cli, node = stacks
    c = contents
    items = _items(c)
    cases: list[dict[str, Any]] = [{}, {"threshold": 1}, {"bank_names": [HK]},
                                   {"min_quality": 10}, {"threshold": 64, "bank_names": [SG, HK]}]
    for kwargs in cases:
        first = cli().match(items, **kwargs)
        assert any(o.matches for o in first), kwargs
        assert node.matcher.match(items, **kwargs) == first, kwargs
        # and again: the node now answers from its entry cache
        assert node.matcher.match(items, **kwargs) == first, kwargs
    out = cli().match(items)
    q0 = items[0][0].value
    assert _summary(out)[0] == sorted(
        [(SG, "pdq", hamming(q0, c.spec["pdq0"][2]), "original"),
         (HK, "pdq", hamming(q0, c.spec["hk-pdq0-near"][2]), "original")],
        key=lambda m: (m[2], m[0]))
    # one file's four signals are one lead; HK's copy of its MD5 and its near PDQ (no
    # shared source id) are one each
    leads = sorted((lead.entry.id, sorted(signals)) for lead, signals in out[1].leads())
    assert leads == sorted([(c.ids["sha256"], ["md5", "pdq", "sha1", "sha256"]),
                            (c.ids["hk-md5"], ["md5"]), (c.ids["hk-pdq0-near"], ["pdq"])])
    assert _summary(out)[2] == [(SG, "pdq", 0, "rotate90")]
    assert out[3].matches == [] and "quality 20 < 50" in out[3].skipped[0]
    assert [m.entry.id for m in out[4].matches] == [c.ids["photodna"]]
    [video] = out[5].matches
    assert video.entry.id == c.ids["video"] and video.video is not None
    assert video.video.score.query_pct == 100.0
    assert [m.entry.id for m in out[6].matches] == [c.ids["video"]]
    assert out[7].matches == out[9].matches == []
    # removed entries are not found: the removed PDQ's query finds only its live neighbour
    assert [(m.entry.id, m.distance) for m in out[8].matches] == [(c.ids["pdq1"], 3)]


def test_after_a_change_both_stacks_still_agree(
        contents: Contents, stacks: tuple[Callable[[], Matcher], NodeState]) -> None:
    """The node resolves hits through its entry cache, which its index's tail keeps
    honest: a relabel and a removal read before are not served stale after a sync."""
    cli, node = stacks
    c = contents
    items = _items(c)
    before = node.matcher.match(items)  # every hit's entry is now in the node's cache
    assert before == cli().match(items)
    banks = Banks(c.engine)
    banks.apply(SG, [EntryRecord("pdq", c.spec["pdq0"][2], Labels(series="relabelled")),
                     EntryRecord("photodna", PHOTODNA, op="remove"),
                     EntryRecord("sha256", c.spec["sha256"][2], op="remove")])
    node.index.sync()
    after = cli().match(items)
    assert node.matcher.match(items) == after != before
    relabelled = [m for m in after[1].matches if m.signal_type == "pdq" and m.entry.bank == SG]
    assert [m.entry.labels.series for m in relabelled] == ["relabelled"]
    assert after[4].matches == []
    assert "sha256" not in {m.signal_type for m in after[1].matches}


def test_derived_matches_agree_through_both_stacks(
        contents: Contents, stacks: tuple[Callable[[], Matcher], NodeState]) -> None:
    """A ladder bank's derived codes give the same leads through the CLI and the node,
    with the variant naming both sides, and only in the pairs the option allows."""
    cli, node = stacks
    banks = Banks(contents.engine)
    banks.create("ladder-stacks", SG_AGENCY, crop_ladder=True)
    rng = np.random.default_rng(41)
    codes = hex_from_codes(rng.integers(0, 256, (5, 32), dtype=np.uint8))
    banks.apply("ladder-stacks", [EntryRecord("pdq", codes[0], quality=90, extra={
        "pdq_derived": [["centre-0.05", codes[1], 80], ["bottom-0.2", codes[2], 80],
                        ["trimmed", codes[3], 80]]})])
    node.index.sync()
    items = [[Query("pdq", _flip(codes[1], 4, 1), 90)],  # a crop of the banked picture
             [Query("pdq", codes[4], 90, derived=(("no-bottom-0.2", _flip(codes[2], 2, 2), 70),))],
             [Query("pdq", codes[3], 90)],  # the banked picture without its frame
             [Query("pdq", codes[4], 90, derived=(("no-bottom-0.2", codes[1], 70),))]]
    for option in ("off", "borders", "crops", "all"):
        first = cli().match(items, variants=option)
        assert node.matcher.match(items, variants=option) == first, option
        got = [[(m.variant, m.distance) for m in o.matches] for o in first]
        crops = option in ("crops", "all")
        borders = option in ("borders", "all")
        assert got[0] == ([("original/centre-0.05", 4)] if crops else []), option
        assert got[1] == ([("no-bottom-0.2/bottom-0.2", 2)] if crops else []), option
        assert got[2] == ([("original/trimmed", 0)] if borders else []), option
        assert got[3] == [], option  # a band-less window never meets another window

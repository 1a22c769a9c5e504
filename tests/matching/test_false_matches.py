"""Zero false matches with every variant on, through the real pipeline, store, indexes
and matcher: each picture is banked with its crop ladder and local features, then every
picture is matched with ``variants="features"`` (every derived code, and the second stage:
candidates within a wide PDQ radius confirmed by local features) and may find only its own
entry. Different corpus photos never come within the second stage's PDQ radius (measured:
bench/RESULTS.md), so its check is also put to work on its own: every ordered pair of 60
corpus photos is compared by local features, whatever their PDQ distance, and none may
be confirmed.

Counted two ways (issue 22): all pairs of the 500 corpus photos (124,750 pairs, each
checked both ways: a query against the other's bank entry), and 1,001,000 ordered pairs of
1,001 different generated textured pictures. SQLite only: storage is covered by the other
tests; this one is about hashes."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine

from tests.conftest import store_engine
from vigil.banks import Banks, EntryReader
from vigil.banks.entry import Labels
from vigil.banks.files import records_of_file
from vigil.banks.indexes import BankIndexes
from vigil.matching import Matcher, queries_of
from vigil.matching.confirm import confirm
from vigil.signals import HashOptions, hash_bytes
from vigil.signals.features import unpack

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "bsds500"


def _textured(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    """A JPEG of random texture at two scales: every seed a different picture."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (7, 9, 3), dtype=np.uint8), "RGB")
    fine = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB")
    a = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), np.float32)
    b = np.asarray(fine.resize(size, Image.Resampling.BICUBIC), np.float32)
    img = Image.fromarray(np.clip(0.7 * a + 0.3 * b, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _false_matches(engine: Engine, folder: Path, blobs: Iterable[bytes]) -> tuple[int, int]:
    """(pairs checked, false matches) for pictures banked with a ladder and features, and
    matched back with every variant and the second stage on."""
    data = list(blobs)
    banks = Banks(engine, user="t")
    banks.create("ladder", "SG-SPF", crop_ladder=True)
    bank_side = HashOptions(crop_ladder=True)
    query_side = HashOptions(variants="features", dihedral=True)
    records, queries = [], []
    for k, blob in enumerate(data):
        r = hash_bytes(blob, f"{k}.jpg", bank_side)
        assert r.pdq_derived, k
        records += [rec for rec in records_of_file(r, Labels(series=f"S{k}"))
                    if rec.signal_type == "pdq"]
        queries.append([q for q in queries_of(hash_bytes(blob, f"{k}.jpg", query_side), True)
                        if q.signal_type == "pdq"])
    assert banks.apply("ladder", records).added == len(data)  # no two pictures share a PDQ
    matcher = Matcher(EntryReader(engine), BankIndexes(engine, folder / "idx"))
    outcomes = matcher.match(queries, variants="features", min_quality=0)
    false = 0
    for k, o in enumerate(outcomes):
        own = [m for m in o.matches if m.entry.labels.series == f"S{k}"]
        assert own and own[0].distance == 0, k  # each finds itself...
        false += len(o.matches) - len(own)  # ...and nothing else
    return len(data) * (len(data) - 1), false


def test_no_false_match_between_the_corpus_photos(tmp_path: Path) -> None:
    paths = sorted(CORPUS.glob("*/*.jpg"))
    if len(paths) < 500:
        pytest.skip("no shared corpus")
    with store_engine("sqlite", tmp_path) as engine:
        pairs, false = _false_matches(engine, tmp_path, (p.read_bytes() for p in paths[:500]))
    assert pairs == 2 * 124_750 and false == 0


def test_local_features_confirm_no_pair_of_different_corpus_photos() -> None:
    paths = sorted(CORPUS.glob("*/*.jpg"))[:60]
    if len(paths) < 60:
        pytest.skip("no shared corpus")
    feats = []
    for p in paths:
        r = hash_bytes(p.read_bytes(), p.name, HashOptions(crop_ladder=True))
        assert r.pdq_features is not None, p.name
        feats.append(unpack(r.pdq_features))
    confirmed = [(i, j) for i, a in enumerate(feats) for j, b in enumerate(feats)
                 if i != j and confirm(a, b) is not None]
    assert confirmed == []
    assert confirm(feats[0], feats[0]) is not None  # while a picture confirms itself


def test_no_false_match_in_a_million_pairs_of_generated_pictures(tmp_path: Path) -> None:
    with store_engine("sqlite", tmp_path) as engine:
        pairs, false = _false_matches(engine, tmp_path, (_textured(s) for s in range(1001)))
    assert pairs >= 1_000_000 and false == 0

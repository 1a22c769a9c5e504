"""Zero false matches with every variant on, through the real pipeline, store, indexes
and matcher: each picture is banked with its crop ladder and local features, then every
picture is matched with ``variants="features"`` (every derived code, and the second stage:
candidates within a wide PDQ radius confirmed by local features) and may find only its own
entry. How many candidates the second stage had to turn down is counted too, so the test
shows it was put to work.

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
from vigil.matching.second import FeatureQuery, candidates
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


def _false_matches(engine: Engine, folder: Path, blobs: Iterable[bytes],
                   ) -> tuple[int, int, int]:
    """(pairs checked, false matches, second-stage candidates turned down) for pictures
    banked with a ladder and features, and matched back."""
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
    indexes = BankIndexes(engine, folder / "idx")
    matcher = Matcher(EntryReader(engine), indexes)
    outcomes = matcher.match(queries, variants="features", min_quality=0)
    false = 0
    own_ids: set[tuple[int, int]] = set()
    for k, o in enumerate(outcomes):
        own = [m for m in o.matches if m.entry.labels.series == f"S{k}"]
        assert own and own[0].distance == 0, k  # each finds itself...
        own_ids.add((k, own[0].entry.id))
        false += len(o.matches) - len(own)  # ...and nothing else
    featured = [FeatureQuery(k, (q.value,), unpack(q.features)) for k, [q] in
                enumerate(queries) if q.features is not None and (q.quality or 0) >= 50]
    turned_down = sum(len(c) for c in candidates(indexes, featured, own_ids).values())
    return len(data) * (len(data) - 1), false, turned_down


def test_no_false_match_between_the_corpus_photos(tmp_path: Path) -> None:
    paths = sorted(CORPUS.glob("*/*.jpg"))
    if len(paths) < 500:
        pytest.skip("no shared corpus")
    with store_engine("sqlite", tmp_path) as engine:
        pairs, false, turned_down = _false_matches(
            engine, tmp_path, (p.read_bytes() for p in paths[:500]))
    assert pairs == 2 * 124_750 and false == 0
    assert turned_down > 0  # the second stage had different pictures to turn down


def test_no_false_match_in_a_million_pairs_of_generated_pictures(tmp_path: Path) -> None:
    with store_engine("sqlite", tmp_path) as engine:
        pairs, false, _ = _false_matches(engine, tmp_path,
                                         (_textured(s) for s in range(1001)))
    assert pairs >= 1_000_000 and false == 0

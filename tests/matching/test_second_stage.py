"""The second stage end to end (``--variants features``): a corpus photo banked in a bank
with a crop ladder keeps its local features; a copy rotated by 3-5° or cropped by 15-20% a
side, which no PDQ code finds, then matches through the second stage, and the lead names
it (``features``, with the PDQ distance and the inlier count). On SQLite and PostgreSQL:
the features round-trip through the store, ``vigil bank show`` counts them without
printing them, ``vigil scan`` carries them to its matching, a flat picture never matches
through them, and the anchor index follows removals."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import Engine
from typer.testing import CliRunner

from vigil.banks import Banks, EntryReader
from vigil.banks.entry import EntryRecord, Labels
from vigil.banks.featured import ANCHORS, FEATURES_KEY, anchor_id
from vigil.banks.files import records_of_file
from vigil.banks.indexes import BankIndexes
from vigil.cli import app
from vigil.index import codes_from_hex
from vigil.matching import Matcher, queries_of
from vigil.matching.confirm import MIN_INLIERS
from vigil.matching.second import FEATURE_RADIUS
from vigil.signals import HashOptions, hash_bytes
from vigil.signals.features import MAX_TEXT, unpack

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "bsds500"


def _photo(k: int = 7) -> Image.Image:
    paths = sorted(CORPUS.glob("*/*.jpg"))
    if not paths:
        pytest.skip("no shared corpus")
    return Image.open(paths[k]).convert("RGB")


def _crop(frac: float) -> Callable[[Image.Image], Image.Image]:
    def f(im: Image.Image) -> Image.Image:
        w, h = im.size
        dx, dy = round(frac * w), round(frac * h)
        return im.crop((dx, dy, w - dx, h - dy))
    return f


def _rotate(deg: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.rotate(deg, Image.Resampling.BICUBIC, expand=False)


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "rotate 3°": _rotate(3),
    "rotate -5°": _rotate(-5),
    "crop 15% a side": _crop(0.15),
    "crop 20% a side": _crop(0.20),
    "rotate 4° and crop 15%": lambda im: _crop(0.15)(_rotate(4)(im)),
}


@pytest.fixture
def vigil(engine: Engine, tmp_path: Path) -> Callable[..., str]:
    runner = CliRunner()
    env = {"VIGIL_HOME": str(tmp_path / "home"),
           "VIGIL_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "VIGIL_USER": "examiner1"}

    def run(*args: str) -> str:
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == 0, (args, r.output, r.exception)
        return r.output

    return run


def _bank(vigil: Callable[..., str], folder: Path, photo: Image.Image) -> None:
    folder.mkdir()
    photo.save(folder / "original.jpg", quality=92)
    vigil("bank", "create", "ladder", "--agency", "SG-SPF", "--crop-ladder")
    vigil("bank", "add", "ladder", str(folder), "--category", "us:1", "-q")


def test_rotated_and_heavily_cropped_copies_match_through_the_second_stage(
        vigil: Callable[..., str], tmp_path: Path) -> None:
    photo = _photo()
    _bank(vigil, tmp_path / "banked", photo)
    queries = tmp_path / "queries"
    queries.mkdir()
    names = list(EDITS)
    for k, fn in enumerate(EDITS.values()):
        fn(photo).save(queries / f"{k}.jpg", quality=90)

    def leads(option: str) -> dict[str, list[dict[str, object]]]:
        out = vigil("match", str(queries), "--json", "-q", "--variants", option)
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return {names[int(Path(r["item"]).stem)]: r["matches"] for r in rows}

    first = leads("all")
    assert all(first[n] == [] for n in names if n.startswith("rotate")), first
    found = leads("features")
    for name in names:
        if first[name]:  # the ladder found it already: the first stage's lead stands
            continue
        [m] = found[name]
        assert m["bank"] == "ladder" and m["signal_type"] == "pdq", name
        assert m["variant"] == "features", name
        assert 0 <= int(m["distance"]) <= FEATURE_RADIUS, (name, m)  # type: ignore[call-overload]
        assert int(m["inliers"]) >= MIN_INLIERS, (name, m)  # type: ignore[call-overload]
    text = vigil("match", str(queries / "0.jpg"), "-q", "--variants", "features")
    assert "(features), " in text and "keypoints agree" in text


def test_features_round_trip_through_the_store_and_bank_show_counts_them(
        vigil: Callable[..., str], engine: Engine, tmp_path: Path) -> None:
    photo = _photo()
    _bank(vigil, tmp_path / "banked", photo)
    r = hash_bytes((tmp_path / "banked" / "original.jpg").read_bytes(), "o.jpg",
                   HashOptions(crop_ladder=True))
    assert r.pdq_features is not None and len(r.pdq_features) <= MAX_TEXT
    [stored] = [e for e in EntryReader(engine).entries("ladder") if e.signal_type == "pdq"]
    assert stored.extra[FEATURES_KEY] == r.pdq_features  # byte for byte
    back = unpack(stored.extra[FEATURES_KEY])
    assert len(back) >= MIN_INLIERS
    out = vigil("bank", "show", "ladder")
    assert "local features (second stage): 1 pictures" in out
    assert r.pdq_features[:24] not in out
    shown = json.loads(vigil("bank", "show", "ladder", "--json"))
    assert shown["with_features"] == 1
    # a client's own hashes leave the features out too (they are not a hash to send)
    out = vigil("hash", "--json", "--variants", "features",
                str(tmp_path / "banked" / "original.jpg"))
    assert "pdq_features" not in out and r.pdq_features[:24] not in out


def test_a_flat_picture_never_matches_through_the_second_stage(
        vigil: Callable[..., str], tmp_path: Path) -> None:
    flat = Image.new("RGB", (400, 300), (120, 120, 120))
    ImageDraw.Draw(flat).rectangle((0, 0, 399, 20), fill=(0, 0, 0))
    folder = tmp_path / "flat"
    folder.mkdir()
    flat.save(folder / "flat.png")
    vigil("bank", "create", "ladder", "--agency", "SG-SPF", "--crop-ladder")
    vigil("bank", "add", "ladder", str(folder), "-q")
    assert "local features" not in vigil("bank", "show", "ladder")  # none banked
    flat.rotate(4).save(tmp_path / "rotated.png")
    for path in (folder / "flat.png", tmp_path / "rotated.png"):
        out = vigil("match", str(path), "--json", "-q", "--variants", "features")
        [row] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert all(m["variant"] != "features" for m in row["matches"])


def test_scan_matches_a_rotated_copy_with_the_second_stage(
        vigil: Callable[..., str], tmp_path: Path) -> None:
    photo = _photo()
    _bank(vigil, tmp_path / "banked", photo)
    seized = tmp_path / "seized"
    seized.mkdir()
    _rotate(4)(photo).save(seized / "rotated.jpg", quality=90)
    for option, want in (("all", set()), ("features", {"rotated.jpg"})):
        out = tmp_path / f"case-{option}"
        vigil("scan", str(seized), "--out", str(out), "-j", "1", "-q", "--thumbnails", "none",
              "--variants", option)
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        matched = {Path(r["path"]).name: r for r in rows if r.get("matches")}
        assert set(matched) == want, option
        for r in matched.values():
            assert r["matches"][0]["variant"] == "features"
            assert r["matches"][0]["inliers"] >= MIN_INLIERS
            assert r["matches"][0]["video"] is None
    assert "keypoints agree" in (tmp_path / "case-features" / "report.html").read_text()


def test_the_anchor_index_follows_additions_and_removals(engine: Engine, tmp_path: Path,
                                                         ) -> None:
    photo = _photo(11)
    blob = _jpeg(photo)
    banks = Banks(engine, user="t")
    banks.create("ladder", "SG-SPF", crop_ladder=True)
    banks.create("plain", "SG-SPF")
    r = hash_bytes(blob, "o.jpg", HashOptions(crop_ladder=True))
    [rec] = [x for x in records_of_file(r, Labels(series="S1")) if x.signal_type == "pdq"]
    idx = BankIndexes(engine, tmp_path / "idx")
    banks.apply("plain", [rec])  # a bank without a ladder: its features are not searched
    idx.sync()
    assert len(idx.featured) == 0
    banks.apply("ladder", [rec])
    idx.sync()
    [eid] = [e.id for e in EntryReader(engine).entries("ladder")]
    res = idx.search_pdq_featured(codes_from_hex([rec.value]), 0)
    assert res.matches(0) == [(anchor_id(eid, "original"), 0)]
    assert 4 <= len(idx.featured) <= len(ANCHORS)  # the picture and its anchor windows
    again = BankIndexes(engine, tmp_path / "idx")  # a saved generation loads them back
    assert len(again.featured) == len(idx.featured)
    rotated = hash_bytes(_jpeg(_rotate(4)(photo)), "r.jpg", HashOptions(variants="features"))
    matcher = Matcher(EntryReader(engine), idx)
    [q] = [x for x in queries_of(rotated) if x.signal_type == "pdq"]
    [o] = matcher.match([[q]], variants="features")
    assert [(m.entry.id, m.variant) for m in o.matches] == [(eid, "features")]
    assert o.matches[0].inliers is not None and o.matches[0].inliers >= MIN_INLIERS
    [o] = matcher.match([[q]], variants="features", bank_names=["plain"])
    assert o.matches == []
    banks.apply("ladder", [EntryRecord("pdq", rec.value, op="remove")])
    idx.sync()
    assert len(idx.featured) == 0
    [o] = matcher.match([[q]], variants="features")
    assert o.matches == []


def _jpeg(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()

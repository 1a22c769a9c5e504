"""Derived-code matching end to end: a corpus photo banked in a bank with a crop ladder,
then a framed, letter-boxed, cropped and captioned copy matched with ``vigil match
--variants``, on SQLite and PostgreSQL. Each lead names the variant that matched; with
``--variants off`` none of these copies match; a flat picture never matches through a
variant; and the pairing policy is checked case by case."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageOps
from sqlalchemy import Engine
from typer.testing import CliRunner

from vigil.banks.derived import DERIVED_WINDOWS, derived_id, split_derived_id
from vigil.cli import app
from vigil.matching.variants import pair_allowed, query_codes, variant_option
from vigil.signals.crops import QUERY_WINDOWS

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "bsds500"


def _photo() -> Image.Image:
    paths = sorted(CORPUS.glob("*/*.jpg"))
    if not paths:
        pytest.skip("no shared corpus")
    return Image.open(paths[7]).convert("RGB")


def _border(im: Image.Image) -> Image.Image:
    return ImageOps.expand(im, border=round(0.1 * max(im.size)), fill=(30, 60, 200))


def _letterbox(im: Image.Image) -> Image.Image:
    w, h = im.size
    out = Image.new("RGB", (max(w, round(h * 16 / 9)), max(h, round(w * 9 / 16))))
    out.paste(im, ((out.width - w) // 2, (out.height - h) // 2))
    return out


def _crop(t: float, b: float, left: float, r: float) -> Callable[[Image.Image], Image.Image]:
    def f(im: Image.Image) -> Image.Image:
        w, h = im.size
        return im.crop((round(left * w), round(t * h), w - round(r * w), h - round(b * h)))
    return f


def _caption(im: Image.Image) -> Image.Image:
    out = im.copy()
    band = round(0.12 * im.height)
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, im.height - band, im.width, im.height), fill=(250, 250, 250))
    draw.text((10, im.height - band + 6), "seen this? 2026", fill=(0, 0, 0))
    return out


EDITS: dict[str, tuple[Callable[[Image.Image], Image.Image], str, str]] = {
    # edit: (how, option that finds it, what the variant must name)
    "border": (_border, "borders", "trimmed"),
    "letterbox": (_letterbox, "borders", "trimmed"),
    "crop 5% a side": (_crop(0.05, 0.05, 0.05, 0.05), "crops", "original/centre-"),
    "crop 5% one side": (_crop(0, 0, 0.05, 0), "crops", "original/"),
    "caption 12%": (_caption, "crops", "no-bottom-"),
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


def test_every_edit_matches_its_banked_original_and_names_the_variant(
        vigil: Callable[..., str], tmp_path: Path) -> None:
    photo = _photo()
    banked = tmp_path / "banked"
    banked.mkdir()
    photo.save(banked / "original.jpg", quality=92)
    vigil("bank", "create", "ladder", "--agency", "SG-SPF", "--crop-ladder")
    vigil("bank", "add", "ladder", str(banked), "--category", "us:1", "-q")
    queries = tmp_path / "queries"
    queries.mkdir()
    for k, (fn, _, _) in enumerate(EDITS.values()):
        fn(photo).save(queries / f"{k}.jpg", quality=90)
    names = list(EDITS)

    def leads(option: str) -> dict[str, list[dict[str, object]]]:
        out = vigil("match", str(queries), "--json", "-q", "--variants", option)
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return {names[int(Path(r["item"]).stem)]: r["matches"] for r in rows}

    off = leads("off")
    # plain PDQ finds none of the frames and crops (a caption band it sometimes survives)
    assert all(off[n] == [] for n in names if not n.startswith("caption")), off
    found = leads("all")
    for name, (_, option, variant) in EDITS.items():
        [m] = found[name]
        assert m["bank"] == "ladder" and m["signal_type"] == "pdq", name
        assert str(m["variant"]).startswith(variant), (name, m["variant"])
        assert 0 <= int(m["distance"]) <= 31  # type: ignore[call-overload]
        # and the option that should find it alone does
        [alone] = leads(option)[name]
        assert alone["variant"] == m["variant"]
    # borders only does not search the ladder: a plain crop is not found through it
    assert leads("borders")["crop 5% a side"] == []


def test_a_flat_picture_never_matches_through_a_variant(
        vigil: Callable[..., str], tmp_path: Path) -> None:
    flat = Image.new("RGB", (400, 300), (120, 120, 120))
    ImageDraw.Draw(flat).rectangle((0, 0, 399, 20), fill=(0, 0, 0))
    folder = tmp_path / "flat"
    folder.mkdir()
    flat.save(folder / "flat.png")
    vigil("bank", "create", "ladder", "--agency", "SG-SPF", "--crop-ladder")
    vigil("bank", "add", "ladder", str(folder), "-q")
    out = vigil("match", str(folder), "--json", "-q", "--variants", "all")
    [row] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    # the file itself matches exactly by its digests; nothing through a PDQ variant
    assert all(m["signal_type"] != "pdq" for m in row["matches"])


def test_pairs_allowed_per_option() -> None:
    assert not any(pair_allowed(q, b, "off") for q in ("original", "trimmed")
                   for b in DERIVED_WINDOWS)
    assert pair_allowed("original", "trimmed", "borders")
    assert not pair_allowed("original", "centre-0.05", "borders")
    assert pair_allowed("original", "centre-0.05", "crops")
    assert not pair_allowed("original", "trimmed", "crops")
    assert pair_allowed("trimmed", "centre-0.05", "all")
    for w in QUERY_WINDOWS:
        side = w.name.removeprefix("no-")
        assert side in DERIVED_WINDOWS  # every query window has its banked twin
        assert pair_allowed(w.name, side, "crops")
        assert not pair_allowed(w.name, side, "borders")
        assert not pair_allowed(w.name, "centre-0.05", "all")  # never window vs window


def test_query_codes_leave_out_flat_ones_and_other_options() -> None:
    codes = [("trimmed", "a" * 64, 80), ("no-bottom-0.1", "b" * 64, 80),
             ("no-top-0.1", "c" * 64, 40), ("centre-0.05", "d" * 64, 90)]
    assert query_codes(codes, "borders", 50) == [("trimmed", "a" * 64)]
    assert query_codes(codes, "crops", 50) == [("no-bottom-0.1", "b" * 64)]
    assert query_codes(codes, "all", 10) == [("trimmed", "a" * 64),
                                             ("no-bottom-0.1", "b" * 64)]
    assert query_codes(codes, "all", 85) == []
    assert query_codes(codes, "off", 0) == []


def test_derived_ids_round_trip() -> None:
    for eid in (1, 7, 2**40 + 3):
        for w in DERIVED_WINDOWS:
            assert split_derived_id(derived_id(eid, w)) == (eid, w)
    assert variant_option("crops") == "crops"
    with pytest.raises(ValueError, match="borders"):
        variant_option("sideways")


def test_scan_matches_edited_copies_with_variants(
        vigil: Callable[..., str], tmp_path: Path) -> None:
    """``vigil scan --variants all`` records derived codes and the leads they give."""
    photo = _photo()
    banked = tmp_path / "banked"
    banked.mkdir()
    photo.save(banked / "original.jpg", quality=92)
    vigil("bank", "create", "ladder", "--agency", "SG-SPF", "--crop-ladder")
    vigil("bank", "add", "ladder", str(banked), "-q")
    seized = tmp_path / "seized"
    seized.mkdir()
    _border(photo).save(seized / "framed.jpg", quality=90)
    _crop(0.05, 0.05, 0.05, 0.05)(photo).save(seized / "cropped.jpg", quality=90)
    for option, want in (("off", set()), ("all", {"framed.jpg", "cropped.jpg"})):
        out = tmp_path / f"case-{option}"
        vigil("scan", str(seized), "--out", str(out), "-j", "1", "-q", "--thumbnails", "none",
              "--variants", option)
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        matched = {Path(r["path"]).name: r for r in rows if r.get("matches")}
        assert set(matched) == want, option
        for r in matched.values():
            assert r["matches"][0]["variant"] != "original"


def test_vigil_hash_prints_the_derived_codes(vigil: Callable[..., str], tmp_path: Path) -> None:
    _border(_photo()).save(tmp_path / "framed.jpg", quality=90)
    out = vigil("hash", "--json", "--variants", "all", str(tmp_path / "framed.jpg"))
    [row] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert set(row["pdq_derived"]) == {"trimmed", *(w.name for w in QUERY_WINDOWS)}
    out = vigil("hash", "--json", str(tmp_path / "framed.jpg"))
    assert "pdq_derived" not in json.loads(out.splitlines()[0])

"""Reference mode must be bit-identical to Meta's C++ PDQ: other agencies' banks depend on it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vigil.signals import DIHEDRAL_NAMES, HashOptions, hash_file


def _hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _expected(shared: Path) -> list[dict[str, str]]:
    with open(shared / "fixtures/pdq/expected.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_reference_hashes_equal_the_cpp_reference(shared: Path) -> None:
    rows = _expected(shared)
    assert len(rows) == 12
    for row in rows:
        got = hash_file(shared / "fixtures/pdq" / row["path"], HashOptions(mode="reference"))
        assert got.ok, got.error
        assert got.pdq is not None
        assert got.pdq.hex == row["pdq_hex"], row["path"]
        assert got.pdq.quality == int(row["quality"]), row["path"]


def test_fast_path_stays_within_a_few_bits_of_the_reference(shared: Path) -> None:
    """The fixtures are at most 1600 px: not reduced, only decoded straight to luma (Y)."""
    drifts = []
    for row in _expected(shared):
        got = hash_file(shared / "fixtures/pdq" / row["path"])
        assert got.pdq is not None and got.image is not None and got.image.reduction == 1
        drifts.append(_hamming(got.pdq.hex, row["pdq_hex"]))
    assert max(drifts) <= 4 and sum(drifts) / len(drifts) <= 1, drifts


def test_small_non_jpeg_images_take_the_exact_route(shared: Path, tmp_path: Path) -> None:
    from PIL import Image

    for row in _expected(shared)[:4]:
        png = tmp_path / "x.png"
        Image.open(shared / "fixtures/pdq" / row["path"]).save(png)
        got = hash_file(png)
        assert got.pdq is not None and got.pdq.hex == row["pdq_hex"]


@pytest.mark.parametrize("mode", ["reference", "fast"])
def test_dihedral_variants_find_every_rotated_and_flipped_copy(shared: Path, mode: str) -> None:
    folder = shared / "fixtures/pdq/reg-test-input/dih"
    files = sorted(folder.iterdir())
    assert len(files) == 8
    original = next(f for f in files if "orig" in f.name)
    variants = hash_file(original, HashOptions(mode=mode, dihedral=True)).pdq_dihedral
    assert variants is not None and len(variants) == len(DIHEDRAL_NAMES)
    for f in files:
        plain = hash_file(f, HashOptions(mode=mode)).pdq
        assert plain is not None
        best = min(_hamming(plain.hex, v.hex) for v in variants)
        assert best <= 8, (f.name, best)


def test_every_pillow_mode_decodes_and_stays_close(shared: Path) -> None:
    folder = shared / "fixtures/pdq/misc-images/modes"
    ref = hash_file(folder / "original.jpg", HashOptions(mode="reference")).pdq
    assert ref is not None
    images = [f for f in sorted(folder.iterdir()) if f.suffix != ".md"]
    assert len(images) >= 13
    for f in images:
        for mode in ("reference", "fast"):
            got = hash_file(f, HashOptions(mode=mode))
            assert got.ok, got.error
            assert got.pdq is not None and got.image is not None
            assert _hamming(got.pdq.hex, ref.hex) <= 16, (f.name, mode)

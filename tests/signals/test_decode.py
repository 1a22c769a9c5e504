"""Safe decoding: each bad input becomes a typed error naming the file; good ones decode."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import encode
from vigil.demo.synthetic import synthetic_image
from vigil.signals import (
    CorruptImageError,
    EmptyFileError,
    HashOptions,
    ImageTooLargeError,
    UnreadableFileError,
    hash_file,
)
from vigil.signals.decode import reduction_factor, sniff_image_format


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge size: a classic decompression bomb shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + struct.pack(">I", len(idat)) + b"IDAT"
            + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat)) + b"\x00\x00\x00\x00IEND"
            + struct.pack(">I", zlib.crc32(b"IEND")))


def test_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_declaring(60_000, 60_000))
    r = hash_file(p)
    assert isinstance(r.error, ImageTooLargeError)
    assert "bomb.png" in str(r.error) and "pixels" in str(r.error)
    assert r.digests is not None  # exact signals survive


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    p = tmp_path / "ok.jpg"
    p.write_bytes(encode(synthetic_image(1)))
    assert hash_file(p).ok
    r = hash_file(p, HashOptions(max_pixels=1000))
    assert isinstance(r.error, ImageTooLargeError)


def test_truncated_jpeg_is_a_corrupt_image(tmp_path: Path) -> None:
    data = encode(synthetic_image(2, (640, 480)), quality=90)
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    r = hash_file(p)
    assert isinstance(r.error, CorruptImageError), r.error
    assert "cut.jpg" in str(r.error)
    assert r.pdq is None and r.digests is not None


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "TIFF", "BMP"])
def test_garbage_after_a_valid_magic_is_corrupt(tmp_path: Path, fmt: str) -> None:
    head = encode(synthetic_image(3), fmt)[:40]
    p = tmp_path / f"broken.{fmt.lower()}"
    p.write_bytes(head + bytes(range(256)) * 4)
    r = hash_file(p)
    assert isinstance(r.error, CorruptImageError), (fmt, r.error)


def test_non_images_get_exact_signals_only(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_bytes(b"not an image at all\n" * 100)
    r = hash_file(p)
    assert r.ok and r.pdq is None and r.image is None
    assert r.digests is not None and r.digests.size == 2000


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    r = hash_file(tmp_path / "empty.jpg")
    assert isinstance(r.error, EmptyFileError)
    assert r.digests is not None and r.digests.md5 == "d41d8cd98f00b204e9800998ecf8427e"
    r = hash_file(tmp_path / "gone.jpg")
    assert isinstance(r.error, UnreadableFileError) and "gone.jpg" in str(r.error)


def test_renamed_file_is_sniffed_by_content(tmp_path: Path) -> None:
    img = synthetic_image(4)
    (tmp_path / "a.jpg").write_bytes(encode(img, "JPEG"))
    (tmp_path / "holiday.doc").write_bytes(encode(img, "JPEG"))
    a, b = hash_file(tmp_path / "a.jpg"), hash_file(tmp_path / "holiday.doc")
    assert b.pdq is not None and a.pdq == b.pdq and b.image is not None
    assert b.image.format == "JPEG"


def test_animated_gif_hashes_the_first_frame(tmp_path: Path) -> None:
    frames = [synthetic_image(s).convert("P") for s in (5, 6, 7)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    still = tmp_path / "first.gif"
    frames[0].save(still)
    r, first = hash_file(p), hash_file(still)
    assert r.image is not None and r.image.animated
    assert r.pdq == first.pdq


def test_exif_orientation_is_recorded_not_applied(tmp_path: Path) -> None:
    """Reference tools hash stored pixels; dihedral variants cover the rotated view."""
    img = synthetic_image(8, (400, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    tagged, plain = tmp_path / "tagged.jpg", tmp_path / "plain.jpg"
    img.save(tagged, quality=95, exif=exif.tobytes())
    img.save(plain, quality=95)
    rt, rp = hash_file(tagged, HashOptions(dihedral=True)), hash_file(plain)
    assert rt.image is not None and rt.image.exif_orientation == 6
    assert rt.pdq == rp.pdq
    shown = tmp_path / "shown.jpg"
    img.transpose(Image.Transpose.ROTATE_270).save(shown, quality=95)
    shown_hash = hash_file(shown).pdq
    assert shown_hash is not None and rt.pdq_dihedral is not None
    best = min((int(shown_hash.hex, 16) ^ int(v.hex, 16)).bit_count() for v in rt.pdq_dihedral)
    assert best <= 10


def test_every_pillow_mode_of_a_generated_image(tmp_path: Path) -> None:
    base = synthetic_image(9, (300, 200))
    for mode, fmt in [("1", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("RGBA", "PNG"),
                      ("CMYK", "JPEG"), ("I", "TIFF"), ("F", "TIFF"), ("I;16", "PNG")]:
        p = tmp_path / f"m-{mode.replace(';', '_')}.{fmt.lower()}"
        base.convert(mode).save(p, fmt)
        r = hash_file(p)
        assert r.ok, (mode, r.error)
        assert r.pdq is not None and len(r.pdq.hex) == 64 and 0 <= r.pdq.quality <= 100


def test_sniffing_and_reduction_choice() -> None:
    assert sniff_image_format(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_image_format(b"hello") is None
    assert reduction_factor(4000, 3000) == 4
    assert reduction_factor(1999, 1000) == 1
    assert reduction_factor(2000, 1000) == 2
    assert reduction_factor(12000, 9000) == 8


def test_fast_path_reduces_large_images_and_stays_close(tmp_path: Path) -> None:
    """Equivalence of the fast path with the reference on large generated photos."""
    rng = np.random.default_rng(0)
    drifts = []
    for seed in range(4):
        img = synthetic_image(seed, (420, 300)).resize((4200, 3000), Image.Resampling.BICUBIC)
        noisy = np.asarray(img, dtype=np.int16) + rng.integers(-6, 7, (3000, 4200, 3))
        p = tmp_path / f"big{seed}.jpg"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(p, quality=90)
        fast, ref = hash_file(p), hash_file(p, HashOptions(mode="reference"))
        assert fast.image is not None and fast.image.reduction == 4
        assert fast.image.decoded_width == 1050
        assert ref.image is not None and ref.image.reduction == 1
        assert fast.pdq is not None and ref.pdq is not None
        drifts.append((int(fast.pdq.hex, 16) ^ int(ref.pdq.hex, 16)).bit_count())
    assert max(drifts) <= 16, drifts
    assert sum(drifts) / len(drifts) <= 6, drifts


def test_heic_photos_are_hashed(tmp_path: Path) -> None:
    """Phones save HEIC: it must hash like the same picture in any other format."""
    pytest.importorskip("pillow_heif")
    img = synthetic_image(11, (400, 300))
    heic, png = tmp_path / "IMG_0001.HEIC", tmp_path / "same.png"
    img.save(heic, quality=95)
    img.save(png)
    a, b = hash_file(heic), hash_file(png)
    assert a.ok and a.image is not None and a.image.format == "HEIF", a.error
    assert a.pdq is not None and b.pdq is not None
    assert (int(a.pdq.hex, 16) ^ int(b.pdq.hex, 16)).bit_count() <= 12

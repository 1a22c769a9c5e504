"""Hidden archives: a zip after a JPEG, or behind a self-extractor's MZ stub, is carved.

All files are generated here: a synthetic JPEG, a small zip, an MZ-like stub of zeros.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from tests.conftest import encode
from vigil.demo.synthetic import synthetic_image
from vigil.signals.evidence import (
    FLAG_EMBEDDED,
    SEP,
    iter_archive_contents,
    iter_items,
    read_item,
)


def _zip(comment: bytes = b"", members: int = 2) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(members):
            z.writestr(f"inner/{i}.png", encode(synthetic_image(40 + i, (64, 48)), "PNG"))
        z.comment = comment
    return buf.getvalue()


JPEG = encode(synthetic_image(1, (320, 240)))


@pytest.mark.parametrize("prefix", [JPEG, b"MZ\x90\x00" + bytes(6000)], ids=["jpeg", "exe"])
def test_a_zip_after_other_content_is_listed_and_read(tmp_path: Path, prefix: bytes) -> None:
    p = tmp_path / "carrier"
    p.write_bytes(prefix + _zip())
    items = list(iter_items([p]))
    assert [it.path for it in items] == [str(p), f"{p}{SEP}inner/0.png", f"{p}{SEP}inner/1.png"]
    assert items[0].flags == (FLAG_EMBEDDED,) and items[0].kind == "zip"
    assert not any(it.error for it in items)
    assert read_item(f"{p}{SEP}inner/1.png") == encode(synthetic_image(41, (64, 48)), "PNG")
    assert [it.path for it, _ in iter_archive_contents(str(p))] == [it.path for it in items[1:]]
    assert read_item(str(p)) == prefix + _zip()  # the carrier itself is untouched


def test_a_long_zip_comment_does_not_hide_it(tmp_path: Path) -> None:
    p = tmp_path / "photo.jpg"
    p.write_bytes(JPEG + _zip(comment=b"c" * 60000))
    assert next(it.flags for it in iter_items([p])) == (FLAG_EMBEDDED,)


def test_lookalikes_are_not_archives(tmp_path: Path) -> None:
    """A stray end-of-directory signature (no directory where it points), an empty zip
    appended, or a plain JPEG: listed as one ordinary file, no error, no flag."""
    fake = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 46, 10, 0)
    cases = {"stray.jpg": JPEG + fake, "empty.jpg": JPEG + _zip(members=0),
             "plain.jpg": JPEG, "tiny.bin": b"xPK\x05\x06"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    items = list(iter_items([tmp_path]))
    assert sorted(Path(it.path).name for it in items) == sorted(cases)
    assert all(it.kind is None and not it.flags and it.error is None for it in items)


def test_inside_an_archive_a_carrier_is_a_member_only(tmp_path: Path) -> None:
    """Hidden zips are carved from files on disk; inside an archive that would mean
    decompressing every member while listing (documented)."""
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("photo.jpg", JPEG + _zip())
    items = list(iter_items([outer]))
    assert [it.path for it in items] == [str(outer), f"{outer}{SEP}photo.jpg"]
    assert items[1].flags == () and items[1].kind is None

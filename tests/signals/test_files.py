"""Digests, hashing files on disk by virtual path, and odd file names."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest

from vigil.signals import digests_of_bytes, digests_of_stream, hash_file, hash_item
from vigil.signals.evidence import iter_items


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3_000_017])
def test_digests_match_hashlib_streamed_or_not(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    for d in (digests_of_bytes(data), digests_of_stream(io.BytesIO(data))):
        assert d.md5 == hashlib.md5(data).hexdigest()
        assert d.sha1 == hashlib.sha1(data).hexdigest()
        assert d.sha256 == hashlib.sha256(data).hexdigest()
        assert d.size == size


def test_large_files_are_streamed(tmp_path: Path) -> None:
    from vigil.signals import HashOptions

    p = tmp_path / "big.bin"
    data = os.urandom(300_000)
    p.write_bytes(data)
    r = hash_file(p, HashOptions(max_in_memory=100_000))
    assert r.digests is not None and r.digests.sha256 == hashlib.sha256(data).hexdigest()


def test_walk_is_sorted_recursive_and_survives_links(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "deep").mkdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b" / "deep" / "c.txt").write_text("c")
    (tmp_path / "b" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    got = list(iter_items([tmp_path]))
    names = [Path(it.path).name for it in got if it.error is None]
    assert names == ["a.txt", "c.txt"]
    errors = [(Path(it.path).name, it.error.code) for it in got if it.error is not None]
    assert errors == [("dangling", "broken-link")]


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9-\xff.jpg"
    with open(raw, "wb") as fh:
        fh.write(b"plain bytes")
    [item] = list(iter_items([tmp_path]))
    assert item.error is None
    r = hash_item(item.path)
    assert r.ok and r.digests is not None
    assert "\\xe9" in r.path and "\\xff" in r.path
    r.path.encode("utf-8")  # printable

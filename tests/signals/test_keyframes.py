"""A video's keyframes: the bounded keeper against the plain choice from the number of
sampled frames, and keyframes made from the frames vPDQ decodes (the same on its fast
and plain paths, small greyscale JPEGs, no change to the hashes)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from vigil.signals import hash_file
from vigil.signals.keyframes import KEYFRAMES, KeyframeKeeper, choose, spread
from vigil.signals.options import HashOptions
from vigil.signals.thumbnail import MAX_SIDE
from vigil.signals.vpdq import hash_video_info


def test_spread_takes_the_middle_of_equal_parts() -> None:
    assert spread(3, 6) == [0, 1, 2]
    assert spread(12, 6) == [1, 3, 5, 7, 9, 11]
    assert spread(12, 4) == [1, 4, 7, 10]
    assert spread(100, 1) == [50]
    assert spread(0, 6) == []


@pytest.mark.parametrize("count", [1, 2, 4, 6, 7])
def test_the_keeper_ends_with_the_plain_choice_and_holds_little(count: int) -> None:
    for n in [*range(200), 257, 1000, 7200]:
        keeper = KeyframeKeeper(count)
        made: list[int] = []

        def make(i: int, made: list[int] = made) -> bytes:
            made.append(i)
            return f"jpeg{i}".encode()

        for i in range(n):
            keeper.offer(i, i * 1.0, lambda i=i: make(i))
            assert len(keeper._kept) <= 2 * count
        picked = choose(n, count)
        assert keeper.chosen() == picked, n
        assert len(picked) == min(n, count)
        assert picked == sorted(set(picked))
        kept = keeper.keyframes()
        assert [k.seconds for k in kept] == [float(i) for i in picked]
        assert [k.jpeg for k in kept] == [f"jpeg{i}".encode() for i in picked]
        # pictures are made only for frames on the stride: a few per doubling, not n
        assert len(made) <= 2 * count + (count + 1) * max(0, n.bit_length())


def test_a_frame_without_a_picture_is_left_out() -> None:
    keeper = KeyframeKeeper(3)
    for i in range(3):
        keeper.offer(i, float(i), lambda i=i: None if i == 1 else b"x")
    assert [k.seconds for k in keeper.keyframes()] == [0.0, 2.0]
    with pytest.raises(ValueError):
        KeyframeKeeper(0)


def _grey_jpeg(data: bytes) -> tuple[int, int]:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG" and im.mode == "L"
    return im.size


VIDEOS = ("chair-22-sd-grey-bar.mp4", "doorknob-hd-no-bar.mp4", "test-padded-dimensions.mp4")


@pytest.mark.parametrize("name", VIDEOS)
def test_keyframes_come_from_the_hashed_frames_on_both_paths(shared: Path, name: str) -> None:
    path = shared / "fixtures" / "video" / "sample-videos" / name
    plain = hash_video_info(path, fast=False)
    fast = hash_video_info(path, keyframes=KEYFRAMES)
    slow = hash_video_info(path, keyframes=KEYFRAMES, fast=False)
    assert fast.frames == slow.frames == plain.frames  # keeping pictures changes no hash
    assert plain.keyframes == ()
    picked = choose(len(plain.frames), KEYFRAMES)
    for got in (fast, slow):
        assert [k.seconds for k in got.keyframes] == [plain.frames[i].seconds for i in picked]
        for k in got.keyframes:
            assert max(_grey_jpeg(k.jpeg)) <= MAX_SIDE
    assert [k.jpeg for k in fast.keyframes] == [k.jpeg for k in slow.keyframes]
    if len(plain.frames) >= KEYFRAMES:
        assert len(fast.keyframes) == KEYFRAMES
        assert len({k.jpeg for k in fast.keyframes}) > 1  # different moments


def test_the_pipeline_keeps_keyframes_only_with_thumbnails(shared: Path) -> None:
    path = shared / "fixtures" / "video" / "sample-videos" / "chair-19-sd-bar.mp4"
    with_thumbs = hash_file(path, HashOptions(thumbnails=True))
    assert len(with_thumbs.keyframes) >= 2
    assert with_thumbs.thumbnail in [k.jpeg for k in with_thumbs.keyframes]
    without = hash_file(path, HashOptions(thumbnails=False))
    assert without.keyframes == () and without.thumbnail is None
    assert without.vpdq == with_thumbs.vpdq

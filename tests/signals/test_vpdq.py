"""vPDQ hashing: compatibility with Meta's reference hashes, and odd inputs.

Compatibility figures (measured 2026-11-30; PyAV 18.1 / FFmpeg 8.1 here):

* Meta's vpdq 0.2.5 built on this machine (FFmpeg 5.1) and this module agree bit for bit
  on 5,871 of the 5,872 sample frames (one frame 2 bits apart), so the hashing is
  reference-equivalent.
* The shipped reference files were made by vpdq on another FFmpeg build; against them
  *both* vpdq-here and we are identical on 41-100% of frames per video, ~1 bit apart on
  average and at most 6 bits — except ``doorknob-hd-no-bar`` (low texture, quality ~74),
  where the YUV->RGB rounding moves ~21 bits on average (max 76) for vpdq-here and for us
  alike. Thresholds below are set from these measurements.
* Match decisions between all 196 ordered pairs of sample videos are the same from our
  hashes and from the reference hashes at every frame (percentages within 1.71 points;
  ``-m slow``) and at one frame per second, Meta's default (at most two frames apart:
  one frame of a 23-frame video is 4.3 points). Sampling every 3rd frame (the fast
  default run) shows one pair on the edge: chair-22-with-small-logo vs chair-19 scores
  79.6% from our (and vpdq-here's) hashes and 80.7% from the reference's, so that
  decision flips at 80%; the test tolerates flips only within 1 point of a threshold.
"""

from __future__ import annotations

import io
import math
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vigil.index.video import brute_force_score
from vigil.signals.errors import EmptyFileError, SignalError
from vigil.signals.vpdq import (
    CorruptVideoError,
    EmptyVideoError,
    NoVideoStreamError,
    VideoTimeoutError,
    VideoTooLargeError,
    VideoTooSmallError,
    VpdqFormatError,
    VpdqFrame,
    hash_video,
    hash_video_info,
    read_vpdq,
    write_vpdq,
)

# --------------------------------------------------------------------------- reference

#: per video: (min share of identical frames, max mean distance, max distance) measured
#: against the shipped reference files, with a little slack
_LOW_TEXTURE = {"doorknob-hd-no-bar"}


def _dist(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _sampled(frames: list[VpdqFrame], mod: int) -> list[VpdqFrame]:
    return [f for f in frames if f.frame % mod == 0]


_CACHE: dict[int, dict[str, tuple[list[VpdqFrame], list[VpdqFrame]]]] = {}


def _hashed(shared: Path, mod: int) -> dict[str, tuple[list[VpdqFrame], list[VpdqFrame]]]:
    """name -> (our hashes of every ``mod``-th frame, the reference file's same frames).

    The reference files hash every frame; ``interval = mod / 30`` samples every ``mod``-th
    frame of these 30 fps videos, which keeps the default run fast (every frame is the
    ``slow`` test).
    """
    if mod not in _CACHE:
        root = shared / "fixtures" / "video"
        if not (root / "sample-videos").is_dir():
            pytest.skip("video fixtures are not present")
        out = {}
        for video in sorted((root / "sample-videos").glob("*.mp4")):
            ref = read_vpdq(root / "sample-hashes" / f"{video.stem}.txt")
            ours = hash_video(video, interval=mod / 30 + 1e-9)
            out[video.stem] = (ours, _sampled(ref, mod))
        assert len(out) == 14
        _CACHE[mod] = out
    return _CACHE[mod]


@pytest.fixture(scope="module")
def samples(shared: Path) -> dict[str, tuple[list[VpdqFrame], list[VpdqFrame]]]:
    return _hashed(shared, 3)


def _every_frame(request: pytest.FixtureRequest, shared: Path) -> dict:
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("every-frame comparison: run with -m slow (~25 s)")
    return _hashed(shared, 1)


def test_frame_hashes_match_the_reference(samples: dict) -> None:
    _check_frames(samples)


@pytest.mark.slow
def test_every_frame_hash_matches_the_reference(
    request: pytest.FixtureRequest, shared: Path
) -> None:
    _check_frames(_every_frame(request, shared))


def _check_frames(samples: dict) -> None:
    rows = []
    for name, (ours, ref) in samples.items():
        assert [f.frame for f in ours] == [f.frame for f in ref], name
        assert all(
            math.isclose(a.seconds, b.seconds, abs_tol=6e-4) for a, b in zip(ours, ref, strict=True)
        )
        d = np.array([_dist(a.pdq, b.pdq) for a, b in zip(ours, ref, strict=True)])
        q = np.array([abs(a.quality - b.quality) for a, b in zip(ours, ref, strict=True)])
        same, within4 = float(np.mean(d == 0)), float(np.mean(d <= 4))
        rows.append((name, len(d), same, within4, float(d.mean()), int(d.max()), int(q.max())))
        if name in _LOW_TEXTURE:
            assert d.mean() <= 25 and q.max() <= 1, rows[-1]
        else:
            assert same >= 0.35 and within4 >= 0.98 and d.mean() <= 1.6, rows[-1]
            assert d.max() <= 8 and q.max() <= 1, rows[-1]
    print("\nname frames identical within4 mean max quality-diff")
    for r in rows:
        print(f"{r[0]:34s} {r[1]:4d} {r[2]:6.1%} {r[3]:6.1%} {r[4]:5.2f} {r[5]:3d} {r[6]}")
    total = sum(r[1] for r in rows)
    assert sum(r[1] * r[2] for r in rows) / total >= 0.45
    assert sum(r[1] * r[4] for r in rows) / total <= 3.0  # doorknob included


def test_every_match_decision_equals_the_reference_at_one_fps(samples: dict) -> None:
    """Meta's default sampling (every 30th frame here: every 10th of every 3rd)."""
    _check_decisions(samples, 10, strict=True)


def test_match_decisions_on_every_third_frame_differ_only_on_the_edge(samples: dict) -> None:
    """Denser sampling: one pair sits 0.4 points under 80% from our (and vpdq-here's)
    hashes and 0.7 over it from the reference's; tolerated only that close to a threshold."""
    _check_decisions(samples, 1, strict=False)


@pytest.mark.slow
def test_every_match_decision_on_every_frame(request: pytest.FixtureRequest, shared: Path) -> None:
    _check_decisions(_every_frame(request, shared), 1, strict=True)


def _check_decisions(samples: dict, mod: int, *, strict: bool) -> None:
    names = sorted(samples)
    worst = 0.0
    worst_frames = 0
    flips: list[tuple] = []
    for qn in names:
        for cn in names:
            ours = brute_force_score(_sampled(samples[qn][0], mod), _sampled(samples[cn][0], mod))
            ref = brute_force_score(_sampled(samples[qn][1], mod), _sampled(samples[cn][1], mod))
            for qmin, cmin in ((80.0, 0.0), (80.0, 80.0), (50.0, 50.0)):
                if ours.is_match(qmin, cmin) == ref.is_match(qmin, cmin):
                    continue
                # tolerated only when not strict and both scores are within 1 point of a
                # threshold
                edge = min(abs(s.compared_pct - cmin) for s in (ours, ref))
                edge = min(edge, *(abs(s.query_pct - qmin) for s in (ours, ref)))
                assert not strict and edge <= 1.0, (qn, cn, qmin, cmin, ours, ref)
                flips.append((qn, cn, qmin, cmin, ours, ref))
            worst = max(worst, abs(ours.query_pct - ref.query_pct))
            worst = max(worst, abs(ours.compared_pct - ref.compared_pct))
            worst_frames = max(
                worst_frames,
                abs(ours.query_matched - ref.query_matched),
                abs(ours.compared_matched - ref.compared_matched),
            )
    print(
        f"\n1/{mod} frames: worst percentage gap {worst:.2f}, worst frame-count gap {worst_frames}"
    )
    for f in flips:
        print("  edge flip:", f)
    assert len(flips) <= 3
    if mod == 1:
        assert worst <= 2.0
    else:
        assert worst_frames <= 2


def test_one_per_second_samples_every_30th_frame(samples: dict, shared: Path) -> None:
    """30 fps samples: ``frame_mod = int(1.0 * 30)``, and the frames equal the full run's."""
    video = shared / "fixtures/video/sample-videos/chair-19-sd-bar.mp4"
    got = hash_video_info(video)
    assert got.info is not None and got.info.frame_mod == 30 and got.info.frames == 564
    assert got.frames == _sampled(samples["chair-19-sd-bar"][0], 30)  # every 10th of every 3rd
    plain = hash_video(video, fast=False)
    assert plain == got.frames


def test_padded_dimensions_and_bytes_input(shared: Path) -> None:
    video = shared / "fixtures/video/sample-videos/test-padded-dimensions.mp4"
    info = hash_video_info(video.read_bytes(), name="padded.mp4")
    assert info.info is not None and (info.info.width, info.info.height) == (1080, 1080)
    assert info.frames == hash_video(video)


# --------------------------------------------------------------------------- generated


def _pattern(i: int, w: int, h: int) -> np.ndarray:
    """A benign moving pattern: gradients, a drifting disc and mild noise (textured enough
    for PDQ quality >= 50)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w * (0.3 + 0.4 * math.sin(i / 9)), h * (0.5 + 0.3 * math.cos(i / 7))
    disc = ((x - cx) ** 2 + (y - cy) ** 2 < (min(w, h) / 4) ** 2) * 90.0
    base = 80 + 60 * np.sin(x / (7 + i % 5)) + 40 * np.cos(y / 11 + i / 3) + disc
    rng = np.random.default_rng(i)
    rgb = np.stack([base, base * 0.8 + 20, 255 - base], axis=-1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _encode(
    path: Path,
    n: int = 40,
    w: int = 96,
    h: int = 64,
    *,
    codec: str = "libx264",
    fmt: str | None = None,
    pix_fmt: str = "yuv420p",
    rate: int = 10,
    pts: list[int] | None = None,
    rotation: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        # one encoder thread: x264's frame threads make its output depend on scheduling,
        # and tests compare two encodes of the same frames
        # and no macroblock tree either: with it, x264 gave a different stream now and then
        # for the same frames even on one thread (18 distinct encodes in 40, 96x64 frames)
        own = {"x264-params": "threads=1:no-mbtree=1"} if codec == "libx264" else {}
        stream = out.add_stream(codec, rate=rate,
                                options={"threads": "1", **own, **(options or {})})
        # PyAV opens the codec with its own thread count (0: one per core, slice threads),
        # over the option above: the second encode of the same frames then differed now
        # and then under load (CI, session 5)
        stream.codec_context.thread_count = 1
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if pts is not None:
            stream.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_pattern(i, w, h), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


def test_fast_path_equals_plain_decode_with_b_frames(gen: Path) -> None:
    """x264 defaults (3 B-frames, B-pyramid): non-reference B-frames are skipped, yet the
    sampled frames, numbers and hashes equal decoding everything."""
    for name, fmt in (("b.mp4", None), ("b.ts", "mpegts"), ("b.mkv", "matroska")):
        path = _encode(gen / name, n=60, fmt=fmt, options={"bf": "3", "g": "25"})
        for interval in (0.0, 0.3, 1.0):
            fast = hash_video_info(path, interval=interval)
            plain = hash_video_info(path, interval=interval, fast=False)
            assert fast.frames == plain.frames, (name, interval)
            assert fast.info is not None and plain.info is not None
            assert fast.info.frames == plain.info.frames == 60
        assert fast.info.fast_path, name
        assert [f.frame for f in fast.frames] == [0, 10, 20, 30, 40, 50]


def test_rotated_metadata_hashes_the_stored_frames(gen: Path) -> None:
    plain = _encode(gen / "plain.mp4")
    rotated = _encode(gen / "rot.mp4", rotation=90)
    got = hash_video_info(rotated)
    assert got.info is not None and got.info.rotation in (90, 270)
    assert got.frames == hash_video(plain)


def test_variable_frame_rate(gen: Path) -> None:
    gaps = [33, 33, 100, 17, 250, 40] * 7
    pts = [sum(gaps[:i]) for i in range(40)]
    path = _encode(gen / "vfr.mkv", fmt="matroska", pts=pts, rate=30)
    got = hash_video_info(path)
    assert got.info is not None and got.info.frames == 40
    mod = got.info.frame_mod
    assert [f.frame for f in got.frames] == list(range(0, 40, mod))
    assert got.frames == hash_video(path, fast=False)


def test_odd_dimensions_and_other_codecs(gen: Path) -> None:
    odd = _encode(gen / "odd.mp4", w=101, h=67, pix_fmt="yuv444p")
    got = hash_video_info(odd, interval=0)
    assert got.info is not None and (got.info.width, got.info.height) == (101, 67)
    assert len(got.frames) == 40 and all(f.quality > 0 for f in got.frames)
    mpeg4 = _encode(gen / "m4.avi", codec="mpeg4", fmt="avi")
    m = hash_video_info(mpeg4)
    assert m.info is not None and not m.info.fast_path and len(m.frames) == 4


def test_audio_only_is_a_typed_error(gen: Path) -> None:
    path = gen / "audio.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        t = np.arange(8000) / 8000
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(NoVideoStreamError) as err:
        hash_video(path)
    assert err.value.code == "no-video-stream" and str(path) in str(err.value)


def test_zero_length_and_zero_frame_files(gen: Path) -> None:
    empty = gen / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyFileError):
        hash_video(empty)
    with pytest.raises(EmptyFileError):
        hash_video(b"")
    frameless = gen / "frameless.mkv"  # a video stream in the header, packets only for audio
    with av.open(str(frameless), "w", format="matroska") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), "s16", "mono")
        silence.sample_rate = 8000
        for packet in [*audio.encode(silence), *audio.encode()]:
            out.mux(packet)
    with pytest.raises(EmptyVideoError) as err:
        hash_video(frameless)
    assert isinstance(err.value, SignalError) and str(frameless) in str(err.value)


def test_corrupt_and_truncated_streams_never_hang(gen: Path) -> None:
    rng = np.random.default_rng(7)
    garbage = gen / "garbage.mp4"
    garbage.write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptVideoError) as err:
        hash_video(garbage)
    assert err.value.code == "corrupt-video"

    whole = _encode(gen / "whole.mkv", n=80, fmt="matroska").read_bytes()
    cut = gen / "cut.mkv"
    cut.write_bytes(whole[: len(whole) // 2])  # header intact, stream cut mid-way
    t = time.monotonic()
    partial = hash_video(cut, interval=0)
    assert 0 < len(partial) < 80 and time.monotonic() - t < 10

    mangled = bytearray(whole)
    mangled[len(whole) // 3 : len(whole) // 3 + 3000] = rng.integers(
        0, 256, 3000, dtype=np.uint8
    ).tobytes()
    try:
        got = hash_video(bytes(mangled), interval=0)
        assert len(got) > 0
    except CorruptVideoError:
        pass

    mp4 = _encode(gen / "whole.mp4", n=30).read_bytes()  # moov written at the end
    with pytest.raises(CorruptVideoError):
        hash_video(mp4[: len(mp4) // 2])


def test_time_limit_is_enforced_inside_the_loop(gen: Path) -> None:
    path = _encode(gen / "long.mp4", n=60)
    with pytest.raises(VideoTimeoutError) as err:
        hash_video(path, time_limit=1e-6)
    assert err.value.code == "video-timeout"


def test_oversized_frames_are_refused_before_decoding(
    gen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vigil.signals.vpdq as vpdq_module

    path = _encode(gen / "big.mp4", n=3)
    monkeypatch.setattr(vpdq_module, "MAX_PIXELS", 96 * 64 - 1)
    with pytest.raises(VideoTooLargeError) as err:
        hash_video(path)
    assert err.value.code == "video-too-large"


def test_tiny_frames_and_bad_arguments(gen: Path) -> None:
    tiny = _encode(gen / "tiny.mp4", w=4, h=4, pix_fmt="yuv444p", n=3)
    with pytest.raises(VideoTooSmallError):
        hash_video(tiny)
    with pytest.raises(ValueError):
        hash_video(tiny, interval=-1)
    with pytest.raises(SignalError) as err:
        hash_video(gen / "missing.mp4")
    assert err.value.code == "unreadable"


# --------------------------------------------------------------------------- text format


def test_text_round_trip_and_variants(tmp_path: Path) -> None:
    frames = [VpdqFrame(0, 100, "ab" * 32, 0.0), VpdqFrame(30, 49, "0f" * 32, 1.0)]
    text = write_vpdq(frames)
    assert text.splitlines()[1] == f"30,49,{'0f' * 32},1.000"
    assert read_vpdq(text) == frames
    path = tmp_path / "v.txt"
    path.write_text("# comment\n\n" + text)
    assert read_vpdq(path) == read_vpdq(str(path)) == read_vpdq(io.StringIO(text)) == frames
    compact = read_vpdq(f"{'AB' * 32},100,0.000\n{'0f' * 32},49,1.000\n")
    assert [(f.frame, f.pdq, f.quality) for f in compact] == [
        (0, "ab" * 32, 100),
        (1, "0f" * 32, 49),
    ]
    old = read_vpdq(f"0,100,{'ab' * 32}\n")
    assert old[0].frame == 0 and math.isnan(old[0].seconds)


@pytest.mark.parametrize(
    "line",
    [
        "0,100,zz,0.0",
        f"0,101,{'ab' * 32},0.0",
        f"x,100,{'ab' * 32},0.0",
        "1,2",
        f"-1,5,{'a' * 64},0",
    ],
)
def test_bad_lines_name_the_line(line: str) -> None:
    with pytest.raises(VpdqFormatError, match="line 2"):
        read_vpdq(f"0,100,{'ab' * 32},0.000\n{line}\n")

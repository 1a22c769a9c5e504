"""Turn one file into all its signals: read once, hash exactly, PDQ or vPDQ if it is media.

This is the unit of work of ``vigil hash`` and (later) of every scan worker. It never
raises for a bad file: the failure is recorded in ``FileSignals.error`` with whatever
signals could still be computed, because one broken file must not stop a scan of a
million.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import UnidentifiedImageError

from vigil.signals import decode
from vigil.signals.digests import Digests, digests_of_bytes, digests_of_stream
from vigil.signals.errors import EmptyFileError, SignalError, UnreadableFileError
from vigil.signals.pdq import DIHEDRAL_NAMES, Mode, PdqHash, pdq_of_image
from vigil.signals.sniff import sniff_kind
from vigil.signals.vpdq import NoVideoStreamError, VpdqFrame, hash_video, vpdq_digest

#: Files up to this size are read into memory once and both digested and decoded from
#: there; larger ones (videos, disk images) are streamed for digests only.
MAX_IN_MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HashOptions:
    """How to hash: reference or fast PDQ, dihedral variants, and safety limits."""

    mode: Mode = "fast"
    dihedral: bool = False
    max_pixels: int = decode.DEFAULT_MAX_PIXELS
    min_long_side: int = decode.FAST_MIN_LONG_SIDE
    max_in_memory: int = MAX_IN_MEMORY
    #: vPDQ of videos (frames sampled every ``video_interval`` s), within a time limit
    video: bool = True
    video_interval: float = 1.0
    video_time_limit: float = 120.0


@dataclass(slots=True)
class FileSignals:
    """Every signal of one file, how the image was decoded, and the error if any."""

    path: str
    digests: Digests | None = None
    pdq: PdqHash | None = None
    pdq_dihedral: tuple[PdqHash, ...] | None = None
    image: decode.ImageInfo | None = None
    #: vPDQ frames of a video (None for anything else)
    vpdq: list[VpdqFrame] | None = None
    error: SignalError | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; the shape of one ``vigil hash --json`` line (see README)."""
        out: dict[str, Any] = {"path": self.path}
        if self.digests is not None:
            out.update(size=self.digests.size, md5=self.digests.md5, sha1=self.digests.sha1,
                       sha256=self.digests.sha256)
        if self.pdq is not None:
            out["pdq"] = self.pdq.hex
            out["pdq_quality"] = self.pdq.quality
        if self.pdq_dihedral is not None:
            out["pdq_dihedral"] = {n: h.hex for n, h in zip(DIHEDRAL_NAMES, self.pdq_dihedral,
                                                            strict=True)}
        if self.vpdq is not None:
            out["vpdq"] = vpdq_digest(self.vpdq)
            out["vpdq_frames"] = [[f.frame, f.quality, f.pdq, f.seconds] for f in self.vpdq]
        if self.image is not None:
            i = self.image
            out["image"] = {
                "format": i.format, "width": i.width, "height": i.height, "mode": i.mode,
                "animated": i.animated, "exif_orientation": i.exif_orientation,
                "decoded_width": i.decoded_width, "decoded_height": i.decoded_height,
                "reduction": i.reduction,
            }
        if self.error is not None:
            out["error"] = {"code": self.error.code, "message": self.error.cause}
        return out


def display_path(path: str | os.PathLike[str] | bytes) -> str:
    """A printable path: names that are not valid UTF-8 are shown with escapes, not lost."""
    text = os.fsdecode(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def hash_file(path: str | os.PathLike[str], options: HashOptions | None = None) -> FileSignals:
    """All signals of one file. Never raises for a bad file; see ``FileSignals.error``."""
    options = options or HashOptions()
    name = display_path(path)
    result = FileSignals(path=name)
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as fh:
            if size > options.max_in_memory:
                result.digests = digests_of_stream(fh)
                return result
            data = fh.read()
    except OSError as exc:
        result.error = UnreadableFileError(name, exc.strerror or str(exc))
        return result
    return hash_bytes(data, name, options)


def hash_bytes(data: bytes, name: str, options: HashOptions | None = None) -> FileSignals:
    """All signals of content already in memory (an upload, an archive member).

    Never raises for bad content; ``name`` labels the result and its errors.
    """
    options = options or HashOptions()
    result = FileSignals(path=name, digests=digests_of_bytes(data))
    if not data:
        result.error = EmptyFileError(name, "file is empty (0 bytes)")
        return result
    if options.video and sniff_kind(data[:64])[0] == "video":
        try:
            result.vpdq = hash_video(data, interval=options.video_interval,
                                     time_limit=options.video_time_limit, name=name)
        except NoVideoStreamError:
            pass  # e.g. audio-only MP4: exact signals only, not an error
        except SignalError as exc:
            result.error = exc
        return result
    try:
        img = decode.open_image(data, name, options.max_pixels)
    except UnidentifiedImageError:
        return result  # not an image: exact signals only, and that is not an error
    except SignalError as exc:
        result.error = exc
        return result
    try:
        pdq = pdq_of_image(img, name, options.mode, options.dihedral, options.min_long_side)
    except SignalError as exc:
        result.error = exc
        return result
    finally:
        img.close()
    result.pdq, result.pdq_dihedral, result.image = pdq.hash, pdq.dihedral, pdq.info
    return result


def iter_files(
    paths: Iterable[str | os.PathLike[str]],
) -> Iterator[tuple[Path, SignalError | None]]:
    """Every regular file under the given files and folders, recursively, in sorted order.

    Symbolic links to folders are not followed (no loops); broken links and folders that
    cannot be listed are yielded as errors so the caller can report them and go on.
    """
    for p in paths:
        root = Path(p)
        if root.is_dir():
            yield from _walk(root)
        elif root.exists():
            yield root, None
        else:
            yield root, UnreadableFileError(display_path(root), "no such file or folder")


def _walk(folder: Path) -> Iterator[tuple[Path, SignalError | None]]:
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            yield current, UnreadableFileError(display_path(current), exc.strerror or str(exc))
            continue
        subfolders = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=True):
                    yield Path(entry.path), None
                elif entry.is_symlink() and not os.path.exists(entry.path):
                    yield Path(entry.path), UnreadableFileError(
                        display_path(entry.path), "broken symbolic link")
            except OSError as exc:
                yield Path(entry.path), UnreadableFileError(display_path(entry.path),
                                                            exc.strerror or str(exc))
        stack.extend(reversed(subfolders))

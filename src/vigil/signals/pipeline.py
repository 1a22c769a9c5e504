"""Turn one file into all its signals: the one hashing pipeline of every command.

``vigil hash``, ``match``, ``bank add``, ``scan`` and the API's uploads all come here:

* ``hash_item(virtual_path, options)`` — a file on disk or an archive member, by its
  virtual path (``vigil.signals.evidence``); what scan workers and the CLI's workers run;
* ``hash_bytes(data, name, options)`` — content already in memory (an upload);
* ``hash_file(path, options)`` — a file on disk by its OS path (a convenience).

The steps, the same for all: digests (MD5, SHA-1, SHA-256) of every byte; the kind from
the content (never the name); an image's PDQ (and its variants, derived codes and local
features when asked), true size, EXIF summary and thumbnail from one decode; a video's
vPDQ and a few keyframes from the frames vPDQ decodes (``vigil.signals.keyframes``: no
second decode). Memory does not follow the file's size: files over
``HashOptions.max_in_memory`` are digested in chunks and decoded from the file (images
bounded by ``max_pixels``, videos read by FFmpeg as it goes).

Nothing here raises for a bad file: the failure is ``FileSignals.error``, with whatever
could still be computed, because one broken file must not stop a scan of a million.
"""

from __future__ import annotations

import io
import os
import time
from typing import IO

from PIL import Image, UnidentifiedImageError

from vigil.signals import crops, decode, features, turns
from vigil.signals.digests import Digests, digests_of_bytes, digests_of_stream
from vigil.signals.errors import (
    CorruptImageError,
    EmptyFileError,
    SignalError,
    UnreadableFileError,
)
from vigil.signals.evidence import open_item, virtual_path
from vigil.signals.exif import device_key, exif_summary
from vigil.signals.keyframes import KEYFRAMES
from vigil.signals.options import BORDER_OPTIONS, CROP_OPTIONS, HashOptions
from vigil.signals.pdq import PdqHash, pdq_of_image
from vigil.signals.result import FileSignals
from vigil.signals.sniff import sniff_kind
from vigil.signals.thumbnail import thumbnail_of_pixels
from vigil.signals.vpdq import NoVideoStreamError, hash_video_info

#: How much of a file's start decides its kind.
SNIFF_BYTES = 512

_DEFAULT = HashOptions()

Content = bytes | IO[bytes]


def hash_item(path: str, options: HashOptions = _DEFAULT) -> FileSignals:
    """All signals of the file at a virtual path (on disk or inside archives).

    Never raises for a bad file. A FIFO, socket or device is never opened (error
    ``special-file``); a file on disk larger than ``options.max_in_memory`` is streamed.
    """
    t0 = time.perf_counter()
    try:
        fh, size = open_item(path, options.limits)
    except SignalError as exc:
        return _done(FileSignals(path=path, error=exc), t0)
    with fh:
        try:
            content, digests = _read(fh, size, options.max_in_memory)
        except OSError as exc:
            return _done(FileSignals(path=path, error=UnreadableFileError(
                path, exc.strerror or str(exc))), t0)
        return _signals(content, digests, path, options, t0)


def hash_bytes(data: bytes, name: str, options: HashOptions = _DEFAULT) -> FileSignals:
    """All signals of content already in memory (an upload); ``name`` labels the result
    and its errors. Never raises for bad content."""
    t0 = time.perf_counter()
    return _signals(data, digests_of_bytes(data), name, options, t0)


def hash_file(path: str | os.PathLike[str], options: HashOptions = _DEFAULT) -> FileSignals:
    """All signals of one file on disk given by its OS path (labelled by its virtual path,
    so a name that is not UTF-8 is shown with escapes, not lost)."""
    return hash_item(virtual_path(path), options)


def _read(fh: IO[bytes], size: int, max_in_memory: int) -> tuple[Content, Digests]:
    """The content to decode from (bytes, or the stream itself when large) and its digests.

    A small file is read once into memory; a large one is digested in chunks, and the
    decoder then reads from the file only what it needs.
    """
    if isinstance(fh, io.BytesIO):  # an archive member: already in memory
        data = fh.getvalue()
        return data, digests_of_bytes(data)
    if size <= max_in_memory:
        data = fh.read(max_in_memory + 1)
        if len(data) <= max_in_memory:
            return data, digests_of_bytes(data)
        fh.seek(0)  # it grew since it was opened: stream it after all
    return fh, digests_of_stream(fh)


def _head(content: Content) -> bytes:
    if isinstance(content, bytes):
        return content[:SNIFF_BYTES]
    content.seek(0)
    head = content.read(SNIFF_BYTES)
    content.seek(0)
    return head


def _done(result: FileSignals, t0: float) -> FileSignals:
    result.seconds = time.perf_counter() - t0
    return result


def _signals(content: Content, digests: Digests, name: str, options: HashOptions,
             t0: float) -> FileSignals:
    result = FileSignals(path=name, digests=digests)
    if digests.size == 0:
        result.error = EmptyFileError(name, "file is empty (0 bytes)")
        return _done(result, t0)
    try:
        kind, fmt = sniff_kind(_head(content))
        result.kind, result.format = kind, fmt
        if kind == "video":
            if options.video:
                _video(content, name, options, result)
        elif kind in ("image", "other"):
            _image(content, name, options, result)
    except SignalError as exc:
        result.error = exc
    except OSError as exc:  # the file failed while the decoder read it
        result.error = UnreadableFileError(name, exc.strerror or str(exc))
    return _done(result, t0)


def _video(content: Content, name: str, options: HashOptions, result: FileSignals) -> None:
    try:
        video = hash_video_info(content, interval=options.video_interval,
                                time_limit=options.video_time_limit, name=name,
                                keyframes=KEYFRAMES if options.thumbnails else 0)
    except NoVideoStreamError:
        result.kind = "other"  # e.g. audio-only MP4: exact signals only, not an error
        return
    result.vpdq = video.frames
    if video.info is not None:
        result.width, result.height = video.info.width, video.info.height
    if options.thumbnails and video.keyframes:
        result.keyframes = video.keyframes
        # the one picture a report shows: about a third of the way in (intros are often
        # black)
        result.thumbnail = video.keyframes[int(0.3 * len(video.keyframes))].jpeg


def _image(content: Content, name: str, options: HashOptions, result: FileSignals) -> None:
    """PDQ, true size, EXIF and thumbnail of an image, from one decode.

    Content our magic list does not know (``other``) is offered to Pillow, which knows
    more formats (TGA, PCX...); if it cannot parse it either, the file is simply not an
    image: exact signals only, not an error.
    """
    sniffed = result.kind == "image"
    try:
        img = decode.open_image(content, name, options.max_pixels)
    except UnidentifiedImageError:
        if sniffed:
            raise CorruptImageError(name, f"looks like {result.format} but cannot be "
                                          "parsed") from None
        return
    except CorruptImageError:
        if sniffed:
            raise
        return
    except SignalError:
        result.kind = "image"  # Pillow read the header: an image, refused (too large)
        raise
    with img:
        result.kind, result.format = "image", img.format or result.format
        result.width, result.height = img.size
        if options.exif:
            _exif(img, result)
        pdq = pdq_of_image(img, name, options.mode, options.dihedral, options.min_long_side)
    result.pdq, result.pdq_dihedral, result.image = pdq.hash, pdq.dihedral, pdq.info
    if (options.variants != "off" or options.crop_ladder) and pdq.pixels is not None:
        result.pdq_derived = _derived(pdq.pixels, options)
    if (options.variants == "features" or options.crop_ladder) and pdq.pixels is not None:
        result.pdq_features = features.packed_features(pdq.pixels, options.crop_ladder)
    if options.thumbnails and pdq.pixels is not None:
        result.thumbnail = thumbnail_of_pixels(pdq.grey if pdq.grey is not None else pdq.pixels,
                                               pdq.info.exif_orientation)


def _derived(pixels: crops.Pixels, options: HashOptions) -> tuple[tuple[str, PdqHash], ...]:
    """The derived codes the options ask for, from the pixels PDQ was computed on."""
    if options.crop_ladder:  # the bank side: the picture inside its frame, and its ladder
        found = crops.derived_hashes(pixels, trim=True, windows=crops.LADDER)
    else:
        found = crops.derived_hashes(
            pixels, trim=options.variants in BORDER_OPTIONS,
            windows=crops.QUERY_WINDOWS if options.variants in CROP_OPTIONS else (),
            of_trimmed=False)
        if options.variants == "features":  # the second stage's candidates for rotations
            found += turns.turned_hashes(pixels)
    return tuple((name, PdqHash(hx, q)) for name, hx, q in found)


def _exif(img: Image.Image, result: FileSignals) -> None:
    summary = exif_summary(img)
    if summary:
        result.exif = summary
        result.device = device_key(summary)

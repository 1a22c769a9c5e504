"""The per-file work of a scan: read once, sniff, hash, EXIF, thumbnail.

Runs in worker processes (or Ray tasks later), so it takes only picklable inputs (a
virtual path and options) and returns a plain dict row for ``ScanDB.record`` plus an
optional thumbnail. It never raises for a bad file: the error becomes the row's status.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import UnidentifiedImageError

from vigil.signals import decode
from vigil.signals.digests import digests_of_bytes
from vigil.signals.errors import EmptyFileError, SignalError, UnreadableFileError
from vigil.signals.exif import device_key, exif_summary
from vigil.signals.pdq import pdq_of_image
from vigil.signals.sniff import sniff_kind
from vigil.signals.vpdq import NoVideoStreamError, hash_video, write_vpdq
from vigil.triage.sources import Limits, iter_archive_contents, read_item


@dataclass(frozen=True, slots=True)
class WorkOptions:
    """What every worker needs to know; small and picklable."""

    mode: str = "fast"
    max_pixels: int = decode.DEFAULT_MAX_PIXELS
    thumbnails: bool = True
    dihedral: bool = False
    video: bool = True
    video_time_limit: float = 120.0
    limits: Limits = field(default_factory=Limits)


def process(path: str, options: WorkOptions) -> tuple[dict[str, Any], bytes | None]:
    """Everything the scan records about one file; (row, thumbnail JPEG or None)."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"path": path, "status": "done"}
    try:
        data = read_item(path, options.limits)
    except SignalError as exc:
        return _error(row, exc, t0), None
    except OSError as exc:
        return _error(row, UnreadableFileError(path, exc.strerror or str(exc)), t0), None
    return process_bytes(path, data, options, t0)


def process_archive(archive: str, wanted: frozenset[str], options: WorkOptions
                    ) -> list[tuple[dict[str, Any], bytes | None]]:
    """Every wanted member of one (outermost) archive, read in a single pass.

    Members of compressed tars can only be reached by decompressing everything before
    them, so reading them one by one would be quadratic; one worker takes the whole
    archive instead (at the cost of no parallelism inside one archive).
    """
    out = []
    for item, data in iter_archive_contents(archive, options.limits):
        if item.path not in wanted:
            continue
        t0 = time.perf_counter()
        if item.error is not None:
            out.append((_error({"path": item.path, "status": "done"}, item.error, t0), None))
        elif data is None:
            out.append((_error({"path": item.path, "status": "done"},
                               UnreadableFileError(item.path, "member could not be read"), t0),
                        None))
        else:
            out.append(process_bytes(item.path, data, options, t0))
    return out


def process_bytes(path: str, data: bytes, options: WorkOptions, t0: float | None = None
                  ) -> tuple[dict[str, Any], bytes | None]:
    """Everything the scan records about one file whose bytes are already read."""
    t0 = time.perf_counter() if t0 is None else t0
    row: dict[str, Any] = {"path": path, "status": "done"}
    thumb: bytes | None = None
    d = digests_of_bytes(data)
    row.update(size=d.size, md5=d.md5, sha1=d.sha1, sha256=d.sha256)
    if not data:
        return _error(row, EmptyFileError(path, "file is empty (0 bytes)"), t0), None
    kind, fmt = sniff_kind(data[:512])
    row.update(kind=kind, format=fmt)
    if kind == "video" and options.video:
        try:
            frames = hash_video(data, time_limit=options.video_time_limit, name=path)
        except NoVideoStreamError:
            row["kind"] = "other"  # e.g. audio-only MP4
        except SignalError as exc:
            return _error(row, exc, t0), None
        else:
            row["vpdq"] = write_vpdq(frames)
            if options.thumbnails:
                row["seconds"] = time.perf_counter() - t0
                return row, video_keyframe(data)
        row["seconds"] = time.perf_counter() - t0
        return row, None
    if kind != "image":
        # Pillow knows formats our magic list does not (e.g. TGA, PCX): give it a try.
        if kind == "other":
            try:
                img = decode.open_image(data, path, options.max_pixels)
            except (UnidentifiedImageError, SignalError):
                row["seconds"] = time.perf_counter() - t0
                return row, None
            img.close()
            row.update(kind="image", format=img.format)
        else:
            row["seconds"] = time.perf_counter() - t0
            return row, None
    try:
        img = decode.open_image(data, path, options.max_pixels)
        row.update(format=img.format or fmt, width=img.size[0], height=img.size[1])
        summary = exif_summary(img)
        if summary:
            row["exif"] = summary
            row["device"] = device_key(summary)
        result = pdq_of_image(img, path, options.mode, options.dihedral)  # type: ignore[arg-type]
        row.update(pdq=result.hash.hex, pdq_quality=result.hash.quality)
        if result.dihedral:
            row["pdq_dihedral"] = [h.hex for h in result.dihedral[1:]]
        if options.thumbnails:
            thumb = _thumbnail(data, path, options)
    except SignalError as exc:
        return _error(row, exc, t0), None
    row["seconds"] = time.perf_counter() - t0
    return row, thumb


def _thumbnail(data: bytes, path: str, options: WorkOptions) -> bytes | None:
    """A small clear thumbnail; the report blurs and greys it unless told otherwise."""
    try:
        from vigil.triage.thumbs import make_thumbnail
    except ImportError:  # pragma: no cover - report layer absent
        return None
    try:
        img = decode.open_image(data, path, options.max_pixels)
        if img.format == "JPEG":
            img.draft("RGB", (160, 160))  # libjpeg scales down in the DCT: far less to decode
        return make_thumbnail(img)
    except Exception:  # a thumbnail is a convenience; its failure is not the file's
        return None


def _error(row: dict[str, Any], exc: SignalError, t0: float) -> dict[str, Any]:
    row.update(status="error", error_code=exc.code, error_message=exc.cause,
               seconds=time.perf_counter() - t0)
    return row


def video_keyframe(data: bytes, at: float = 0.3, max_frames: int = 900,
                   time_limit: float = 5.0) -> bytes | None:
    """A thumbnail of one frame about ``at`` of the way in (intros are often black).

    Bounded in frames and seconds; a keyframe is a convenience, so any failure is None.
    """
    try:
        import av

        from vigil.triage.thumbs import make_thumbnail

        deadline = time.monotonic() + time_limit
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            duration = (float(container.duration) / 1e6) if container.duration else 0.0
            target = min(duration * at, 10.0)
            if target > 0 and stream.time_base:
                # Seek to the keyframe before the target: no decoding of everything before.
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
            chosen = None
            for n, frame in enumerate(container.decode(stream)):
                chosen = frame
                t = frame.time or 0.0
                if t >= target or n >= max_frames or time.monotonic() > deadline:
                    break
            return make_thumbnail(chosen.to_image()) if chosen is not None else None
    except Exception:
        return None

"""Hash an uploaded file held in memory: digests, PDQ and its variants. Never on disk."""

from __future__ import annotations

from starlette.requests import Request

from vigil.api.schemas.models import HashResponse, ImageOut
from vigil.api.schemas.problems import ApiError
from vigil.signals import FileSignals, HashOptions, hash_bytes
from vigil.signals.pdq import DIHEDRAL_NAMES
from vigil.signals.vpdq import vpdq_digest


async def read_upload(request: Request, limit: int) -> bytes:
    """The request body, streamed into memory up to ``limit`` bytes (never to a file)."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise ApiError(413, f"more than the limit of {limit:,} bytes", "body")
    if not buf:
        raise ApiError(422, "the uploaded file is empty", "body")
    return bytes(buf)


def signals_of_bytes(data: bytes, options: HashOptions) -> FileSignals:
    """The one hashing pipeline (``vigil.signals.pipeline``) on an upload: what ``vigil
    hash`` computes for a file; a bad image is an error in the result, not an exception."""
    return hash_bytes(data, "<upload>", options)


def hash_response(r: FileSignals) -> HashResponse:
    """The API's view of a hashed upload (``image.width/height``: the true size)."""
    d = r.digests
    assert d is not None
    out = HashResponse(size=d.size, md5=d.md5, sha1=d.sha1, sha256=d.sha256)
    if r.pdq is not None:
        out.pdq, out.pdq_quality = r.pdq.hex, r.pdq.quality
    if r.pdq_dihedral is not None:
        out.pdq_dihedral = {n: h.hex for n, h in zip(DIHEDRAL_NAMES, r.pdq_dihedral,
                                                      strict=True)}
    if r.image is not None:
        i = r.image
        out.image = ImageOut(format=i.format, width=i.width, height=i.height, mode=i.mode,
                             animated=i.animated, exif_orientation=i.exif_orientation)
    if r.vpdq is not None:
        out.vpdq, out.vpdq_frames = vpdq_digest(r.vpdq), len(r.vpdq)
    if r.error is not None:
        out.error = {"code": r.error.code, "message": r.error.cause}
    return out

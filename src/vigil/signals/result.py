"""What hashing one file gives: one result type for every command and the scan.

``FileSignals`` carries the signals (digests, PDQ and its variants, vPDQ), what the file
is (kind, format, true size), what a scan needs besides (EXIF summary, capture device,
thumbnail, a video's keyframes, seconds spent) and the error, if any. ``to_json`` is the
shape of one ``vigil hash --json`` line; the scan turns the same object into its database row
(``vigil.triage.rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vigil.signals.decode import ImageInfo
from vigil.signals.digests import Digests
from vigil.signals.errors import SignalError
from vigil.signals.keyframes import Keyframe
from vigil.signals.pdq import DIHEDRAL_NAMES, PdqHash
from vigil.signals.vpdq import VpdqFrame, vpdq_digest


@dataclass(slots=True)
class FileSignals:
    """Every signal of one file, what it is, how it was decoded, and the error if any.

    A failure keeps whatever could still be computed (a corrupt JPEG keeps its digests,
    format and size): one broken file must never cost the others, nor its own digests.
    """

    #: virtual path (``evidence.zip!/a.jpg`` for an archive member), or a label
    path: str
    digests: Digests | None = None
    #: image | video | archive | other, from the content (None when it was not read)
    kind: str | None = None
    #: e.g. JPEG, PNG, MP4/MOV, ZIP
    format: str | None = None
    #: true size in pixels (images as stored, videos' frames), whatever was decoded
    width: int | None = None
    height: int | None = None
    pdq: PdqHash | None = None
    #: all eight variants in ``DIHEDRAL_NAMES`` order (the first equals ``pdq``)
    pdq_dihedral: tuple[PdqHash, ...] | None = None
    image: ImageInfo | None = None
    #: derived codes (``vigil.signals.crops``): (window name, hash), e.g. ("trimmed", …),
    #: ("centre-0.05", …) on the bank side, ("no-bottom-0.2", …) on the query side
    pdq_derived: tuple[tuple[str, PdqHash], ...] | None = None
    #: local features for the second stage (``vigil.signals.features``), packed; sensitive
    #: like a hash and left out of ``to_json``
    pdq_features: str | None = None
    #: vPDQ frames of a video (None for anything else)
    vpdq: list[VpdqFrame] | None = None
    #: victim-identification EXIF fields (``exif`` option; see ``vigil.signals.exif``)
    exif: dict[str, Any] | None = None
    #: capture device key (make|model|serial) from the EXIF
    device: str | None = None
    #: small greyscale JPEG (``thumbnails`` option); a video's is one of its keyframes
    thumbnail: bytes | None = None
    #: a video's keyframes, spread over it (``thumbnails`` option; ``vigil.signals.keyframes``)
    keyframes: tuple[Keyframe, ...] = ()
    #: what the walker observed (``embedded-archive``, ``path-traversal``, ...)
    flags: tuple[str, ...] = ()
    error: SignalError | None = None
    #: time spent on the file, in seconds
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; the shape of one ``vigil hash --json`` line (see README)."""
        out: dict[str, Any] = {"path": self.path}
        if self.digests is not None:
            out.update(size=self.digests.size, md5=self.digests.md5, sha1=self.digests.sha1,
                       sha256=self.digests.sha256)
        if self.kind is not None:
            out["kind"] = self.kind
        if self.pdq is not None:
            out["pdq"] = self.pdq.hex
            out["pdq_quality"] = self.pdq.quality
        if self.pdq_dihedral is not None:
            out["pdq_dihedral"] = {n: h.hex for n, h in zip(DIHEDRAL_NAMES, self.pdq_dihedral,
                                                            strict=True)}
        if self.pdq_derived is not None:
            out["pdq_derived"] = {n: h.hex for n, h in self.pdq_derived}
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
        elif self.kind == "video" and self.width is not None:
            out["video"] = {"format": self.format, "width": self.width, "height": self.height}
        if self.exif is not None:
            out["exif"] = self.exif
            out["device"] = self.device
        if self.flags:
            out["flags"] = list(self.flags)
        if self.error is not None:
            out["error"] = {"code": self.error.code, "message": self.error.cause}
        return out

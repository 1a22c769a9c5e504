"""What kind of file is this? Sniffed from content, because seized files are often renamed."""

from __future__ import annotations

from vigil.signals import decode


def sniff_kind(head: bytes) -> tuple[str, str | None]:
    """(kind, format) from the first bytes: image, video, archive or other."""
    fmt = decode.sniff_image_format(head)
    if fmt:
        return "image", fmt
    if head[4:8] == b"ftyp":  # ISO media; HEIF images were recognised above
        return "video", "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "MKV/WEBM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", "AVI"
    if head.startswith(b"FLV"):
        return "video", "FLV"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "archive", "ZIP"
    if head.startswith(b"\x1f\x8b"):
        return "archive", "GZIP"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "archive", "TAR"
    return "other", None

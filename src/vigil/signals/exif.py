"""EXIF fields that help identify victims: which camera, when, where.

Why this module exists: for *unknown* material, the capture device and the capture
time and place are among the few leads a victim-identification specialist has. A scan
groups unknown images by device (``device_key``), and the report shows dates and
locations. Only a handful of fields matter; everything else in EXIF is ignored.

EXIF in seized material is often damaged or deliberately scrubbed, so every field is read
on its own and a bad field is dropped, never raised: ``exif_summary`` never raises.
Maker notes are not parsed (vendor formats, a classic source of parser bugs).

Summary keys (present only when found and valid):

* ``make``, ``model``, ``software``, ``lens``: strings, NULs and padding removed;
* ``serial``: BodySerialNumber (0xA431), else CameraSerialNumber (0xC62F);
* ``datetime_original``: ISO 8601 ``YYYY-MM-DDTHH:MM:SS`` from DateTimeOriginal (0x9003)
  with OffsetTimeOriginal (0x9011) appended when present (``+08:00``); else DateTime
  (0x0132) with OffsetTime (0x9010);
* ``gps``: ``{"lat": float, "lon": float}`` in decimal degrees (south and west negative),
  with ``"alt"`` in metres when present. ``(0, 0)`` is dropped: devices without a fix
  write it, and it would put every such photo at the same false spot.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from datetime import datetime
from typing import Any

from PIL import Image

# IFD pointers and tags (EXIF 2.32 / TIFF 6.0).
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_MAKE, _MODEL, _SOFTWARE, _DATETIME = 0x010F, 0x0110, 0x0131, 0x0132
_CAMERA_SERIAL = 0xC62F  # DNG / TIFF-EP CameraSerialNumber (IFD0)
_DATETIME_ORIGINAL, _OFFSET_TIME, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9010, 0x9011
_BODY_SERIAL, _LENS_MAKE, _LENS_MODEL = 0xA431, 0xA433, 0xA434
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6

#: Longer strings are cut: real values are short, garbage can be megabytes.
MAX_STRING = 200

_DATE_RE = re.compile(r"^(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"^[+-](\d{2}):(\d{2})$")


def exif_summary(img: Image.Image | bytes) -> dict[str, Any]:
    """The victim-identification fields of an image's EXIF (see module docstring).

    Accepts an opened image (nothing is decoded: EXIF comes from the header) or the file's
    bytes. Returns ``{}`` when there is no EXIF or nothing usable in it. Never raises.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(img, bytes | bytearray | memoryview):
                with Image.open(io.BytesIO(bytes(img))) as im:
                    return _summary(im.getexif())
            return _summary(img.getexif())
    except Exception:  # malformed EXIF can make Pillow raise almost anything
        return {}


def device_key(summary: dict[str, Any]) -> str | None:
    """``"make|model|serial"`` identifying a capture device, or None without a model.

    Whitespace is collapsed and ``|`` inside values replaced by ``/`` so the key splits
    back into three parts; a missing make or serial is an empty part
    (``"Apple|iPhone 12|"``). A make alone is too coarse to group by, hence None.
    """
    def norm(key: str) -> str:
        value = summary.get(key)
        if not isinstance(value, str):
            return ""
        return " ".join(value.split()).replace("|", "/")

    model = norm("model")
    if not model:
        return None
    return f"{norm('make')}|{model}|{norm('serial')}"


def _summary(exif: Image.Exif) -> dict[str, Any]:
    if not exif:
        return {}
    ifd0: dict[int, Any] = dict(exif)
    sub = _ifd(exif, _IFD_EXIF)
    gps_ifd = _ifd(exif, _IFD_GPS)
    out: dict[str, Any] = {}
    for key, value in (
        ("make", _text(ifd0.get(_MAKE))),
        ("model", _text(ifd0.get(_MODEL))),
        ("serial", _text(sub.get(_BODY_SERIAL)) or _text(ifd0.get(_CAMERA_SERIAL))),
        ("lens", _text(sub.get(_LENS_MODEL)) or _text(sub.get(_LENS_MAKE))),
        ("software", _text(ifd0.get(_SOFTWARE))),
        ("datetime_original",
         _datetime(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL))
         or _datetime(ifd0.get(_DATETIME), sub.get(_OFFSET_TIME))),
        ("gps", _gps(gps_ifd)),
    ):
        if value:
            out[key] = value
    return out


def _ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        found = exif.get_ifd(tag)
        return dict(found) if isinstance(found, dict) else {}
    except Exception:
        return {}


def _text(value: Any) -> str | None:
    """A clean string, or None: cut at the first NUL, control characters dropped."""
    try:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, tuple | list) and value and isinstance(value[0], str):
            value = value[0]
        if not isinstance(value, str):
            return None
        value = value.split("\x00", 1)[0]
        value = "".join(ch for ch in value if ch.isprintable() or ch == " ")
        value = " ".join(value.split())[:MAX_STRING].strip()
        return value or None
    except Exception:
        return None


def _datetime(value: Any, offset: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in m.groups())
        dt = datetime(year, month, day, hour, minute, second)  # validates month, day, ...
    except ValueError:
        return None
    iso = dt.isoformat()
    off = _text(offset)
    if off and (om := _OFFSET_RE.match(off)) and int(om[1]) <= 14 and int(om[2]) < 60:
        iso += off
    return iso


def _number(value: Any) -> float | None:
    try:
        if isinstance(value, tuple) and len(value) == 2:  # raw (numerator, denominator)
            value = value[0] / value[1]
        x = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def _dms(value: Any) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals (or fewer parts)."""
    if not isinstance(value, tuple | list):
        value = (value,)
    if not 1 <= len(value) <= 3:
        return None
    parts = [p for p in (_number(v) for v in value) if p is not None and p >= 0]
    if len(parts) != len(value):
        return None
    return sum((p / scale for p, scale in zip(parts, (1.0, 60.0, 3600.0), strict=False)), 0.0)


def _gps(ifd: dict[int, Any]) -> dict[str, float] | None:
    lat, lon = _dms(ifd.get(_GPS_LAT)), _dms(ifd.get(_GPS_LON))
    if lat is None or lon is None:
        return None
    lat_ref = (_text(ifd.get(_GPS_LAT_REF)) or "N").upper()[:1]
    lon_ref = (_text(ifd.get(_GPS_LON_REF)) or "E").upper()[:1]
    if lat_ref not in "NS" or lon_ref not in "EW":
        return None
    lat = -lat if lat_ref == "S" else lat
    lon = -lon if lon_ref == "W" else lon
    if abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
        return None
    out = {"lat": round(lat, 7), "lon": round(lon, 7)}
    alt = _number(ifd.get(_GPS_ALT))
    if alt is not None and abs(alt) < 100_000:
        ref = ifd.get(_GPS_ALT_REF)
        if isinstance(ref, bytes):
            ref = ref[:1] == b"\x01"
        out["alt"] = round(-alt if ref in (1, True) else alt, 2)
    return out


__all__ = ["device_key", "exif_summary"]

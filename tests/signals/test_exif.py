"""EXIF summary for victim identification: the fields that matter, robust to bad EXIF.

Images are generated (vigil.demo.synthetic) and given EXIF with Pillow.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from vigil.demo.synthetic import synthetic_image
from vigil.signals.exif import device_key, exif_summary

R = IFDRational


def with_exif(ifd0: dict[int, Any] | None = None, exif_ifd: dict[int, Any] | None = None,
              gps: dict[int, Any] | None = None, fmt: str = "JPEG") -> bytes:
    ex = Image.Exif()
    for k, v in (ifd0 or {}).items():
        ex[k] = v
    if exif_ifd:
        sub = ex.get_ifd(0x8769)
        sub.update(exif_ifd)
    if gps:
        g = ex.get_ifd(0x8825)
        g.update(gps)
    buf = io.BytesIO()
    synthetic_image(7, (64, 48)).save(buf, fmt, exif=ex)
    return buf.getvalue()


CANON = with_exif(
    {0x010F: "Canon\x00\x00\x00", 0x0110: "  Canon EOS 5D   Mark IV ", 0x0131: "Firmware 1.0.4",
     0x0132: "2021:03:05 00:00:00"},
    {0x9003: "2021:03:04 10:11:12", 0x9011: "+08:00", 0xA431: "0123456789",
     0xA434: "EF24-70mm f/2.8L II USM"},
    {1: "N", 2: (R(1, 1), R(21, 1), R(752, 100)), 3: "E", 4: (R(103, 1), R(49, 1), R(1128, 100)),
     5: b"\x00", 6: R(152, 10)},
)


def test_full_summary_from_image_and_bytes() -> None:
    expected = {
        "make": "Canon",
        "model": "Canon EOS 5D Mark IV",
        "serial": "0123456789",
        "lens": "EF24-70mm f/2.8L II USM",
        "software": "Firmware 1.0.4",
        "datetime_original": "2021-03-04T10:11:12+08:00",
        "gps": {"lat": pytest.approx(1.3520889, abs=1e-6),
                "lon": pytest.approx(103.8198, abs=1e-6), "alt": 15.2},
    }
    with Image.open(io.BytesIO(CANON)) as img:
        assert exif_summary(img) == expected
    assert exif_summary(CANON) == expected
    assert device_key(exif_summary(CANON)) == "Canon|Canon EOS 5D Mark IV|0123456789"


def test_southern_western_hemisphere_and_below_sea_level() -> None:
    data = with_exif({0x0110: "iPhone 12", 0x010F: "Apple"}, None,
                     {1: "S", 2: (R(33, 1), R(52, 1), R(0, 1)), 3: "W",
                      4: (R(70, 1), R(30, 1), R(0, 1)), 5: b"\x01", 6: R(10, 1)})
    s = exif_summary(data)
    assert s["gps"] == {"lat": pytest.approx(-33.8666667), "lon": -70.5, "alt": -10.0}
    assert device_key(s) == "Apple|iPhone 12|"


def test_date_falls_back_to_datetime_with_offset_time() -> None:
    s = exif_summary(with_exif({0x0132: "2019:06:01 10:00:00"}, {0x9010: "-05:00"}))
    assert s == {"datetime_original": "2019-06-01T10:00:00-05:00"}
    # no offset: a naive local time
    assert exif_summary(with_exif({0x0132: "2019:06:01 10:00:00"})) == {
        "datetime_original": "2019-06-01T10:00:00"}


def test_no_exif_gives_empty_summary() -> None:
    buf = io.BytesIO()
    synthetic_image(1, (32, 32)).save(buf, "PNG")
    assert exif_summary(buf.getvalue()) == {}
    assert exif_summary(synthetic_image(1, (32, 32))) == {}
    assert device_key({}) is None
    assert device_key({"make": "Canon"}) is None  # a make alone is too coarse


def test_png_exif_is_read_too() -> None:
    s = exif_summary(with_exif({0x010F: "Sony", 0x0110: "ILCE-7M3"}, fmt="PNG"))
    assert s == {"make": "Sony", "model": "ILCE-7M3"}


@pytest.mark.parametrize("bad", [
    {"exif": {0x9003: "0000:00:00 00:00:00"}},      # blank date
    {"exif": {0x9003: "2021:13:45 99:00:00"}},      # impossible date
    {"exif": {0x9003: "yesterday"}},
    {"exif": {0x9003: "2021:03:04 10:11:12", 0x9011: "+99:99"}},  # bad offset: dropped
    {"gps": {1: "N", 2: (R(1, 0), R(0, 1), R(0, 1)), 3: "E", 4: (R(1, 1), R(0, 1), R(0, 1))}},
    {"gps": {1: "Q", 2: (R(1, 1), R(0, 1), R(0, 1)), 3: "E", 4: (R(1, 1), R(0, 1), R(0, 1))}},
    {"gps": {1: "N", 2: (R(95, 1), R(0, 1), R(0, 1)), 3: "E", 4: (R(1, 1), R(0, 1), R(0, 1))}},
    {"gps": {1: "N", 2: (R(0, 1), R(0, 1), R(0, 1)), 3: "E", 4: (R(0, 1), R(0, 1), R(0, 1))}},
    {"gps": {1: "N", 2: (R(1, 1),) * 5, 3: "E", 4: (R(1, 1),)}},  # 5 parts
    {"ifd0": {0x010F: "\x00\x00\x00", 0x0110: "   "}},  # padding only
])
def test_malformed_fields_are_dropped_not_raised(bad: dict[str, dict[int, Any]]) -> None:
    data = with_exif({**bad.get("ifd0", {0x0110: "Model X"})}, bad.get("exif"), bad.get("gps"))
    s = exif_summary(data)
    assert "gps" not in s
    dt = s.get("datetime_original")
    assert dt in (None, "2021-03-04T10:11:12")
    assert all(isinstance(v, str) and v.strip() == v and "\x00" not in v
               for k, v in s.items() if k != "gps")


def test_corrupt_exif_block_never_raises() -> None:
    data = bytearray(CANON)
    i = data.index(b"Exif\x00\x00")
    # smash the TIFF header and IFD offsets inside the APP1 segment
    for j in range(i + 6, i + 60):
        data[j] = (data[j] * 7 + 13) % 256
    assert isinstance(exif_summary(bytes(data)), dict)
    truncated = bytes(data[: i + 30])
    assert isinstance(exif_summary(truncated), dict)
    assert exif_summary(b"not an image at all") == {}


def test_control_characters_and_long_strings_are_cleaned() -> None:
    s = exif_summary(with_exif({0x010F: "Evil\x07Corp\x00junk after nul", 0x0110: "M" * 5000}))
    assert s["make"] == "EvilCorp"
    assert len(s["model"]) == 200


def test_device_key_normalises_whitespace_and_separator() -> None:
    assert device_key({"make": " Foo  Bar ", "model": "A|B", "serial": " 42 "}) == \
        "Foo Bar|A/B|42"
    assert device_key({"model": "iPhone 12"}) == "|iPhone 12|"

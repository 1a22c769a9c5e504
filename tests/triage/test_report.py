"""report.html and thumbnails: self-contained, escaped, blurred by default, clean in Chromium.

The Chromium test drives the browser over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: NUL-terminated JSON on fds 3 and 4), so it needs nothing but
the standard library: no websocket package, no port, nothing listening.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.triage.conftest import HOSTILE, HOSTILE_ERROR, Built
from vigil.demo.synthetic import synthetic_image
from vigil.triage import report as report_mod
from vigil.triage.report import distance_bins, timeline_bins, write_report
from vigil.triage.scandb import GroupRow, ScanDB
from vigil.triage.thumbs import MAX_SIDE, make_thumbnail, present

CHROMIUM = "/usr/bin/chromium"

# ----------------------------------------------------------------------------- thumbnails


def _hf_energy(img: Image.Image) -> float:
    """Mean squared Laplacian of the luma: how much fine detail an image has."""
    a = np.asarray(img.convert("L"), np.float64)
    lap = (a[1:-1, 1:-1] * 4 - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:])
    return float((lap ** 2).mean())


@pytest.mark.parametrize("size", [(320, 240), (240, 640), (1000, 50), (40, 30)])
def test_make_thumbnail_is_small_clear_jpeg(size: tuple[int, int]) -> None:
    jpeg = make_thumbnail(synthetic_image(7, size))
    im = Image.open(io.BytesIO(jpeg))
    assert im.format == "JPEG" and im.mode == "RGB"
    assert max(im.size) <= MAX_SIDE
    assert max(im.size) == min(MAX_SIDE, max(size))


def test_make_thumbnail_flattens_odd_modes() -> None:
    rgba = synthetic_image(3).convert("RGBA")
    for im in (rgba, rgba.convert("P"), rgba.convert("I;16"), rgba.convert("CMYK")):
        assert Image.open(io.BytesIO(make_thumbnail(im))).format == "JPEG"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blurred_is_greyscale_with_little_detail(seed: int) -> None:
    clear = make_thumbnail(synthetic_image(seed, (320, 240)))
    src = Image.open(io.BytesIO(clear))
    out = Image.open(io.BytesIO(present(clear, "blurred")))
    assert out.mode == "L", "blurred thumbnails are greyscale"
    assert out.size == src.size
    # Fine detail (edges, texture) nearly gone: < 3 % of a sharp thumbnail-sized picture's.
    sharp = synthetic_image(seed, (320, 240))
    sharp.thumbnail(src.size, Image.Resampling.LANCZOS)
    assert _hf_energy(out) < 0.03 * _hf_energy(sharp.convert("L"))
    # ... and far from the clear image pixel-wise (not a faint copy).
    diff = np.abs(np.asarray(out, float) - np.asarray(src.convert("L"), float)).mean()
    assert diff > 8
    assert present(clear, "clear") == clear
    with pytest.raises(ValueError):
        present(clear, "sharp")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the page


class _Page(HTMLParser):
    """Collects what a page would load or run: URLs in attributes, scripts, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.imgs: list[str] = []
        self.scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("src", "href", "srcset", "poster", "action", "data", "xlink:href"):
                self.urls.append(v or "")
            if k.startswith("on"):
                self.handlers.append(f"{tag} {k}")
        if tag == "img":
            self.imgs.append(dict(attrs).get("src") or "")
        if tag == "script":
            self.scripts += 1


def _render(db: ScanDB, tmp: Path, mode: str = "blurred") -> tuple[str, _Page]:
    path = write_report(db, tmp, thumbnails=mode)  # type: ignore[arg-type]
    assert path == tmp / "report.html"
    text = path.read_text("utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def test_report_is_self_contained(scan_db: ScanDB, tmp_path: Path) -> None:
    text, page = _render(scan_db, tmp_path)
    bare = re.sub(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", "data:", text)
    assert not re.search(r"https?:|ftp:|file:|//[a-z0-9]", bare, re.I), "no URL of any kind"
    assert "@import" not in text and "url(" not in text
    assert all(u.startswith("data:image/jpeg;base64,") for u in page.urls)
    assert page.scripts == 1 and not page.handlers
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert not list(tmp_path.glob("*.tmp"))


def test_report_content(scan_db: ScanDB, built: Built, tmp_path: Path) -> None:
    text, page = _render(scan_db, tmp_path)
    s = scan_db.summary()
    for label, n in (("files", s.files), ("duplicate files", s.duplicates),
                     ("known items", s.known_items), ("unknown groups", s.groups),
                     ("errors", s.errors)):
        assert f"<b>{n:,}</b><span>{label}</span>" in text
    for needle in ("us 1 · CAM: child abuse material", "uk A", "ncmec B1", "interpol yes",
                   "uncategorised", "decompression_bomb", "zero_byte", "series-beta",
                   "rot90", "NCMEC", "nca-caid", "Canon|Canon EOS 5D Mark IV|0123456789",
                   "2021-03-04 10:11 → 2021-04-20 18:45", "with GPS</dt><dd>3 of 4",
                   "Match distances", "Capture timeline", "<svg", "Take breaks"):
        assert needle in text, needle
    # Bank hash values are never in the page (the scan only knows entry ids, and the item
    # hashes shown are the seized files' own); PDQ of seized files is not printed either.
    assert built.sha["k_us1"][:16] in text
    for f in scan_db.files("done"):
        assert not f.pdq or f.pdq not in text
    # Known material is never shown: thumbnails only for the grouped unknown images.
    assert len(page.imgs) == 8
    shown = re.search(r'data-thumbnails-shown="(\d+)"', text)
    assert shown and int(shown.group(1)) == 8 and "8 shown in this report" in text
    for sha in (built.sha[k] for k in ("k_us1", "k_ukA", "k_ncB1", "k_int")):
        jpeg = scan_db.thumbnail(sha)
        assert jpeg is not None
        assert base64.b64encode(present(jpeg, "blurred")).decode() not in text


def test_report_thumbnails_blurred_by_default(scan_db: ScanDB, tmp_path: Path) -> None:
    path = write_report(scan_db, tmp_path)
    text = path.read_text()
    assert 'data-thumbnails="blurred"' in text
    page = _Page()
    page.feed(text)
    clear = {base64.b64encode(scan_db.thumbnail(s) or b"").decode()
             for g in scan_db.groups() for s, _ in g.members}
    for src in page.imgs:
        data = src.split(",", 1)[1]
        assert data not in clear, "the clear thumbnail must not be in a blurred report"
        im = Image.open(io.BytesIO(base64.b64decode(data)))
        assert im.mode == "L"


def test_report_clear_and_none(scan_db: ScanDB, tmp_path: Path) -> None:
    text, page = _render(scan_db, tmp_path / "clear", "clear")
    assert len(page.imgs) == 8 and "CLEAR" in text
    modes = {Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).mode
             for s in page.imgs}
    assert modes == {"RGB"}
    text, page = _render(scan_db, tmp_path / "none", "none")
    assert not page.imgs and 'data-thumbnails-shown="0"' in text
    with pytest.raises(ValueError):
        write_report(scan_db, tmp_path, thumbnails="sharp")  # type: ignore[arg-type]


def test_report_escapes_hostile_names(scan_db: ScanDB, tmp_path: Path) -> None:
    text, page = _render(scan_db, tmp_path)
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;.jpg" in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text  # in an error message
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "&amp; &quot;quotes&quot;" in text
    assert page.scripts == 1 and not page.handlers
    assert HOSTILE and HOSTILE_ERROR  # the fixture carries both


def test_report_bidi_and_control_characters_are_visible(tmp_path: Path) -> None:
    db = ScanDB(tmp_path / "scan.db")
    name = "E01/photo\u202egpj.exe\x07"
    db.add_pending([(name, None, 1, None)])
    db.record([{"path": name, "status": "error", "error_code": "corrupt",
                "error_message": "bad\x00"}])
    text = write_report(db, tmp_path).read_text()
    assert "\u202e" not in text and "photo\\u202egpj.exe\\u0007" in text
    db.close()


def test_report_caps_large_scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_mod, "MAX_ROWS", 5)
    monkeypatch.setattr(report_mod, "MAX_GROUPS", 2)
    monkeypatch.setattr(report_mod, "MAX_THUMBS_PER_GROUP", 3)
    db = ScanDB(tmp_path / "scan.db")
    rows = []
    thumbs = []
    jpeg = make_thumbnail(synthetic_image(1, (64, 48)))
    for i in range(40):
        sha = f"{i:064x}"
        rows.append({"path": f"f{i}.jpg", "status": "done", "kind": "image", "sha256": sha,
                     "md5": f"{i:032x}", "exif": {}})
        thumbs.append((sha, jpeg))
    rows += [{"path": f"bad{i}", "status": "error", "error_code": "corrupt"} for i in range(9)]
    db.add_pending([(r["path"], None, 1, None) for r in rows])
    db.record(rows, thumbs)
    db.replace_groups([GroupRow(g, g, 10, 1.0, None, {}, [(f"{g * 10 + k:064x}", k)
                                                         for k in range(10)])
                       for g in range(4)])
    text = write_report(db, tmp_path).read_text()
    assert text.count("<img") == 6 and 'data-thumbnails-shown="6"' in text
    assert "Showing the first 2 of 4 groups" in text
    assert "Showing the first 5 of 9 errors" in text
    assert text.count('<td class="path"><code>bad') == 5
    db.close()


def test_chart_bins() -> None:
    assert distance_bins([]) == []
    bins = distance_bins([0, 0, 3, 31, 12])
    assert bins[0] == ("0", 2) and sum(v for _, v in bins) == 5
    from datetime import datetime as dt
    days, unit = timeline_bins([dt(2021, 3, 4), dt(2021, 3, 6), dt(2021, 3, 6)])
    assert unit == "day" and days == [("2021-03-04", 1), ("2021-03-05", 0), ("2021-03-06", 2)]
    months, unit = timeline_bins([dt(2019, 12, 1), dt(2020, 2, 1), dt(2019, 10, 1)])
    assert unit == "month" and [k for k, _ in months] == ["2019-10", "2019-11", "2019-12",
                                                        "2020-01", "2020-02"]
    years, unit = timeline_bins([dt(2001, 1, 1), dt(2020, 1, 1)])
    assert unit == "year" and len(years) == 20


# ----------------------------------------------------------------------------- Chromium


@dataclass
class Rendered:
    """What the browser did with the page."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    images: dict[str, Any] = field(default_factory=dict)


class _CDP:
    """A minimal DevTools client on Chromium's debugging pipe (fd 3 in, fd 4 out)."""

    def __init__(self, user_data_dir: Path) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def child() -> None:  # runs in the child between fork and exec
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--disable-default-apps",
             "--hide-scrollbars", f"--user-data-dir={user_data_dir}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child, close_fds=False)  # python fds are O_CLOEXEC: only 3, 4 pass
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _recv(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the debugging pipe")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 15) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 15) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._recv(deadline))
        except TimeoutError:
            pass

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may be gone already; wait() decides
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def render_in_chromium(page: Path, tmp: Path) -> Rendered:
    """Open ``page`` in headless Chromium; report requests, errors, a screenshot, images."""
    cdp = _CDP(tmp / "profile")
    try:
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True}
                       )["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            cdp.call(f"{domain}.enable", session=sid)
        cdp.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1600,
                                                        "deviceScaleFactor": 1,
                                                        "mobile": False}, session=sid)
        cdp.events.clear()  # about:blank's own events are not the report's
        cdp.call("Page.navigate", {"url": page.resolve().as_uri()}, session=sid)
        cdp.wait_event("Page.loadEventFired")
        images = cdp.call("Runtime.evaluate", {"returnByValue": True, "expression": (
            "(function(){var im=Array.from(document.images);"
            "var th=document.querySelector('#known-table thead th:nth-child(9)');th.click();"
            "th.click();"
            "var f=document.querySelector('input.filter');f.value='decompression';"
            "f.dispatchEvent(new Event('input'));"
            "return {n:im.length,ok:im.filter(function(i){return i.complete&&"
            "i.naturalWidth>0}).length,sorted:th.getAttribute('aria-sort')};})()")},
            session=sid)["result"]["value"]
        cdp.drain(0.3)
        shot = cdp.call("Page.captureScreenshot", {"format": "png"}, session=sid)["data"]
        out = Rendered(screenshot=base64.b64decode(shot), images=images)
        for e in cdp.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.errors.append(json.dumps(p.get("args"))[:300])
            elif m == "Runtime.exceptionThrown":
                out.errors.append(json.dumps(p.get("exceptionDetails"))[:300])
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.errors.append(p["entry"].get("text", "")[:300])
        return out
    finally:
        cdp.close()


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"{CHROMIUM} is not installed "
                    "(.ci/run installs it on CI)")
def test_report_in_headless_chromium(scan_db: ScanDB, tmp_path: Path) -> None:
    page = write_report(scan_db, tmp_path / "out")
    r = render_in_chromium(page, tmp_path)
    assert not r.errors, r.errors
    page_url = page.resolve().as_uri()
    assert page_url in r.requests
    others = [u for u in r.requests if u != page_url and not u.startswith("data:")]
    assert not others, others
    assert r.images == {"n": 8, "ok": 8, "sorted": "descending"}
    png = tmp_path / "report.png"
    png.write_bytes(r.screenshot)
    if os.environ.get("VIGIL_REPORT_SCREENSHOT"):  # for a person to look at
        shutil.copy(png, os.environ["VIGIL_REPORT_SCREENSHOT"])
    im = Image.open(png).convert("L")
    assert im.size == (1280, 1600)
    a = np.asarray(im)
    assert a.std() > 20 and len(np.unique(a)) > 50, "the screenshot is blank"

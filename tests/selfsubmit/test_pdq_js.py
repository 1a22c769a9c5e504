"""The page's own PDQ and MD5 (JavaScript, in headless Chromium) against the Python
reference: bit-identical PDQ on the same pixels (12 reference fixtures, 100 corpus photos,
generated odd sizes), MD5 equal to hashlib, and after Chromium's own decode in the page's
worker, within 10 bits of `vigil hash --reference` on all corpus photos."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser import Watched, browser_page  # noqa: F401
from vigil.selfsubmit.page import STATIC
from vigil.signals.pdq import pdq_reference

pytestmark = pytest.mark.shared

_FROM_B64 = """([b, w, h]) => { const s = atob(b); const a = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return [a, w, h]; }"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Iterator[str]:
    """The page's static files and the corpus over loopback HTTP (a worker needs an origin)."""
    root = tmp_path_factory.mktemp("site")
    (root / "static").symlink_to(STATIC)
    (root / "corpus").symlink_to(shared / "corpus")
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "favicon.ico").write_bytes(b"")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _js_pdq(page: object, rgb: np.ndarray) -> tuple[str, int]:
    h, w = rgb.shape[:2]
    got = page.evaluate(  # type: ignore[attr-defined]
        f"(args) => {{ const [a, w, h] = ({_FROM_B64})(args); "
        "const r = VigilPDQ.pdqFromRGB(a, w, h); return [r.hex, r.quality]; }",
        [base64.b64encode(np.ascontiguousarray(rgb).tobytes()).decode(), w, h])
    return got[0], got[1]


def _photos(shared: Path) -> list[Path]:
    return sorted((shared / "corpus" / "bsds500").rglob("*.jpg"))


def test_same_pixels_bit_identical(browser_page: Watched, shared: Path, site: str) -> None:  # noqa: F811
    page = browser_page.page
    page.goto(f"{site}/index.html")
    page.add_script_tag(url=f"{site}/static/pdq.js")
    fixtures = sorted((shared / "fixtures" / "pdq" / "bridge-mods").glob("*.jpg"))
    assert len(fixtures) == 12
    rng = np.random.default_rng(18)
    generated = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                 for h, w in ((5, 5), (63, 65), (64, 64), (7, 300), (301, 6), (128, 1024),
                              (1000, 17), (97, 131))]
    # a smooth gradient with noise: realistic texture, odd size
    yy, xx = np.mgrid[0:333, 0:517]
    grad = np.stack([(xx * 255 // 516), (yy * 255 // 332), ((xx + yy) % 256)], -1)
    generated.append(np.clip(grad + rng.integers(-9, 10, grad.shape), 0, 255).astype(np.uint8))
    images = [np.asarray(Image.open(p).convert("RGB")) for p in fixtures]
    images += [np.asarray(Image.open(p).convert("RGB")) for p in _photos(shared)[:100]]
    images += generated
    differ = []
    for i, rgb in enumerate(images):
        ref, _ = pdq_reference(rgb)
        got = _js_pdq(page, rgb)
        if got != (ref.hex, ref.quality):
            differ.append((i, rgb.shape))
    assert differ == []
    assert len(images) == 12 + 100 + len(generated)
    assert browser_page.errors == []


def test_md5_equals_hashlib(browser_page: Watched, site: str) -> None:  # noqa: F811
    page = browser_page.page
    page.goto(f"{site}/index.html")
    page.add_script_tag(url=f"{site}/static/md5.js")
    rng = np.random.default_rng(5)
    for n in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 100_003):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        got = page.evaluate("(b) => { const s = atob(b); const a = new Uint8Array(s.length); "
                            "for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); "
                            "return VigilMD5(a); }", base64.b64encode(data).decode())
        assert got == hashlib.md5(data).hexdigest(), n


_WORKER_HASH = """async (urls) => {
  const w = new Worker("/static/worker.js");
  const out = [];
  for (let i = 0; i < urls.length; i++) {
    const blob = await (await fetch(urls[i])).blob();
    const file = new File([blob], "x.jpg");
    out.push(await new Promise((resolve) => {
      w.onmessage = (ev) => resolve(ev.data);
      w.postMessage({ id: i, file: file });
    }));
  }
  w.terminate();
  return out;
}"""


def test_after_the_browsers_decode_within_10_bits(browser_page: Watched, shared: Path,  # noqa: F811
                                                  site: str) -> None:
    """The page's whole worker path (sniff, MD5, SHA-256, Chromium's decode, PDQ) on every
    corpus photo, against the reference hash of Pillow's decode."""
    page = browser_page.page
    page.goto(f"{site}/index.html")
    photos = _photos(shared)
    assert len(photos) >= 500
    corpus = shared / "corpus"
    urls = [f"/corpus/{p.relative_to(corpus).as_posix()}" for p in photos]
    results = page.evaluate(_WORKER_HASH, urls)
    drift = []
    for p, r in zip(photos, results, strict=True):
        assert r["ok"], (p.name, r)
        data = p.read_bytes()
        assert r["result"]["md5"] == hashlib.md5(data).hexdigest()
        assert r["result"]["sha256"] == hashlib.sha256(data).hexdigest()
        ref, _ = pdq_reference(np.asarray(Image.open(p).convert("RGB")))
        a, b = int(ref.hex, 16), int(r["result"]["pdq"], 16)
        drift.append((a ^ b).bit_count())
    print(f"\nJS PDQ after Chromium's decode vs --reference, {len(drift)} photos: "
          f"mean {np.mean(drift):.2f} bits, max {max(drift)} bits")
    assert max(drift) <= 10
    assert browser_page.errors == []

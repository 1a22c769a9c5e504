"""The self-submission page's hashing speed (issue 18): JS PDQ (+ MD5 + SHA-256, with
Chromium's own decode, in the page's Web Worker, one thread) in headless Chromium, side
by side with `vigil hash` (fast path and --reference) on the same JPEGs, at 12 MP and
1 MP. Target: at least 2 twelve-megapixel images per second on one core.

    python -m bench.selfsubmit [--repeat 3] [--images 6]

The JPEGs are corpus photos (bsds500) enlarged to 4000x3000 and 1155x866: benign, made
here, never kept. Each run is a fresh process (bench/_spread.py); the browser and Python
runs alternate.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from bench._spread import Runs, add_repeat_argument, spread_cell

SHARED = Path(__file__).resolve().parents[2] / "shared"
STATIC = Path(__file__).resolve().parents[1] / "src" / "vigil" / "selfsubmit" / "static"
SIZES = {"12 MP": (4000, 3000), "1 MP": (1155, 866)}
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

_WORKER = """async (urls) => {
  const w = new Worker("/static/worker.js");
  const files = [];
  for (const u of urls) files.push(new File([await (await fetch(u)).blob()], "x.jpg"));
  const one = (i) => new Promise((res) => { w.onmessage = (ev) => res(ev.data);
                                            w.postMessage({ id: i, file: files[i] }); });
  await one(0);  // warm-up: compile the hashing code
  const t0 = performance.now();
  for (let i = 0; i < files.length; i++) { const r = await one(i); if (!r.ok) throw r.code; }
  const s = (performance.now() - t0) / 1000;
  w.terminate();
  return files.length / s;
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def make_images(folder: Path, n: int) -> dict[str, list[Path]]:
    photos = sorted((SHARED / "corpus" / "bsds500").rglob("*.jpg"))[:n]
    out: dict[str, list[Path]] = {}
    for label, size in SIZES.items():
        d = folder / label.replace(" ", "")
        d.mkdir()
        out[label] = []
        for p in photos:
            with Image.open(p) as im:
                dst = d / p.name
                im.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(dst, quality=90)
                out[label].append(dst)
    return out


def browser_rate(folder: str, files: list[str]) -> float:
    from playwright.sync_api import sync_playwright

    root = Path(folder)
    (root / "static").symlink_to(STATIC) if not (root / "static").exists() else None
    (root / "index.html").write_text("<!doctype html><title>bench</title>")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                   args=ARGS)
            page = b.new_page()
            page.goto(f"{base}/index.html")
            urls = [f"/{Path(f).relative_to(root).as_posix()}" for f in files]
            rate = float(page.evaluate(_WORKER, urls))
            b.close()
    finally:
        server.shutdown()
    return rate


def python_rate(files: list[str], mode: str) -> float:
    from vigil.signals import HashOptions, hash_file

    opts = HashOptions(mode=mode)  # type: ignore[arg-type]
    hash_file(files[0], opts)  # warm-up (Numba)
    t0 = time.perf_counter()
    for f in files:
        r = hash_file(f, opts)
        assert r.error is None, r.error
    return len(files) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_repeat_argument(ap)
    ap.add_argument("--images", type=int, default=6, help="JPEGs per size (default 6)")
    args = ap.parse_args()
    runs = Runs()
    target = ""
    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(Path(tmp), args.images)
        print("| size | JS PDQ in Chromium (worker) img/s | `vigil hash` fast img/s | "
              "`vigil hash --reference` img/s | JS / reference | JS / fast |")
        print("|---|---|---|---|---|---|")
        for label, paths in images.items():
            files = [str(p) for p in paths]
            js, fast, ref = [], [], []
            for _ in range(args.repeat):
                js.append(runs.call(browser_rate, tmp, files))
                fast.append(runs.call(python_rate, files, "fast"))
                ref.append(runs.call(python_rate, files, "reference"))
            js_m, ref_m, fast_m = (sorted(x)[len(x) // 2] for x in (js, ref, fast))
            print(f"| {label} | {spread_cell(js)} | {spread_cell(fast)} | {spread_cell(ref)} "
                  f"| {js_m / ref_m:.2f} | {js_m / fast_m:.2f} |")
            if label == "12 MP":
                verdict = "met" if min(js) >= 2 else "missed"
                target = f"12 MP target ≥ 2 img/s (worst run {min(js):.2f}): {verdict}"
    print(f"\n{target}")
    print(runs.load_line())


if __name__ == "__main__":
    main()

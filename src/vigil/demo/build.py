"""``make demo``: a benign seizure, a demo bank, ``vigil scan``, and the report.

Runs on a fresh clone with no data and touches nothing outside its output folder (its
own VIGIL_HOME inside it). Deterministic: the same pictures every time.

What it builds (all generated; no real material is ever needed):

* a **known** set of pictures, added to a demo bank with labels;
* a **seizure** folder: exact copies and edited copies (resized, recompressed,
  greyscale, brighter, rotated, mirrored) of known pictures, duplicates, a "camera
  roll" of new pictures sharing one capture device with near-duplicate bursts, a zip
  holding more copies, and junk: a truncated JPEG, a zero-byte file, a renamed text
  file, random bytes;
* then ``vigil scan`` with ``--dihedral``, and the report's location.

Run: ``python -m vigil.demo [--out DIR]``
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from vigil.demo.synthetic import synthetic_image

EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resized": lambda im: im.resize((im.width // 2, im.height // 2)),
    "recompressed": lambda im: im,
    "greyscale": lambda im: im.convert("L"),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "rotated": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}


def _camera_exif(serial: str, minute: int) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "DemoCam"  # Make
    exif[0x0110] = "DC-100"  # Model
    exif[0x0131] = "DemoCam Firmware 1.0"  # Software
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = f"2026:06:01 10:{minute:02d}:00"  # DateTimeOriginal
    ifd[0xA431] = serial  # BodySerialNumber
    return exif.tobytes()


def build_demo_set(root: Path) -> tuple[Path, Path]:
    """Write the known set and the seizure under root; return (known folder, seizure)."""
    known, seizure = root / "known", root / "seizure"
    known.mkdir(parents=True)
    (seizure / "phone" / "DCIM").mkdir(parents=True)
    (seizure / "laptop" / "Downloads").mkdir(parents=True)
    originals = []
    for i in range(8):
        img = synthetic_image(1000 + i, (640, 480))
        img.save(known / f"known-{i}.jpg", quality=92)
        originals.append(img)
    down = seizure / "laptop" / "Downloads"
    for i, (name, edit) in enumerate(EDITS.items()):
        edit(originals[i]).save(down / f"img_{i:03d}_{name}.jpg", quality=40 if
                                name == "recompressed" else 90)
    shutil.copyfile(known / "known-6.jpg", down / "img_006_exact.jpg")
    shutil.copyfile(known / "known-6.jpg", seizure / "phone" / "copy-of-6.jpg")  # duplicate
    # A camera roll of new material: bursts of near-duplicates from one device.
    rng = np.random.default_rng(7)
    for burst in range(3):
        base = synthetic_image(5000 + burst, (800, 600))
        for k in range(3):
            arr = np.asarray(base, dtype=np.int16) + rng.integers(-4, 5, (600, 800, 3))
            shot = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
            shot.save(seizure / "phone" / "DCIM" / f"IMG_{burst}{k:03d}.JPG", quality=90,
                      exif=_camera_exif("SN-4471", burst * 10 + k))
    for j in range(4):  # unrelated new pictures, no EXIF
        synthetic_image(7000 + j, (640, 480)).save(seizure / "phone" / f"new-{j}.png")
    # An archive with more copies, one nested folder deep.
    with zipfile.ZipFile(seizure / "laptop" / "backup.zip", "w") as z:
        z.writestr("old/known-7.jpg", (known / "known-7.jpg").read_bytes())
        buf = io.BytesIO()
        originals[7].transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buf, "JPEG", quality=85)
        z.writestr("old/flipped.jpg", buf.getvalue())
        z.writestr("notes.txt", "meeting at 10\n")
    # Junk that a real seizure always has.
    data = (known / "known-0.jpg").read_bytes()
    (down / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (down / "empty.jpg").write_bytes(b"")
    (down / "invoice.jpg").write_text("this is not a picture\n")
    (down / "random.bin").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return known, seizure


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder "
                    "(replaced; default ./demo-out)")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    known, seizure = build_demo_set(out / "data")
    os.environ["VIGIL_HOME"] = str(out / "home")  # the demo never touches your own store
    os.environ.pop("VIGIL_DATABASE_URL", None)
    os.environ.setdefault("VIGIL_USER", "demo")
    from vigil.cli import app

    quiet = ["--quiet"] if args.quiet else []
    steps = [
        ["bank", "create", "demo-known", "--agency", "DEMO-POLICE", "--scheme", "us",
         "--description", "generated demo pictures"],
        ["bank", "add", "demo-known", str(known), "--category", "us:1", "--series",
         "DEMO-S1", "--victim-status", "identified", *quiet],
        ["bank", "show", "demo-known"],
        ["scan", str(seizure), "--bank", "demo-known", "--dihedral", "--out",
         str(out / "scan"), *quiet],
    ]
    for step in steps:
        print(f"\n$ vigil {' '.join(step)}")
        try:
            app(step, prog_name="vigil", standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                return int(exc.code)
    print(f"\nOpen the report: {out / 'scan' / 'report.html'}")
    return 0


"""``vigil hash``: print every signal of files and folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli._app import app, fail
from vigil.cli._display import shown
from vigil.cli._files import hash_paths
from vigil.signals import DIHEDRAL_NAMES, FileSignals, HashOptions
from vigil.signals.decode import DEFAULT_MAX_PIXELS
from vigil.signals.vpdq import vpdq_digest


def _human_line(r: FileSignals) -> str:
    parts = []
    if r.pdq is not None:
        parts.append(f"pdq={r.pdq.hex} q={r.pdq.quality}")
    if r.vpdq is not None:
        parts.append(f"vpdq={vpdq_digest(r.vpdq)} frames={len(r.vpdq)}")
    if r.digests is not None:
        d = r.digests
        parts += [f"md5={d.md5}", f"sha1={d.sha1}", f"sha256={d.sha256}"]
    line = "  ".join([*parts, shown(r.path)])
    if r.pdq_dihedral is not None:
        line += "".join(f"\n    {n}={h.hex}" for n, h in
                        zip(DIHEDRAL_NAMES[1:], r.pdq_dihedral[1:], strict=True))
    return line


@app.command("hash")
def hash_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).",
                                                show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    reference: Annotated[bool, typer.Option(
        "--reference", help="Full decode + Meta's C++ PDQ: bit-exact with other tools' banks, "
        "slower on large photos.")] = False,
    dihedral: Annotated[bool, typer.Option(
        "--dihedral", help="Add the 7 rotated/mirrored PDQ variants (free to compute).")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1,
                                      help="Worker processes.")] = 1,
    max_pixels: Annotated[int, typer.Option(
        min=1, help="Refuse images declaring more pixels than this (decompression bombs).")]
    = DEFAULT_MAX_PIXELS,
    exif: Annotated[bool, typer.Option(
        "--exif", help="With --json: add the EXIF fields that help identify victims "
        "(make, model, serial, lens, software, capture time, GPS) and the device key.")]
    = False,
    variants: Annotated[str, typer.Option(
        "--variants", help="With --json: add the query-side derived PDQ codes "
        "(pdq_derived: borders, crops or all; docs/crops.md), e.g. to send to POST /v1/match.")]
    = "off",
) -> None:
    """Print every signal of every file: PDQ (images), vPDQ (videos), MD5, SHA-1, SHA-256.

    One line per file; images get PDQ and its quality (0-100, below 50 is too flat to
    match reliably). Archives (zip, tar, tar.gz/bz2/xz, nested; also a zip hidden after a
    JPEG or an .exe stub) are read in memory, never extracted: each member gets its own
    line, named archive.zip!/member.jpg. Files that cannot be read or decoded, and FIFOs,
    sockets and devices (never opened: error special-file), are reported on stderr and in
    the output, and the run goes on; the exit status is 1 if any file failed.

    [bold]Examples[/bold]

      vigil hash photo.jpg
      vigil hash evidence.zip                 # the archive, then each member
      vigil hash --json --dihedral /evidence/extracted > signals.jsonl
    """
    from vigil.matching.variants import VARIANT_OPTIONS, variant_option

    if variants not in VARIANT_OPTIONS:
        fail(f"--variants must be one of {', '.join(VARIANT_OPTIONS)}", 2)
    options = HashOptions(mode="reference" if reference else "fast", dihedral=dihedral,
                          max_pixels=max_pixels, exif=exif, variants=variant_option(variants))
    failed = total = 0
    out = sys.stdout
    for r in hash_paths(paths, options, jobs):
        total += 1
        if as_json:
            out.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
        elif r.digests is not None:
            out.write(_human_line(r) + "\n")
        if r.error is not None:
            failed += 1
            typer.echo(f"vigil hash: {r.error.code}: {shown(r.error)}", err=True)
    out.flush()
    if failed:
        typer.echo(f"vigil hash: {failed} of {total} files failed", err=True)
        raise typer.Exit(1)

"""``vigil scan``: triage a seizure into a report an examiner can act on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import TaskID

from vigil.cli._app import app, err, fail, open_banks, open_matcher, progress, user_errors
from vigil.cli._display import markup, shown

if TYPE_CHECKING:  # the scan's modules load only when a scan runs (fast --help)
    from vigil.triage.scan import ScanStats


@app.command("scan")
def scan(
    evidence: Annotated[list[Path], typer.Argument(
        help="Folders, files and archives (zip, tar, tar.gz; nested) to scan.",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for scan.db, the report and "
                                      "the exports. Rerun the same command to resume.")],
    banks_: Annotated[list[str] | None, typer.Option(
        "--bank", "-b", help="Match against these banks (repeatable); default: all.")] = None,
    threshold: Annotated[int, typer.Option(min=0, max=64, help="PDQ threshold in bits.")] = 31,
    dihedral: Annotated[bool, typer.Option(
        "--dihedral", help="Also match rotated and mirrored copies.")] = False,
    variants: Annotated[str, typer.Option(
        "--variants", help="Also match edited copies: borders (framed, letter-boxed), "
        "crops (cropped, captioned; against banks with a crop ladder), all, features "
        "(all, plus a second stage for rotated and heavily cropped copies, confirmed by "
        "local features; about twice all's hashing time), or off. Costs hashing time: "
        "see docs/crops.md.")] = "off",
    thumbnails: Annotated[str, typer.Option(
        help="Report thumbnails: blurred (greyscale, default), clear, or none.")] = "blurred",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0,
                                      help="Worker processes (0 = all cores).")] = 0,
    reference: Annotated[bool, typer.Option("--reference",
                                            help="Reference-mode PDQ (slower).")] = False,
    no_match: Annotated[bool, typer.Option("--no-match", help="Hash and group only.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    ray: Annotated[str | None, typer.Option(
        "--ray", help="Hash as Ray tasks: a cluster's ADDRESS (host:port), auto (the "
        "cluster `ray start` made on this machine) or local (a private one here, -j CPUs). "
        "Workers read the evidence by path from storage the cluster shares; only signals "
        "and thumbnails travel (docs/scale.md).", show_default=False)] = None,
    case: Annotated[str | None, typer.Option(
        "--case", help="This seizure's case reference: hits on another agency's series "
        "queue a hit notice for it (series, item count, date, this reference; no hash, "
        "path or picture), pulled at its next sync (docs/victimid.md).",
        show_default=False)] = None,
) -> None:
    """Hash every file of a seizure, match it against the banks, group the unknown, report.

    Writes into --out: [bold]report.html[/bold] (self-contained; thumbnails blurred and
    greyscale by default), [bold]results.jsonl[/bold] and [bold]results.csv[/bold] (one
    row per file), [bold]case.vics.json[/bold] (VICS 2.0 case for forensic tools) and
    [bold]scan.db[/bold] (everything, and the progress). Killed or crashed? Run the same
    command again: it resumes where it stopped and ends with the same results.

    Hashing starts at once, while the evidence is still being listed: the progress bar's
    total grows until the listing is complete.

    Archives are read in memory, never extracted; a zip hidden after a JPEG or an .exe
    stub is scanned too (flag embedded-archive). FIFOs, sockets and devices are never
    opened (error special-file). A worker process that dies is replaced; the file it was
    on is retried once, then recorded as an error (worker-died).

    With --ray the hashing runs on a Ray cluster (pip install 'vigil\\[ray]'); everything
    else is unchanged, and a scan may be resumed with or without --ray.

    [bold]Example[/bold]

      vigil scan /evidence/phone.zip /evidence/laptop --bank sg-known --out case-17
    """
    import os

    from vigil.signals.forkstart import start_early

    workers = jobs or (os.cpu_count() or 1)
    # First: the workers (the local fork server, or Ray's) load the hashing code while
    # this process imports the scan's own and opens the banks.
    if not ray:
        start_early(workers)
    else:
        from vigil.triage.raylink import ClusterError, connect_early, describe, spill_folder

        if not quiet:
            err.print("starting a private Ray on this machine ..." if ray == "local" else
                      f"connecting to the Ray cluster at {markup(ray)} ...", highlight=False)
        try:
            on = describe(connect_early(ray, spill_folder(out), workers))
        except ClusterError as exc:
            fail(str(exc))
        if not quiet:
            err.print(f"hashing on Ray: {on}", highlight=False)
    from vigil.triage.outputs import write_outputs
    from vigil.triage.scan import ScanError, ScanOptions, run_scan

    if thumbnails not in ("blurred", "clear", "none"):
        fail("--thumbnails must be blurred, clear or none", 2)
    from vigil.matching.variants import VARIANT_OPTIONS, variant_option

    if variants not in VARIANT_OPTIONS:
        fail(f"--variants must be one of {', '.join(VARIANT_OPTIONS)}", 2)
    options = ScanOptions(inputs=tuple(str(p) for p in evidence),
                          banks=tuple(banks_) if banks_ else None, threshold=threshold,
                          dihedral=dihedral, mode="reference" if reference else "fast",
                          variants=variant_option(variants),
                          thumbnails=thumbnails, jobs=workers,
                          ray=ray)
    t0 = time.perf_counter()
    with user_errors():
        matcher = None
        if not no_match:
            banks = open_banks()
            matcher = open_matcher(banks)
            for b in banks_ or []:
                banks.require(b)
        with progress(quiet) as bar:
            tasks: dict[str, TaskID] = {}

            def show(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            from vigil.triage.cluster import ClusterError

            try:
                stats = run_scan(out, options, matcher, show)
            except (ScanError, ClusterError) as exc:
                fail(str(exc))
            notes = None if no_match else _series(out, case)
            written = write_outputs(out, thumbnails, notes, options.jobs, progress=show)
    _summary(out, stats, time.perf_counter() - t0, written)


def _series(out: Path, case: str | None) -> dict[str, dict[str, Any]] | None:
    """The series registry's notes on the scan's hits (loaded once, by series), and the
    hit notices queued for other agencies' series when a case reference is given."""
    from vigil.cli.series import registry_here
    from vigil.triage.scandb import ScanDB
    from vigil.victimid.annotate import queue_hits_ruled, series_notes

    reg = registry_here(required=case is not None, signing=False)
    if reg is None:
        return None
    db = ScanDB(out / "scan.db")
    try:
        labels = {m.sha256: m.series for m in db.matches() if m.series}
    finally:
        db.close()
    notes = series_notes(reg, labels.values())
    if case is not None:
        sent, withheld = queue_hits_ruled(reg, labels.values(), case, notes)
        for origin, sid, n in sent:
            typer.echo(f"hit notice queued for {origin}: series {sid}, {n} item(s), case {case}")
        for origin, sid, n in withheld:
            typer.echo(f"no hit notice for {origin} (series {sid}, {n} item(s)): no rule "
                       f"allows notices to it (vigil series notify {origin})")
    return notes


def _summary(out: Path, stats: ScanStats, seconds: float, written: list[Path]) -> None:
    from vigil.triage.scandb import ScanDB

    db = ScanDB(out / "scan.db")
    s = db.summary()
    db.close()
    resumed = f" (resumed: {stats.skipped_done:,} already done)" if stats.skipped_done else ""
    rate = stats.hashed / stats.seconds.get("hash", 1) if stats.hashed else 0
    typer.echo(f"scanned {s.files:,} files in {seconds:.1f} s{resumed}; hashed {stats.hashed:,} "
               f"this run at {rate:,.0f} files/s")
    typer.echo(f"  items: {s.items:,} distinct ({s.duplicates:,} duplicate files)")
    known = ", ".join(f"{k} {v:,}" for k, v in sorted(s.known_by_category.items())) or "none"
    typer.echo(f"  known: {s.known_items:,} items — {known}")
    typer.echo(f"  unknown images: {s.unknown_images:,}, in {s.groups:,} candidate groups "
               "for review")
    errs = ", ".join(f"{k} {v:,}" for k, v in sorted(s.errors_by_code.items()))
    typer.echo(f"  errors: {s.errors:,}" + (f" — {errs}" if errs else ""))
    for p in written:
        typer.echo(f"  wrote {shown(p)}")
    if not written:
        err.print("report not written (report layer unavailable)")

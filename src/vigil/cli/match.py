"""``vigil match``: which of these files (or bare hashes) are already in a bank?"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from vigil.cli._app import app, err, fail, open_banks, open_matcher, progress, user_errors
from vigil.cli._display import shown
from vigil.cli._files import default_jobs, hash_paths
from vigil.matching import (
    DEFAULT_MIN_QUALITY,
    DEFAULT_THRESHOLD,
    Match,
    describe_video,
    parse_query,
    video_detail,
)
from vigil.matching import queries_of as file_queries
from vigil.matching.variants import VARIANT_OPTIONS, variant_option
from vigil.signals import FileSignals, HashOptions

CSV_FIELDS = ["item", "bank", "agency", "entry_id", "signal_type", "variant", "distance",
              "category_scheme", "category", "series", "victim_status", "tags"]


def _match_json(m: Match, signals: list[str], notes: dict[str, dict[str, Any]],
                ) -> dict[str, Any]:
    lab = m.entry.labels
    return {"series_status": notes.get(lab.series) if lab.series else None,
            "bank": m.entry.bank, "agency": m.entry.origin_agency, "entry_id": m.entry.id,
            "signal_type": m.signal_type, "signals": signals, "variant": m.variant,
            "distance": m.distance,
            "category": ({"scheme": lab.category[0], "value": lab.category[1]}
                         if lab.category else None),
            "series": lab.series, "victim_status": lab.victim_status, "tags": list(lab.tags),
            "note": lab.note, "video": video_detail(m.video) if m.video else None,
            **({"inliers": m.inliers} if m.inliers is not None else {})}


def _self_leads(banks: Any, outcomes: list[Any]) -> None:
    """Hits on victims' self-submitted hashes become leads of their cases (counted for the
    victim's status; reviewed by staff with ``vigil selfcases leads``), audited."""
    from vigil.selfsubmit import BANK

    ids = [m.entry.id for o in outcomes for m in o.matches if m.entry.bank == BANK]
    if not ids:
        return
    from vigil.cli._audit import local_actor, opened
    from vigil.selfsubmit.cases import record_leads

    audit = opened(banks.engine)
    n = record_leads(banks.engine, ids, f"vigil match ({local_actor()})")
    if n:
        audit.record("selfsubmit.lead", BANK, leads=n)


def _series_notes(labels: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """The series registry's word on the hits' series (one batch), when this store is a
    node's (before `vigil init` there is no registry)."""
    wanted = {x for x in labels if x}
    if not wanted:
        return {}
    from vigil.cli.series import registry_here
    from vigil.victimid.annotate import series_notes

    reg = registry_here(required=False, signing=False)
    return {} if reg is None else series_notes(reg, wanted)


@app.command("match")
def match(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Files or folders to match (searched recursively).", show_default=False)] = None,
    hashes: Annotated[list[str] | None, typer.Option(
        "--hash", help="Match a bare hash instead: pdq:HEX, md5:HEX, sha1:HEX, sha256:HEX. "
        "Repeatable.")] = None,
    banks_: Annotated[list[str] | None, typer.Option(
        "--bank", "-b", help="Only these banks (repeatable); default all.")] = None,
    threshold: Annotated[int, typer.Option(
        min=0, max=64, help="PDQ match threshold in bits (0-64).")] = DEFAULT_THRESHOLD,
    dihedral: Annotated[bool, typer.Option(
        "--dihedral", help="Also search rotated and mirrored variants of each PDQ.")] = False,
    min_quality: Annotated[int, typer.Option(
        min=0, max=100, help="Do not search PDQs of flatter images than this.")]
    = DEFAULT_MIN_QUALITY,
    reference: Annotated[bool, typer.Option("--reference", help="Reference-mode PDQ.")] = False,
    variants: Annotated[str, typer.Option(
        "--variants", help="Also match edited copies: borders (framed, letter-boxed; "
        "~1.1x the hashing cost), crops (cropped, captioned, against banks with a crop "
        "ladder; ~2x), all, features (all, plus a second stage for rotations of a few "
        "degrees and crops of 15-20% a side: local features of each picture confirm "
        "candidates within a wide PDQ radius, against banks with a crop ladder; "
        "~4x the hashing cost, about twice all's, docs/crops.md), or off.")] = "off",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per item.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="One CSV row per match.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Report each file's matches: bank, labels, distance and the signal that matched.

    Exact signals (MD5, SHA-1, SHA-256) match exactly; PDQ matches within --threshold
    bits. A match is a lead for a person to assess, not a verdict. Archives (zip, tar,
    tar.gz; nested; also a zip hidden after a JPEG or an .exe stub) are read in memory:
    each member is an item, named archive.zip!/member.jpg. FIFOs, sockets and devices are
    never opened (error special-file). Exit status: 0 when every item could be matched
    (with or without matches), 1 when some file failed.

    [bold]Examples[/bold]

      vigil match /evidence/extracted --dihedral
      vigil match /evidence/extracted --variants all
      vigil match /evidence/extracted --variants features
      vigil match evidence.zip --json
      vigil match --hash pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22
      vigil match photos/ --bank sg-known --json > matches.jsonl
    """
    if not paths and not hashes:
        fail("give files or folders to match, or --hash TYPE:VALUE", 2)
    if as_json and as_csv:
        fail("choose one of --json and --csv", 2)
    if variants not in VARIANT_OPTIONS:
        fail(f"--variants must be one of {', '.join(VARIANT_OPTIONS)}", 2)
    with user_errors():
        bare = [parse_query(h) for h in hashes or []]
        banks = open_banks()
        matcher = open_matcher(banks)
        files: list[FileSignals] = []
        if paths:
            options = HashOptions(mode="reference" if reference else "fast", dihedral=dihedral,
                                  variants=variant_option(variants))
            with progress(quiet) as bar:
                files = list(hash_paths(paths, options, default_jobs(), bar))
        items = [file_queries(f, dihedral) for f in files] + [[q] for q in bare]
        names = [f.path for f in files] + [f"{q.signal_type}:{q.value}" for q in bare]
        outcomes = matcher.match(items, threshold=threshold, bank_names=banks_,
                                 min_quality=min_quality, variants=variant_option(variants))
        _self_leads(banks, outcomes)
        notes = _series_notes(m.entry.labels.series for o in outcomes for m, _ in o.leads())
    failed = 0
    writer = csv.writer(sys.stdout) if as_csv else None
    if writer:
        writer.writerow(CSV_FIELDS)
    for k, (name, outcome) in enumerate(zip(names, outcomes, strict=True)):
        error = files[k].error if k < len(files) else None
        failed += error is not None
        leads = outcome.leads()
        if as_json:
            row: dict[str, Any] = {"item": name,
                                   "matches": [_match_json(m, s, notes) for m, s in leads]}
            if outcome.skipped:
                row["skipped"] = outcome.skipped
            if error:
                row["error"] = {"code": error.code, "message": error.cause}
            typer.echo(json.dumps(row, ensure_ascii=False))
        elif writer:
            for m, _ in leads:
                lab = m.entry.labels
                scheme, value = lab.category or ("", "")
                writer.writerow([name, m.entry.bank, m.entry.origin_agency, m.entry.id,
                                 m.signal_type, m.variant, m.distance, scheme, value,
                                 lab.series or "", lab.victim_status, ";".join(lab.tags)])
        else:
            if not leads:
                typer.echo(f"{shown(name)}: no match" + (f" ({error.code})" if error else ""))
            for m, signals in leads:
                lab = m.entry.labels
                grade = f"{lab.category[0]}:{lab.category[1]}" if lab.category else "uncategorised"
                via = "+".join(signals) + ("" if m.variant == "original" else f" ({m.variant})")
                if m.inliers is not None:
                    via += f", {m.inliers} keypoints agree"
                if m.video is not None:
                    via += f" — {describe_video(m.video)}"
                typer.echo(f"{shown(name)}: MATCH bank {shown(m.entry.bank)} "
                           f"[{shown(m.entry.origin_agency)}] {shown(grade)} "
                           f"series={shown(lab.series or '-')} victim={lab.victim_status} "
                           f"distance={m.distance} via {shown(via)}")
                note = notes.get(lab.series) if lab.series else None
                if note is not None:
                    typer.echo(f"  series {shown(note['summary'])}")
        if error is not None:
            err.print(f"vigil match: {error.code}: {shown(error)}", highlight=False,
                      markup=False, soft_wrap=True)
        for s in outcome.skipped:
            err.print(f"vigil match: {shown(name)}: {shown(s)}", highlight=False, markup=False,
                      soft_wrap=True)
    if failed:
        raise typer.Exit(1)

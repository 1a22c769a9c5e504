"""``vigil bank …``: create banks, fill them from files or interchange formats, export them."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer
from rich.console import Console
from rich.table import Table

from vigil.banks import Banks, EntryReader, StoredEntry
from vigil.banks.entry import VICTIM_STATUSES, EntryRecord, Labels
from vigil.banks.files import records_of_file
from vigil.cli._app import bank_app, err, fail, open_banks, progress, user_errors
from vigil.cli._audit import opened
from vigil.cli._display import markup, shown
from vigil.cli._files import default_jobs, hash_paths
from vigil.matching import parse_query
from vigil.schemes import SCHEMES, parse_category
from vigil.signals import FileSignals, HashOptions

if TYPE_CHECKING:
    from vigil.banks import Banks
    from vigil.banks.model import StoredEntry

FORMAT_NAMES = "csv, vics, ncmec, stopncii, pdq-list, vpdq, vigil"
#: Formats that can only carry some signal types; export leaves the others out (and says so).
ONLY_CARRIES: dict[str, set[str]] = {"pdq-list": {"pdq"}, "vpdq": {"vpdq"}}
CategoryOpt = Annotated[str | None, typer.Option(
    "--category", help="Category as scheme:value — us:0..5, uk:A/B/C, ncmec:A1/A2/B1/B2, "
    "interpol:yes/no.")]
SeriesOpt = Annotated[str | None, typer.Option("--series", help="Series id (one victim or "
                                               "production).")]
VictimOpt = Annotated[str | None, typer.Option(
    "--victim-status", help=f"One of {', '.join(VICTIM_STATUSES)}.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag; repeat for several.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Free note (never shared unless a "
                                             "sharing rule says so).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


def _labels(category: str | None, series: str | None, victim: str | None, tags: list[str] | None,
            note: str | None, base: Labels | None = None) -> Labels:
    base = base or Labels()
    return Labels(
        category=parse_category(category) if category else base.category,
        series=series if series is not None else base.series,
        victim_status=victim if victim is not None else base.victim_status,  # type: ignore[arg-type]
        tags=tuple(tags) if tags else base.tags,
        note=note if note is not None else base.note,
    )


def _hashed(paths: list[Path], reference: bool, quiet: bool, command: str,
            crop_ladder: bool = False) -> list[FileSignals]:
    """Every file under ``paths`` (archive members included) hashed; each failure said on
    stderr: what could not be read adds nothing, a corrupt image adds its exact hashes.
    ``crop_ladder``: with the derived codes a bank with a crop ladder keeps."""
    options = HashOptions(mode="reference" if reference else "fast", crop_ladder=crop_ladder)
    with progress(quiet) as bar:
        results = list(hash_paths(paths, options, default_jobs(), bar))
    for r in results:
        if r.error is not None:
            what = "not added" if r.digests is None else "exact hashes only"
            err.print(f"vigil {command}: {r.error.code}: {shown(r.error)} ({what})",
                      highlight=False, markup=False, soft_wrap=True)
    return results


def _report(result, what: str) -> None:  # type: ignore[no-untyped-def]
    parts = [f"{result.added} added", f"{result.updated} relabelled",
             f"{result.removed} removed", f"{result.unchanged} unchanged"]
    if result.not_found:
        parts.append(f"{result.not_found} not found")
    typer.echo(f"{what}: " + ", ".join(parts))


@bank_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Bank name, unique on this node: 1-100 letters "
                                        "and digits of any script, . _ - ( ) and single "
                                        "spaces.")],
    agency: Annotated[str, typer.Option("--agency", help="Owning agency, e.g. SG-SPF.")],
    description: Annotated[str, typer.Option(help="What the bank holds and why.")] = "",
    scheme: Annotated[str | None, typer.Option(
        help=f"Default category scheme ({', '.join(SCHEMES)}).")] = None,
    crop_ladder: Annotated[bool, typer.Option(
        "--crop-ladder", help="Keep derived PDQ codes of each banked picture (its content "
        "inside any border, and ~38 sub-windows) so cropped, framed and captioned copies "
        "match with `vigil match --variants`. About 40x the PDQ codes per picture; "
        "also local features of each picture (under 8 KiB) for `--variants features`.")]
    = False,
) -> None:
    """Create an empty bank owned by an agency.

    [bold]Example[/bold]

      vigil bank create sg-known --agency SG-SPF --scheme us --description "SPF known CAM"
      vigil bank create sg-crops --agency SG-SPF --crop-ladder
    """
    with user_errors():
        banks = open_banks()
        audit = opened(banks.engine)
        info = banks.create(name, agency, description, scheme, crop_ladder=crop_ladder)
    audit.record("bank.create", info.name)
    typer.echo(f"created bank '{shown(info.name)}' (agency {shown(info.agency)})")


@bank_app.command("list")
def list_banks(as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
               ) -> None:
    """List banks with their owner, size and last change."""
    banks = open_banks().list()
    if as_json:
        typer.echo(json.dumps([{"name": b.name, "agency": b.agency, "entries": b.entries,
                                "last_seq": b.last_seq, "updated_at": b.updated_at.isoformat(),
                                "description": b.description} for b in banks], indent=2))
        return
    if not banks:
        typer.echo("no banks yet: vigil bank create NAME --agency AGENCY")
        return
    t = Table("bank", "agency", "entries", "changes", "updated", "description")
    for b in banks:
        t.add_row(markup(b.name), markup(b.agency), f"{b.entries:,}", f"{b.last_seq:,}",
                  b.updated_at.strftime("%Y-%m-%d %H:%M"), markup(b.description))
    Console().print(t)


@bank_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Bank name.")],
         as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """Counts per signal type, category and victim status. Never prints hashes."""
    from vigil.exchange.rules import mirror_info

    with user_errors():
        banks = open_banks()
        st = banks.stats(name)
        mi = mirror_info(banks.engine, name)
    i = st.info
    mirror = None if mi is None else {
        "origin": mi.origin, "origin_bank": mi.origin_bank, "fields": list(mi.fields),
        "reshare": mi.reshare, "peer": mi.peer, "origin_seq": mi.last_seq,
        "synced_at": mi.synced_at.isoformat() if mi.synced_at else None,
        "active": mi.active, "error": mi.error}
    if as_json:
        typer.echo(json.dumps({"name": i.name, "agency": i.agency, "entries": i.entries,
                               "removed": st.removed, "last_seq": i.last_seq,
                               "series": st.series, "by_signal_type": st.by_signal_type,
                               "by_category": st.by_category,
                               "by_victim_status": st.by_victim_status,
                               "with_features": st.with_features,
                               "mirror": mirror}, indent=2))
        return
    typer.echo(f"bank '{shown(i.name)}' — agency {shown(i.agency)}; "
               f"{shown(i.description)}".rstrip("; "))
    if mi is not None:
        when = f"{mi.synced_at:%Y-%m-%d %H:%M} UTC" if mi.synced_at else "never"
        state = "" if mi.active else " (no longer synced)"
        typer.echo(f"  read-only mirror of {shown(mi.origin)}/{shown(mi.origin_bank)} via "
                   f"peer {shown(mi.peer)}{state}: origin seq {mi.last_seq:,}, last sync "
                   f"{when}; labels {shown(', '.join(mi.fields)) or 'none'}")
        if mi.error:
            typer.echo(f"  last sync error: {shown(mi.error)}")
    typer.echo(f"  entries: {i.entries:,} live, {st.removed:,} removed; {i.last_seq:,} changes; "
               f"{st.series:,} series; updated {i.updated_at:%Y-%m-%d %H:%M} UTC")
    for title, counts in (("signal types", st.by_signal_type), ("categories", st.by_category),
                          ("victim status", st.by_victim_status)):
        if counts:
            body = ", ".join(f"{shown(k)} {v:,}" for k, v in sorted(counts.items()))
            typer.echo(f"  {title}: {body}")
    if st.with_features:
        typer.echo(f"  local features (second stage): {st.with_features:,} pictures")


class _CountingReader:
    """Wraps a binary file to report bytes read, so imports show real progress."""

    def __init__(self, fh: BinaryIO, bar, task) -> None:  # type: ignore[no-untyped-def]
        self.fh, self.bar, self.task = fh, bar, task

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.bar.advance(self.task, len(data))
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self.fh.readline(n)
        self.bar.advance(self.task, len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.fh, name)


@bank_app.command("import")
def import_(
    name: Annotated[str, typer.Argument(help="Bank to import into.")],
    file: Annotated[Path, typer.Argument(help="Interchange file.", exists=True, dir_okay=False)],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"auto, or one of {FORMAT_NAMES}.")]
    = "auto",
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Skip malformed records (each is listed) instead of rolling the "
        "whole import back.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Import entries from a CSV, VICS, NCMEC, StopNCII or PDQ-list file.

    All or nothing by default: the first malformed record stops the import with its file,
    record and field, and the bank is left exactly as it was. With --skip-invalid the
    valid records are imported and every skipped record is listed. Removals in the file
    (NCMEC deletions, StopNCII Withdrawn/Deleted) become tombstones.
    """
    from vigil.formats import FORMATS, FormatError, detect_format

    skipped: list[FormatError] = []
    with user_errors():
        banks = open_banks()
        banks.require(name)
        audit = opened(banks.engine)
        kind = detect_format(file) if fmt == "auto" else fmt
        if kind not in FORMATS:
            fail(f"unknown format {kind!r}; use one of {FORMAT_NAMES}")
        with progress(quiet) as bar, open(file, "rb") as fh:
            task = bar.add_task(f"importing {markup(file.name)} ({kind})",
                                total=file.stat().st_size)
            records = FORMATS[kind].read(_CountingReader(fh, bar, task), name=str(file),
                                         on_error=skipped.append if skip_invalid else None)
            try:
                result = banks.apply(name, records, source=f"import:{kind}:{shown(file.name)}")
            except FormatError as exc:
                audit.record("bank.import", name, outcome="failed", error=str(exc)[:300],
                             format=kind)
                raise
        audit.bank_change("bank.import", name, result, banks.last_seq(name), format=kind)
    for e in skipped:
        err.print(f"vigil: skipped {markup(e)}", highlight=False)
    _report(result, f"imported {shown(file.name)} into '{shown(name)}'")
    if skipped:
        typer.echo(f"{len(skipped)} malformed records skipped (listed on stderr)")


@bank_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Bank to export.")],
    out: Annotated[str, typer.Argument(help="Output file, or - for standard output.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {FORMAT_NAMES}.")] = "csv",
    include_removed: Annotated[bool, typer.Option(
        help="Also write removed entries as removals (formats that carry them).")] = False,
) -> None:
    """Export a bank's entries: the one command that writes a bank's hashes out.

    Hash lists are sensitive (perceptual hashes can be partly inverted): export only to
    where the data may go.

    The file appears only once it is complete: the export is written to a temporary file
    next to OUT and renamed to OUT at the end. If it fails (an entry the format cannot
    carry, a full disk), OUT is left as it was and the exit status is 1. Written to
    standard output, a failure cannot be taken back: the exit status says it, and the
    error is on standard error.
    """
    from vigil.formats import FORMATS

    with user_errors():
        if fmt not in FORMATS:
            fail(f"unknown format {fmt!r}; use one of {FORMAT_NAMES}")
        banks = open_banks()
        info = banks.get(name)
        opened(banks.engine).record("bank.export", name, format=fmt, entries=info.entries,
                                    last_seq=info.last_seq)
        carries = ONLY_CARRIES.get(fmt)
        left_out = 0

        def records() -> Iterator[EntryRecord]:
            nonlocal left_out
            for e in EntryReader(banks.engine).entries(name, include_removed=include_removed):
                if carries is None or e.signal_type in carries:
                    yield e.record()
                else:
                    left_out += 1

        try:
            if out == "-":
                n = FORMATS[fmt].write(records(), sys.stdout.buffer)
                sys.stdout.flush()
            else:
                n = _write_whole(Path(out), lambda fh: FORMATS[fmt].write(records(), fh))
        except (ValueError, OSError) as exc:
            where = "standard output (incomplete)" if out == "-" else \
                f"{shown(out)} left as it was"
            fail(f"export of '{shown(name)}' as {fmt} failed ({where}): {exc}")
    err.print(f"exported {n:,} entries of '{markup(name)}' as {fmt} to {markup(out)}",
              highlight=False)
    if left_out:
        err.print(f"{left_out:,} entries of other signal types left out: {fmt} carries only "
                  f"{', '.join(sorted(carries or ()))}", highlight=False)


def _write_whole(path: Path, write: Callable[[BinaryIO], int]) -> int:
    """``write`` into a temporary file beside ``path``, renamed to ``path`` only once it
    succeeded: a failed export never leaves a complete-looking file behind (nor a
    half-written one: the temporary file is removed)."""
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        with open(tmp, "xb") as fh:
            n = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


@bank_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Bank to add to.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to hash.")],
    category: CategoryOpt = None, series: SeriesOpt = None, victim_status: VictimOpt = None,
    tag: TagOpt = None, note: NoteOpt = None,
    reference: Annotated[bool, typer.Option(
        "--reference", help="Bit-exact reference PDQ (recommended for banks you share).")]
    = False,
    quiet: QuietOpt = False,
) -> None:
    """Hash files into a bank: MD5, SHA-1, SHA-256 and (images) PDQ, with labels.

    Folders are searched recursively; archives (zip, tar, tar.gz; nested) are read in
    memory and their members added. A file that cannot be read (or a FIFO, socket or
    device: special-file) adds nothing and is named on stderr; a corrupt image adds its
    exact hashes. The rest is added, and the exit status is 1 if any file failed.

    [bold]Example[/bold]

      vigil bank add sg-known ./series-17 --category us:1 --series S17 --victim-status identified
    """
    with user_errors():
        labels = _labels(category, series, victim_status, tag, note)
        banks = open_banks()
        ladder = banks.crop_ladder(name)
        audit = opened(banks.engine)
        files = _hashed(paths, reference, quiet, "bank add", ladder)
        records = [rec for r in files for rec in records_of_file(r, labels)]
        result = banks.apply(name, records, source="vigil bank add")
        audit.bank_change("bank.add", name, result, banks.last_seq(name), files=len(files))
    _report(result, f"{len(files)} files into '{shown(name)}'")
    failed = sum(r.error is not None for r in files)
    if failed:
        err.print(f"vigil bank add: {failed} of {len(files)} files failed", highlight=False)
        raise typer.Exit(1)


@bank_app.command("reindex")
def reindex(
    name: Annotated[str, typer.Argument(help="Bank whose entries get a crop ladder.")],
    paths: Annotated[list[Path], typer.Argument(help="The pictures (files or folders) the "
                                                "bank's PDQ entries were made from.")],
    reference: Annotated[bool, typer.Option(
        "--reference", help="Hash with the bit-exact reference PDQ: use it if the bank was "
        "filled with --reference, or a picture's PDQ may differ from its entry's.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Give a bank's existing pictures a crop ladder, so cropped and framed copies match.

    A bank filled before it had a crop ladder holds plain PDQ codes, and a code cannot be
    cropped: this needs the pictures again. Each picture under PATH is hashed with its
    ladder (its trimmed content and ~34 sub-windows, from one decode); the bank's entry
    whose PDQ value equals the picture's plain PDQ gets those derived codes, and the bank
    keeps a ladder from then on (as if made with `vigil bank create --crop-ladder`).
    Labels are left as they are. Each entry that changed is an update in the bank's log:
    the indexes take it at once, and peers pulling the bank's feed receive the codes.

    The report counts the entries that got a ladder, those that had it already, the
    pictures that matched no entry of the bank (another picture, or hashed another
    way: see --reference) and those too flat to bank any derived code.

    [bold]Example[/bold]

      vigil bank reindex sg-known ./series-17 --reference
    """
    from vigil.banks.reindex import attach_ladders

    with user_errors():
        banks = open_banks()
        banks.require(name)
        if banks.is_mirror(name):
            fail(f"bank '{shown(name)}' is a read-only mirror: its origin re-indexes it, and "
                 "the derived codes arrive with its feed")
        audit = opened(banks.engine)
        files = _hashed(paths, reference, quiet, "bank reindex", crop_ladder=True)
        res = attach_ladders(banks, name, files)
        audit.bank_change("bank.reindex", name, res.applied, banks.last_seq(name),
                          files=len(files), pictures=res.pictures, unmatched=res.unmatched,
                          flat=res.flat)
    typer.echo(f"{len(files)} files, {res.pictures} pictures into '{shown(name)}': "
               f"{res.applied.updated} entries got a crop ladder, {res.applied.unchanged} "
               f"had it already, {res.unmatched} pictures matched no entry, {res.flat} too "
               "flat for a ladder")
    failed = sum(r.error is not None for r in files)
    if failed:
        err.print(f"vigil bank reindex: {failed} of {len(files)} files failed", highlight=False)
        raise typer.Exit(1)


def _selected(name: str, paths: list[Path] | None, hashes: list[str] | None,
              series: str | None, reference: bool, quiet: bool,
              ) -> tuple[Banks, list[StoredEntry]]:
    """The live entries named by files, bare hashes or a series."""
    banks = open_banks()
    banks.require(name)
    if not (paths or hashes or series):
        fail("say which entries: PATH..., --hash TYPE:VALUE or --series S", 2)
    keys: set[tuple[str, str]] = set()
    for h in hashes or []:
        q = parse_query(h)
        keys.add((q.signal_type, q.value))
    for r in _hashed(paths or [], reference, quiet, "bank"):
        keys.update((rec.signal_type, rec.value) for rec in records_of_file(r, Labels()))
    reader = EntryReader(banks.engine)
    found = [e for t in {k[0] for k in keys}
             for e in reader.find(t, sorted(v for k, v in keys if k == t), [name])]
    if series:
        found += reader.entries_of_series(name, series)
    return banks, found


@bank_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Bank to remove from.")],
    paths: Annotated[list[Path] | None, typer.Argument(help="Files whose signals to remove.")]
    = None,
    hashes: Annotated[list[str] | None, typer.Option("--hash", help="type:value; repeatable.")]
    = None,
    series: Annotated[str | None, typer.Option(help="Remove a whole series.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Remove entries (as tombstones in the bank's log: peers will see the retraction)."""
    with user_errors():
        banks, found = _selected(name, paths, hashes, series, False, quiet)
        audit = opened(banks.engine)
        recs = [EntryRecord(e.signal_type, e.value, op="remove") for e in found]
        result = banks.apply(name, recs, source="vigil bank remove")
        audit.bank_change("bank.remove", name, result, banks.last_seq(name))
    _report(result, f"bank '{shown(name)}'")


@bank_app.command("label")
def label(
    name: Annotated[str, typer.Argument(help="Bank.")],
    paths: Annotated[list[Path] | None, typer.Argument(help="Files whose entries to relabel.")]
    = None,
    hashes: Annotated[list[str] | None, typer.Option("--hash", help="type:value; repeatable.")]
    = None,
    of_series: Annotated[str | None, typer.Option("--of-series", help="Relabel a whole series.")]
    = None,
    category: CategoryOpt = None, series: SeriesOpt = None, victim_status: VictimOpt = None,
    tag: TagOpt = None, note: NoteOpt = None, quiet: QuietOpt = False,
) -> None:
    """Change labels of existing entries; options not given keep their current value.

    [bold]Example[/bold]

      vigil bank label sg-known --of-series S17 --victim-status identified
    """
    with user_errors():
        if not any(x is not None for x in (category, series, victim_status, tag, note)):
            fail("nothing to change: give --category, --series, --victim-status, --tag or --note",
                 2)
        banks, found = _selected(name, paths, hashes, of_series, False, quiet)
        audit = opened(banks.engine)
        recs = [EntryRecord(e.signal_type, e.value,
                            _labels(category, series, victim_status, tag, note, e.labels),
                            e.quality, "add", e.source_id, e.extra) for e in found]
        result = banks.apply(name, recs, source="vigil bank label")
        audit.bank_change("bank.relabel", name, result, banks.last_seq(name),
                          selected=len(found))
    _report(result, f"bank '{shown(name)}'")

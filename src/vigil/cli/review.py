"""``vigil review``: categorise a scan's unknown material in the browser, keyboard first."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vigil.cli._app import app, err, fail, open_banks, user_errors
from vigil.cli._display import shown

if TYPE_CHECKING:  # loaded only when the command runs (fast --help)
    from vigil.banks import Banks
    from vigil.cli._audit import LocalAudit


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("review")
def review(
    scan_dir: Annotated[Path, typer.Argument(
        help="The --out folder of a finished `vigil scan`.", show_default=False)],
    bank: Annotated[str | None, typer.Option(
        "--bank", "-b", help="The bank decisions are exported to; its default scheme sets "
        "the number keys.")] = None,
    scheme: Annotated[str | None, typer.Option(
        help="Category scheme of the number keys (us, uk, ncmec, interpol); default: the "
        "bank's, else us.")] = None,
    reviewer: Annotated[str | None, typer.Option(
        help="Who reviews (default: $VIGIL_USER or the OS user); named in the ledger and "
        "the audit log.")] = None,
    host: Annotated[str, typer.Option(help="Loopback address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8765,
    clear_minutes: Annotated[float, typer.Option(
        min=0.0, help="Exposure allowed without a break, in minutes.")] = 20.0,
    break_minutes: Annotated[float, typer.Option(
        min=0.0, help="Length of the break that ends a run, in minutes.")] = 5.0,
    daily_minutes: Annotated[float, typer.Option(
        min=0.0, help="Exposure allowed per UTC day, in minutes.")] = 60.0,
    reveal_seconds: Annotated[float, typer.Option(
        min=0.5, max=30.0, help="Longest a held reveal lasts, in seconds.")] = 5.0,
    light_weight: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="How much a second of lightly-blurred viewing counts "
        "against the caps.")] = 0.5,
    second_opinion: Annotated[bool, typer.Option(
        "--second-opinion", help="Give second opinions on what other reviewers decided "
        "(agreement figures and disagreements on the page's Second opinions).")] = False,
    settle: Annotated[bool, typer.Option(
        "--settle", help="Settle disagreements: see only the items whose first decision "
        "and second opinion differ, with both shown, and decide each; exports bank the "
        "settled decision.")] = False,
    admin: Annotated[bool, typer.Option(
        "--admin", help="Also show the totals page (all reviewers together).")] = False,
    export: Annotated[str | None, typer.Option(
        "--export", help="Do not serve: export the decisions into this bank and rewrite "
        "case.vics.json, then exit.")] = None,
) -> None:
    """Review a scan's unknown material: groups ranked as in the report, then single items.

    Serves a page on loopback for one reviewer. Pictures are small greyscale derivatives,
    blurred by default; lower the blur step by step, or hold V to see one clearly for a
    few seconds. Number keys set the category (press ? on the page for every key). Every
    decision is saved in the scan's scan.db the moment it is made. Clear and
    lightly-blurred viewing is counted per reviewer and day, and refused at the caps.

    [bold]Examples[/bold]

      vigil review case-17 --bank sg-review

      vigil review case-17 --bank uk-caid --scheme uk --clear-minutes 15

      vigil review case-17 --export sg-review
    """
    from vigil.banks.model import current_user
    from vigil.cli._audit import opened
    from vigil.review.ledger import Caps
    from vigil.review.scan import ScanFolderError, check_scan_folder

    try:
        check_scan_folder(scan_dir)
    except ScanFolderError as exc:
        fail(str(exc))
    who = (reviewer or current_user()).strip()
    if not who or len(who) > 100 or not who.isprintable():
        fail("--reviewer must be 1-100 visible characters")
    with user_errors():
        banks = open_banks()
        audit = opened(banks.engine)
        if export is not None:
            _export(scan_dir, banks, export, who, audit)
            return
        if settle and second_opinion:
            fail("choose one of --second-opinion and --settle")
        if not _loopback(host):
            fail(f"vigil review serves one reviewer on this machine: listen on a loopback "
                 f"address (127.0.0.1), not {host}")
        caps = Caps(run_seconds=clear_minutes * 60, break_seconds=break_minutes * 60,
                    daily_seconds=daily_minutes * 60, reveal_seconds=reveal_seconds,
                    light_weight=light_weight)
        from vigil.review.service import ReviewError
        from vigil.review.web import review_app

        try:
            web = review_app(scan_dir, banks.engine, who, bank=bank, scheme=scheme, caps=caps,
                             audit=audit.record, admin=admin, second_opinion=second_opinion,
                             settle=settle)
        except ReviewError as exc:
            fail(exc.message)
    import uvicorn

    session = web.state.review
    p = session.progress(who)
    err.print(f"reviewing {shown(scan_dir)} as {shown(who)}: {p['open_units']:,} open steps "
              f"({p['items'] - p['decided']:,} undecided items), {p['known_items']:,} known "
              f"items not shown; scheme {session.scheme}"
              + (f"; export bank {shown(bank)}" if bank else ""), highlight=False, markup=False)
    typer.echo(f"open http://{host}:{port}/ (Ctrl+C stops; decisions are already saved)",
               err=True)
    uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False,
                server_header=False)


def _export(scan_dir: Path, banks: Banks, bank: str, who: str, audit: LocalAudit) -> None:
    from vigil.review.export import export_decisions
    from vigil.review.store import ReviewStore

    store = ReviewStore(scan_dir / "scan.db")
    try:
        decisions, series = store.final_decisions(), store.series_of()
    finally:
        store.close()
    result = export_decisions(scan_dir / "scan.db", decisions, series, banks, bank)
    audit.record("review.export", bank, reviewer=who, items=result.items, added=result.added,
                 updated=result.updated, unchanged=result.unchanged,
                 last_seq=result.last_seq)
    typer.echo(f"exported {result.items:,} decided items to {shown(bank)}: {result.added:,} "
               f"entries added, {result.updated:,} updated, {result.unchanged:,} unchanged; "
               f"{result.not_relevant:,} not relevant (not banked); wrote "
               f"{shown(result.case_file)}")

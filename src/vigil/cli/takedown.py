"""``vigil url …`` (reported URLs) and ``vigil notice …`` (takedown notices, contacts,
the notice loop and its reports)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._app import app, err, fail
from vigil.cli._display import markup

if TYPE_CHECKING:
    from sqlalchemy import Engine

url_app = typer.Typer(
    help="Reported URLs: each tied to a case, fetched safely, hashed in memory and matched "
    "against this node's banks; a match opens a takedown notice.\n\n"
    "  vigil url add https://img.example.com/a.jpg --case C-2026-17\n\n"
    "  vigil url import reported.csv             (columns: url, case)\n\n"
    "  vigil url list --state matched",
    no_args_is_help=True, rich_markup_mode="rich")
notice_app = typer.Typer(
    help="Takedown notices: sent to each host's contact, re-sent every 24 h until a re-check "
    "verifies removal, escalated after the deadline (48 h).\n\n"
    "  vigil notice contact add example.com abuse@example.com --escalation legal@example.com"
    "\n\n  vigil notice run                          (one cycle now; `vigil serve` runs them)"
    "\n\n  vigil notice list --state active\n\n"
    "  vigil notice report --html report.html --json report.json",
    no_args_is_help=True, rich_markup_mode="rich")
contact_app = typer.Typer(help="Where each host's notices go, by registrable domain.",
                          no_args_is_help=True)
app.add_typer(url_app, name="url")
app.add_typer(notice_app, name="notice")
notice_app.add_typer(contact_app, name="contact")
out = Console(highlight=False, soft_wrap=True)


def _engine() -> Engine:
    from vigil.store import make_engine, migrate

    engine = make_engine()
    migrate(engine)
    return engine


@contextmanager
def _guard() -> Iterator[None]:
    """Expected refusals (a bad URL, an unknown notice) as one-line errors."""
    try:
        yield
    except ValueError as exc:  # IntakeError, TakedownError, settings
        fail(str(exc))


def _now() -> datetime:
    from vigil.takedown.clock import clock_from_env

    return clock_from_env().now()


def _json(data: object) -> None:
    typer.echo(json.dumps(data, indent=1, ensure_ascii=False))


# ---- vigil url -----------------------------------------------------------------------------


@url_app.command("add")
def url_add(
    url: Annotated[str, typer.Argument(help="The reported URL (http or https).")],
    case: Annotated[str, typer.Option("--case", help="The case reference it belongs to.")],
) -> None:
    """Report one URL; the notice loop fetches and matches it at its next cycle.

    [bold]Example[/bold]

      vigil url add https://img.example.com/a.jpg --case C-2026-17
    """
    from vigil.cli._audit import local_actor, opened
    from vigil.takedown import intake

    engine = _engine()
    with _guard():
        reported = intake.check(url, case)
        audit = opened(engine)
        row, added = intake.add(engine, reported, local_actor(), _now())
        audit.record("takedown.url.add", str(row.id), host=row.host, case=row.case_ref,
                     added=added)
    out.print(markup(f"url {row.id}: {'added' if added else 'already reported'} "
                     f"(host {row.domain}, case {row.case_ref})"))


@url_app.command("import")
def url_import(
    path: Annotated[Path, typer.Argument(help="CSV file with a header row: url[,case].")],
    case: Annotated[str | None, typer.Option(
        "--case", help="One case for every row (else the file's 'case' column).")] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Add the good rows and list the bad ones (default: a bad row "
        "stops the import and nothing is added).")] = False,
) -> None:
    """Report many URLs from a CSV file (all or nothing unless --skip-invalid).

    [bold]Example[/bold]

      vigil url import reported.csv --case C-2026-17
    """
    from vigil.cli._audit import local_actor, opened
    from vigil.takedown import intake

    engine = _engine()
    with _guard():
        rows, skipped = intake.read_csv(path, case, skip_invalid)
        audit = opened(engine)
        added, known = intake.add_all(engine, rows, local_actor(), _now())
        audit.record("takedown.url.import", path.name, added=added, known=known,
                     skipped=len(skipped))
    for problem in skipped:
        err.print(markup(f"skipped: {problem}"))
    out.print(f"{added} added, {known} already reported, {len(skipped)} skipped")


@url_app.command("list")
def url_list(
    state: Annotated[str | None, typer.Option(
        help="new | matched | no-match | gone | error | refused | failed")] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List reported URLs and where they stand."""
    from vigil.takedown import repo

    rows = repo.list_urls(_engine(), state, case, limit)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r.to_json(), ensure_ascii=False))
        return
    t = Table("id", "state", "host", "case", "checks", "url / last error")
    for r in rows:
        t.add_row(str(r.id), r.state, markup(r.domain), markup(r.case_ref), str(r.checks),
                  markup(r.last_error or r.url))
    out.print(t)


@url_app.command("show")
def url_show(url_id: Annotated[int, typer.Argument(help="The URL's id.")]) -> None:
    """One URL with its fetches (status, content type, final URL, address, time)."""
    from vigil.takedown import repo

    engine = _engine()
    row = repo.get_url(engine, url_id)
    if row is None:
        fail(f"no url {url_id}")
    _json({**row.to_json(), "fetches": repo.fetches(engine, url_id)})


# ---- vigil notice --------------------------------------------------------------------------


@notice_app.command("list")
def notice_list(
    state: Annotated[str | None, typer.Option(
        help="open | sent | acknowledged | removed | closed | active")] = None,
    host: Annotated[str | None, typer.Option(help="Only this registrable domain.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="Only this case.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List notices: state, host, messages sent, and when removal was verified."""
    from vigil.takedown import repo

    rows = repo.list_notices(_engine(), state, host, case, limit)
    if as_json:
        for n in rows:
            typer.echo(json.dumps(n.to_json(), ensure_ascii=False))
        return
    t = Table("id", "state", "host", "sent", "opened", "removed", "problem")
    for n in rows:
        t.add_row(str(n.id), n.state, markup(n.domain), str(n.sends),
                  n.opened_at.strftime("%Y-%m-%d %H:%M"),
                  n.removed_at.strftime("%Y-%m-%d %H:%M") if n.removed_at else "",
                  markup(n.problem or ""))
    out.print(t)


@notice_app.command("show")
def notice_show(notice_id: Annotated[int, typer.Argument(help="The notice's id.")]) -> None:
    """One notice as JSON: lifecycle, messages sent, and the notices it re-uploads."""
    from vigil.takedown import repo

    engine = _engine()
    n = repo.get_notice(engine, notice_id)
    if n is None:
        fail(f"no notice {notice_id}")
    pairs = repo.links(engine, [notice_id])
    _json({**n.to_json(),
           "reupload_of": sorted(b for a, b in pairs if a == notice_id),
           "reuploaded_as": sorted(a for a, b in pairs if b == notice_id),
           "messages": [{"number": s.seq, "kind": s.kind, "to": s.to_addr,
                         "message_id": s.message_id, "state": s.state,
                         "sent_at": s.sent_at.isoformat() if s.sent_at else None}
                        for s in repo.sends(engine, notice_id)]})


def _step(notice_id: int, action: str) -> None:
    from vigil.cli._audit import opened
    from vigil.takedown import repo

    engine = _engine()
    with _guard():
        audit = opened(engine)
        n = repo.set_state(engine, notice_id, action, _now())
        audit.record(f"takedown.notice.{action}", str(notice_id), host=n.domain)
    out.print(f"notice {notice_id}: {n.state}")


@notice_app.command("ack")
def notice_ack(notice_id: Annotated[int, typer.Argument(help="The notice's id.")]) -> None:
    """Record that the host acknowledged a notice (re-checks and re-notices go on until
    removal is verified)."""
    _step(notice_id, "acknowledge")


@notice_app.command("close")
def notice_close(notice_id: Annotated[int, typer.Argument(help="The notice's id.")]) -> None:
    """Close a notice: nothing more is sent or checked for it."""
    _step(notice_id, "close")


@notice_app.command("render")
def notice_render(
    host: Annotated[str, typer.Option(help="The registrable domain, e.g. example.com.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
) -> None:
    """Every active notice of one host, as its contact would read it (text or JSON)."""
    from vigil.node import identity
    from vigil.takedown import render, repo

    engine = _engine()
    ident = identity(engine)
    agency = ident.agency if ident else "LOCAL"
    notices = repo.list_notices(engine, "active", host)
    contact = repo.get_contact(engine, host)
    if as_json:
        _json(render.host_json(notices, agency, contact))
    else:
        typer.echo(render.host_text(notices, agency, contact) or f"no active notice for {host}")


@notice_app.command("run")
def notice_run(
    as_json: Annotated[bool, typer.Option("--json", help="The cycle's counts as JSON.")]
    = False,
) -> None:
    """Run one cycle of the notice loop now: check due URLs, send due notices, verify
    removals. `vigil serve` runs cycles by itself (VIGIL_TAKEDOWN_INTERVAL).

    Messages go to the SMTP relay VIGIL_TAKEDOWN_SMTP (host:port), else to the outbox
    folder VIGIL_TAKEDOWN_OUTBOX (default $VIGIL_HOME/outbox).
    """
    from vigil.cli._app import open_banks, open_matcher
    from vigil.cli._audit import opened
    from vigil.node import identity
    from vigil.store import vigil_home
    from vigil.takedown.worker import make_loop

    banks = open_banks()
    ident = identity(banks.engine)
    if ident is None:
        fail("this node has no identity yet: run `vigil init` first")
    with _guard():
        audit = opened(banks.engine)
        loop = make_loop(banks.engine, open_matcher(banks), ident.agency, vigil_home())
        try:
            stats = loop.cycle()
        finally:
            loop.fetcher.close()
        audit.record("takedown.cycle", None, checked=stats.checked, opened=stats.opened,
                     sent=stats.sent, removed=stats.removed)
    if as_json:
        _json(stats.to_json())
    else:
        out.print(f"checked {stats.checked} url(s), {stats.matched} matched, "
                  f"{stats.opened} notice(s) opened, {stats.sent} message(s) sent, "
                  f"{stats.removed} removal(s) verified, {stats.waiting} waiting")
    for e in stats.errors:
        err.print(markup(f"error: {e}"))


@notice_app.command("pull")
def notice_pull(
    peer: Annotated[str | None, typer.Argument(
        help="The peer to pull from (default: every peer).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="What each pull brought, as JSON.")]
    = False,
) -> None:
    """Pull the notices partners forwarded to this node: those whose host is in this
    node's jurisdiction (the host's contact country there, else its country-code domain).

    Each forwarded URL is reported here under the case "forwarded:AGENCY:notice-N", so
    the notice loop fetches it, matches it against this node's banks and notices the host
    with this node's contacts. Pages are signed by the partner's node key and checked
    before anything is stored. `vigil serve` pulls by itself every
    VIGIL_TAKEDOWN_FORWARD_INTERVAL seconds (default 300; 0: never).
    """
    from vigil.cli._audit import opened
    from vigil.exchange.peers import PeerError, get_peer, list_peers
    from vigil.node import identity
    from vigil.store import vigil_home
    from vigil.takedown.forward import ForwardError, pull

    engine = _engine()
    ident = identity(engine)
    if ident is None:
        fail("this node has no identity yet: run `vigil init` first")
    try:
        peers = [get_peer(engine, peer)] if peer else list_peers(engine)
    except PeerError as exc:
        fail(str(exc))
    audit = opened(engine)
    results, failed = [], 0
    for p in peers:
        try:
            got = pull(engine, vigil_home(), p, ident.agency, _now())
        except (PeerError, ForwardError) as exc:
            failed += 1
            err.print(markup(f"error: {p.name}: {exc}"))
            audit.record("takedown.forward.pull", p.agency, outcome="error", peer=p.name,
                         error=str(exc)[:500])
            continue
        audit.record("takedown.forward.pull", p.agency, peer=p.name, added=got.added,
                     known=got.known)
        results.append({"peer": got.peer, "agency": got.agency, "added": got.added,
                        "known": got.known})
        if not as_json:
            out.print(markup(f"{got.peer} ({got.agency}): {got.added} forwarded URL(s) "
                             f"reported, {got.known} already known"))
    if as_json:
        _json(results)
    if failed:
        raise typer.Exit(1)


@notice_app.command("report")
def notice_report(
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML page here.")]
    = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON here.")]
    = None,
    series: Annotated[str | None, typer.Option(
        help="A series' recirculation report (for a victim's advocate: no content, no "
        "content URLs) instead of the per-host one.")] = None,
) -> None:
    """Time to removal (median, 90th percentile) and re-upload rate per host, and open
    notices past their deadline; or one series' circulation (--series).

    [bold]Examples[/bold]

      vigil notice report --html hosts.html --json hosts.json
      vigil notice report --series S-0042 --html s42.html
    """
    from vigil.takedown import repo, reports

    engine = _engine()
    notices = repo.list_notices(engine, limit=10_000_000)
    pairs = repo.links(engine)
    now = _now()
    report = (reports.series_report(series, notices, pairs, now) if series
              else reports.host_report(notices, pairs, now))
    if html is None and json_out is None:
        _json(report)
        return
    if html is not None:
        html.write_text(reports.html_page(report))
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=1, ensure_ascii=False))


# ---- vigil notice contact ------------------------------------------------------------------


@contact_app.command("add")
def contact_add(
    domain: Annotated[str, typer.Argument(help="Registrable domain, e.g. example.com.")],
    email: Annotated[str, typer.Argument(help="Where notices go (the abuse contact).")],
    escalation: Annotated[str | None, typer.Option(
        help="Second contact for notices past their deadline.")] = None,
    name: Annotated[str, typer.Option(help="Name used in the greeting.")] = "",
    country: Annotated[str | None, typer.Option(help="ISO 3166 country code.")] = None,
) -> None:
    """Add or replace a host's contact; its notices waiting for one go out at the next cycle.

    [bold]Example[/bold]

      vigil notice contact add example.com abuse@example.com --escalation legal@example.com
    """
    from vigil.cli._audit import opened
    from vigil.takedown import contacts, repo

    engine = _engine()
    with _guard():
        c = contacts.check(domain, email, escalation, name, country)
        audit = opened(engine)
        repo.set_contact(engine, c, _now())
        audit.record("takedown.contact.set", c.domain)
    out.print(markup(f"contact for {c.domain}: {c.email}"
                     + (f", escalation {c.escalation_email}" if c.escalation_email else "")))


@contact_app.command("list")
def contact_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List hosts' contacts."""
    from vigil.takedown import repo

    rows = repo.list_contacts(_engine())
    if as_json:
        _json([c.to_json() for c in rows])
        return
    t = Table("domain", "email", "escalation", "name", "country")
    for c in rows:
        t.add_row(markup(c.domain), markup(c.email), markup(c.escalation_email or ""),
                  markup(c.name), c.country or "")
    out.print(t)

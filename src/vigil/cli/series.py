"""``vigil series …``: the series registry of victim identification (docs/victimid.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigil.cli._app import app, err, fail, user_errors
from vigil.cli._display import markup, shown

if TYPE_CHECKING:
    from vigil.victimid.model import SeriesState
    from vigil.victimid.service import Change, Registry

series_app = typer.Typer(
    help="Series for victim identification: create from a scan group, claim (a lease that "
    "deconflicts across agencies), mark identified, and see where a series turned up. "
    "Victims are opaque references (V1, V2), never names; free-text clues stay on this node "
    "unless granted.", no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(series_app, name="series")

Json = Annotated[bool, typer.Option("--json", help="JSON output.")]
Lease = Annotated[str, typer.Option("--lease", help="Lease length: 30d, 12h, 90m or 45s.")]


def registry_here(required: bool = True, signing: bool = True) -> Registry | None:
    """This node's registry (store migrated, identity and, if ``signing``, the signing key
    loaded); None when the node has no identity yet and ``required`` is false."""
    from vigil.node import identity, signing_key
    from vigil.store import make_engine, migrate, vigil_home
    from vigil.victimid.service import Registry

    engine = make_engine()
    migrate(engine)
    ident = identity(engine)
    if ident is None:
        if required:
            fail("this node has no identity yet: run `vigil init` first")
        return None
    return Registry(engine, signing_key(vigil_home()) if signing else None, ident.agency)


def _reg() -> Registry:
    reg = registry_here()
    assert reg is not None
    return reg


def _fields(alias: list[str] | None, victim: list[str] | None, country: str | None,
            confidence: int | None, tag: list[str] | None, offender: bool | None,
            ) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if alias:
        f["aliases"] = alias
    if victim:
        f["victims"] = victim
    if country:
        f["country"] = country.upper()
    if confidence is not None:
        f["country_confidence"] = confidence
    if tag:
        f["tags"] = tag
    if offender is not None:
        f["offender_identified"] = offender
    return f


def _show(s: SeriesState, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(s.as_dict(), indent=2))
        return
    typer.echo(f"{s.id}: {s.status} (origin {s.origin}, since {s.created_at[:10]})")
    typer.echo(f"  {shown(s.summary())}")
    if s.aliases:
        typer.echo(f"  aliases: {', '.join(s.aliases)}")
    if s.victims:
        typer.echo(f"  victims: {', '.join(s.victims)}  offender identified: "
                   f"{'yes' if s.offender_identified else 'no'}")
    if s.country:
        typer.echo(f"  likely country: {s.country} ({s.country_confidence or '?'}%)")
    if s.tags:
        typer.echo(f"  clue tags: {', '.join(s.tags)}")
    for c in s.contested:
        typer.echo(f"  contested claim: {c.agency} until {c.expires}")
    for x in s.conflicts:
        typer.echo(f"  conflict: {x['holder']} held, {x['contender']} claimed at {x['at']}"
                   f" ({'open' if x['open'] else 'resolved'})")


def _changed(action: str, reg: Registry, ch: Change, as_json: bool, **detail: Any) -> None:
    from vigil.cli._audit import opened

    opened(reg.engine).record(action, ch.state.id, status=ch.state.status, seq=ch.seq,
                              **detail)
    if ch.note:
        err.print(f"[yellow]{markup(ch.note)}[/yellow]", highlight=False)
    _show(ch.state, as_json)


@series_app.command("create")
def create(
    series_id: Annotated[str, typer.Argument(help="AGENCY:LOCAL, e.g. SG-SPF:S-000017.")],
    from_scan: Annotated[Path | None, typer.Option(
        "--from-scan", help="A vigil scan's --out folder: add a group's items to --bank.")]
    = None,
    group: Annotated[int | None, typer.Option("--group", help="The scan's group id.")] = None,
    bank: Annotated[str | None, typer.Option("--bank", help="Bank for the group's items "
                                             "(labelled with the series).")] = None,
    category: Annotated[str | None, typer.Option(
        "--category", help="Category of the items as scheme:value (us:1, uk:A, …).")] = None,
    alias: Annotated[list[str] | None, typer.Option(help="ICSE, NCMEC, Project VIC or partner "
                                                    "id (repeatable).")] = None,
    victim: Annotated[list[str] | None, typer.Option(help="Opaque victim ref V1, V2, … "
                                                     "(repeatable).")] = None,
    country: Annotated[str | None, typer.Option(help="Likely country (ISO 3166 alpha-2).")]
    = None,
    confidence: Annotated[int | None, typer.Option(min=0, max=100,
                                                   help="Confidence in it, %.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Clue tag (repeatable).")] = None,
    offender_identified: Annotated[bool | None, typer.Option(
        "--offender-identified/--offender-unidentified", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Create a series in this agency's namespace, optionally from an unknown scan group.

    [bold]Example[/bold]

      vigil series create SG-SPF:S-17 --from-scan case-17 --group 3 --bank sg-s17 --category us:1
    """
    with user_errors():
        reg = _reg()
        records = []
        if from_scan is not None:
            from vigil.schemes import parse_category
            from vigil.victimid.fromscan import group_records

            if group is None or bank is None:
                fail("--from-scan needs --group and --bank", 2)
            records = group_records(from_scan, group, series_id,
                                    parse_category(category) if category else None)
        fields = _fields(alias, victim, country, confidence, tag, offender_identified)
        ch = reg.create(series_id, fields)
        added = 0
        if records and bank is not None:
            from vigil.banks import Banks
            from vigil.cli._audit import opened

            banks = Banks(reg.engine)
            if bank not in banks.names():
                banks.create(bank, reg.agency, "series material (vigil series create)")
            res = banks.apply(bank, records, source=f"vigil series create {series_id}")
            opened(reg.engine).bank_change("bank.add", bank, res, banks.last_seq(bank),
                                           series=series_id)
            added = res.added
    _changed("series.create", reg, ch, as_json, entries=added, bank=bank)
    if added and not as_json:
        typer.echo(f"  {added} entries added to bank {shown(bank or '')}")


@series_app.command("update")
def update(
    series_id: Annotated[str, typer.Argument(help="Series id.")],
    alias: Annotated[list[str] | None, typer.Option(help="Aliases (replace).")] = None,
    victim: Annotated[list[str] | None, typer.Option(help="Victim refs (replace).")] = None,
    country: Annotated[str | None, typer.Option(help="Likely country.")] = None,
    confidence: Annotated[int | None, typer.Option(min=0, max=100)] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Clue tags (replace).")] = None,
    offender_identified: Annotated[bool | None, typer.Option(
        "--offender-identified/--offender-unidentified", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Change a series' shared description (the origin agency only)."""
    with user_errors():
        reg = _reg()
        ch = reg.describe(series_id, _fields(alias, victim, country, confidence, tag,
                                             offender_identified))
    _changed("series.update", reg, ch, as_json)


@series_app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    as_json: Json = False,
) -> None:
    """Every series known here (own and pulled from peers), with its status."""
    with user_errors():
        states = sorted(_reg().states().values(), key=lambda s: s.id)
    states = [s for s in states if status is None or s.status == status]
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in states], indent=2))
        return
    if not states:
        typer.echo("no series")
    for s in states:
        typer.echo(f"{s.id}\t{s.status}\t{shown(s.summary())}")


@series_app.command("show")
def show(series_id: Annotated[str, typer.Argument(help="Series id.")],
         as_json: Json = False) -> None:
    """A series' state: status, claim and contested claims, conflicts, identification."""
    with user_errors():
        reg = _reg()
        s = reg.get(series_id)
        clues = reg.clues(series_id)
    _show(s, as_json)
    if not as_json:
        for c in clues:
            where = "local" if not c.grants else f"granted to {', '.join(c.grants)}"
            typer.echo(f"  clue ({c.origin}, {where}): {shown(c.text)}")


def _lease(text: str) -> Any:
    from vigil.victimid.model import parse_lease

    return parse_lease(text)


@series_app.command("claim")
def claim(series_id: Annotated[str, typer.Argument(help="Series id.")],
          lease: Lease = "30d", as_json: Json = False) -> None:
    """Claim a series for identification work (a lease; renew it, or release it).

    A claim while another agency holds a live lease is recorded as contested: both
    agencies see the conflict after their next sync; the first claim stands everywhere.
    """
    with user_errors():
        reg = _reg()
        ch = reg.claim(series_id, _lease(lease))
    _changed("series.claim", reg, ch, as_json, lease=lease)


@series_app.command("renew")
def renew(series_id: Annotated[str, typer.Argument(help="Series id.")],
          lease: Lease = "30d", as_json: Json = False) -> None:
    """Renew this agency's claim (a new lease from now)."""
    with user_errors():
        reg = _reg()
        ch = reg.renew(series_id, _lease(lease))
    _changed("series.renew", reg, ch, as_json, lease=lease)


@series_app.command("release")
def release(series_id: Annotated[str, typer.Argument(help="Series id.")],
            as_json: Json = False) -> None:
    """Release this agency's claim; the earliest live contested claim takes over."""
    with user_errors():
        reg = _reg()
        ch = reg.release(series_id)
    _changed("series.release", reg, ch, as_json)


@series_app.command("identify")
def identify(
    series_id: Annotated[str, typer.Argument(help="Series id.")],
    contact_role: Annotated[str, typer.Option(
        "--contact-role", help="Whom to contact: a role such as 'VID desk', never a name.")],
    case_ref: Annotated[str, typer.Option("--case-ref", help="This agency's case reference.")]
    = "",
    as_json: Json = False,
) -> None:
    """Mark a series identified: every node shows who, whom to contact, and when."""
    with user_errors():
        reg = _reg()
        ch = reg.identify(series_id, contact_role, case_ref)
    _changed("series.identify", reg, ch, as_json, contact_role=contact_role)


@series_app.command("close")
def close(series_id: Annotated[str, typer.Argument(help="Series id.")],
          as_json: Json = False) -> None:
    """Close a series (its origin only)."""
    with user_errors():
        reg = _reg()
        ch = reg.close(series_id)
    _changed("series.close", reg, ch, as_json)


@series_app.command("clue")
def clue(
    series_id: Annotated[str, typer.Argument(help="Series id.")],
    text: Annotated[str, typer.Argument(help="The clue (stays on this node unless granted).")],
    grant: Annotated[list[str] | None, typer.Option(
        "--grant", help="An agency that may pull this clue (repeatable).")] = None,
) -> None:
    """Record a free-text clue. Without --grant it never leaves this node."""
    from vigil.cli._audit import local_actor, opened

    with user_errors():
        reg = _reg()
        c = reg.add_clue(series_id, text, grant or [], by=local_actor())
        opened(reg.engine).record("series.clue", series_id, clue=c.id, grants=list(c.grants))
    typer.echo(f"clue {c.id} on {series_id}: " +
               ("local" if not c.grants else f"granted to {', '.join(c.grants)}"))


@series_app.command("overlaps")
def overlaps(as_json: Json = False) -> None:
    """Series (local and mirrored) whose entries share signals: candidates to merge."""
    from vigil.victimid import registry

    with user_errors():
        pairs = registry.overlaps(_reg().engine)
    if as_json:
        typer.echo(json.dumps([{"series": [a, b], "shared_signals": n} for a, b, n in pairs],
                              indent=2))
        return
    if not pairs:
        typer.echo("no overlapping series")
    for a, b, n in pairs:
        typer.echo(f"{shown(a)} ~ {shown(b)}: {n} shared signal(s)")


@series_app.command("merge")
def merge(series_id: Annotated[str, typer.Argument(help="This agency's series.")],
          other: Annotated[str, typer.Argument(help="The series to link as an alias.")],
          as_json: Json = False) -> None:
    """Link another series to this agency's series as an alias (each keeps its own id)."""
    with user_errors():
        reg = _reg()
        ch = reg.merge(series_id, other)
    _changed("series.merge", reg, ch, as_json, alias=other)


@series_app.command("notify")
def notify(
    agency: Annotated[str, typer.Argument(help="The agency, e.g. SG-SPF.")],
    off: Annotated[bool, typer.Option("--off", help="Stop sending it hit notices.")] = False,
) -> None:
    """Allow hit notices to an agency: when a scan with --case hits one of its series, it
    learns the series, the item count, the date and the case reference (nothing else).
    Deny by default: with no rule, no notice is queued."""
    from vigil.cli._audit import local_actor, opened
    from vigil.node import check_code
    from vigil.victimid import registry

    with user_errors():
        reg = _reg()
        code = check_code(agency)
        audit = opened(reg.engine)
        changed = registry.set_notify(reg.engine, code, not off, local_actor())
        audit.record("series.notify", code, allow=not off, changed=changed)
    typer.echo(f"hit notices to {code}: {'off' if off else 'on'}")


@series_app.command("hits")
def hits(series_id: Annotated[str | None, typer.Argument(help="Only this series.")] = None,
         as_json: Json = False) -> None:
    """Where this agency's series turned up: hit notices peers sent (pulled at sync)."""
    from vigil.victimid import registry

    with user_errors():
        reg = _reg()
        got = registry.received_hits(reg.engine, series_id)
    if as_json:
        typer.echo(json.dumps([{"series": h.series_id, "finder": h.agency, "items": h.items,
                                "case_ref": h.case_ref, "at": h.at.isoformat()} for h in got],
                              indent=2))
        return
    if not got:
        typer.echo("no hit notices")
    for h in got:
        typer.echo(f"your series {h.series_id} appeared in {h.agency} seizure {h.case_ref}: "
                   f"{h.items} items ({h.at.date().isoformat()})")


@series_app.command("sync")
def sync(peer: Annotated[str | None, typer.Argument(help="Peer (default: all).")] = None,
         as_json: Json = False) -> None:
    """Pull peers' series registries, hit notices and granted clues (verified)."""
    from vigil.cli._audit import opened
    from vigil.store import vigil_home
    from vigil.victimid.sync import sync_all

    with user_errors():
        reg = _reg()
        results = sync_all(reg.engine, vigil_home(), [peer] if peer else None)
        audit = opened(reg.engine)
        for r in results:
            audit.record("series.sync", r.peer, outcome="ok" if r.error is None else "failed",
                         records=r.after - r.before, hits=r.hits, clues=r.clues,
                         error=r.error)
    report_sync(results, as_json)
    if any(r.error for r in results):
        raise typer.Exit(1)


def report_sync(results: list[Any], as_json: bool) -> None:
    """Print registry sync results (also used by ``vigil peer sync``)."""
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2))
        return
    for r in results:
        line = (f"{markup(r.peer)}: series registry of {markup(r.agency)}: seq {r.before} -> "
                f"{r.after} of {r.head}; {r.hits} hit notices, {r.clues} clues")
        err.print(f"[red]{line}: {markup(r.error)}[/red]" if r.error else line,
                  highlight=False)

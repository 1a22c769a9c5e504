"""``vigil op …``: joint operations and their report (docs/victimid.md)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli._app import app, user_errors
from vigil.cli._display import shown

op_app = typer.Typer(help="Joint operations: the series, claims and hits of a period, and "
                     "the report a force puts in its public statement.", no_args_is_help=True,
                     rich_markup_mode="rich")
app.add_typer(op_app, name="op")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text[:20]!r} is not a date (YYYY-MM-DD)",
                                 param_hint=option) from None


@op_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The operation's name.")],
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD).")],
    partners: Annotated[str, typer.Option(help="Partner agencies, comma-separated.")] = "",
    series: Annotated[list[str] | None, typer.Option(
        "--series", help="A series it covers (repeatable; default: every series known).")]
    = None,
) -> None:
    """Create an operation.

    [bold]Example[/bold]

      vigil op create "Operation Tide" --from 2026-11-01 --to 2026-12-31 --partners HK-POL
    """
    from vigil.cli._audit import local_actor, opened
    from vigil.cli.series import registry_here
    from vigil.victimid import operations

    with user_errors():
        reg = registry_here()
        assert reg is not None
        audit = opened(reg.engine)
        op = operations.create(reg.engine, name, _day(start, "--from"), _day(end, "--to"),
                               [p for p in partners.split(",") if p.strip()],
                               series or [], local_actor())
        audit.record("op.create", name, partners=op["partners"], series=len(op["series"]))
    typer.echo(f"operation {shown(name)}: {op['from']} to {op['to']}, partners "
               f"{', '.join(op['partners']) or 'none'}")


@op_app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="The operation's name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for op.html and op.json.")],
) -> None:
    """Write the operation report: op.html (self-contained, no scripts, no network) and
    op.json — victims identified per jurisdiction, series by status, hits across borders,
    a timeline."""
    from vigil.cli.series import registry_here
    from vigil.victimid import operations

    with user_errors():
        reg = registry_here()
        assert reg is not None
        r = operations.report(reg.engine, name, datetime.now().astimezone())
    out.mkdir(parents=True, exist_ok=True)
    (out / "op.json").write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    (out / "op.html").write_text(operations.render_html(r), encoding="utf-8")
    typer.echo(f"wrote {shown(out / 'op.html')} and {shown(out / 'op.json')}")

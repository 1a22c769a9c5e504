"""``vigil selfcases …``: the staff's side of victims' own submissions (counts only; hash
values never leave the bank except through an explicit ``vigil bank export``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from vigil.cli._app import app, fail
from vigil.cli._display import shown

selfcases_app = typer.Typer(help="Victims' self-submitted cases: counts, leads, the page.",
                            no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(selfcases_app, name="selfcases")


def _engine() -> Any:
    from vigil.store import make_engine, migrate

    engine = make_engine()
    migrate(engine)
    return engine


def _line(c: dict[str, Any]) -> str:
    return (f"{c['case']}  {c['state']:<9}  {c['concern']:<8}  items={c['items']} "
            f"signals={c['signals']} matches={c['matches']} takedowns={c['takedowns']}  "
            f"since {c['created_at'][:19]}")


@selfcases_app.command("list")
def list_cases(as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
               ) -> None:
    """Every case with its counts (never a hash value)."""
    from vigil.selfsubmit.cases import list_cases as cases

    for c in cases(_engine()):
        typer.echo(json.dumps(c) if as_json else _line(c))


@selfcases_app.command("show")
def show(case: Annotated[str, typer.Argument(help="The case number (SS-XXXX-XXXX).")],
         as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False) -> None:
    """One case's counts and state."""
    from vigil.selfsubmit.cases import find, staff_view

    engine = _engine()
    case_id = find(engine, case)
    if case_id is None:
        fail(f"no self-submitted case {shown(case[:40])!r} (vigil selfcases list)")
    c = staff_view(engine, case_id)
    if as_json:
        typer.echo(json.dumps(c))
        return
    for k, v in c.items():
        typer.echo(f"{k}: {v}")


@selfcases_app.command("leads")
def leads(limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most.")] = 100,
          as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False) -> None:
    """The review queue of matches on self-submitted hashes, newest first: each is a lead
    for a person to assess (the entries are unverified), never an automatic action."""
    from vigil.selfsubmit.cases import leads as queue

    for row in queue(_engine(), limit):
        typer.echo(json.dumps(row) if as_json else
                   f"lead {row['lead']}: case {row['case']} entry {row['entry_id']} "
                   f"at {row['at'][:19]} by {shown(row['found_by'])}")


@selfcases_app.command("page")
def page(out: Annotated[Path, typer.Argument(help="Folder to write the page into.")],
         api: Annotated[str, typer.Option(help="The node's origin the page sends hashes "
                                               "to, e.g. https://node.example.")],
         ) -> None:
    """Write the self-submission page as a static bundle for a hotline to host."""
    from vigil.selfsubmit.page import write_bundle

    try:
        files = write_bundle(out, api)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {len(files)} files to {out}")

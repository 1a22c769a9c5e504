"""The root Typer app and the helpers every command shares (store, indexes, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from vigil import __version__
from vigil.cli._display import markup

if TYPE_CHECKING:
    from vigil.banks import Banks
    from vigil.banks.indexes import BankIndexes
    from vigil.matching import Matcher

app = typer.Typer(
    help="Vigil: detect known material by its hashes, and share hashes (never the material) "
    "between agencies.\n\nThe store is SQLite in $VIGIL_HOME (default: your data folder) "
    "unless $VIGIL_DATABASE_URL names a PostgreSQL database.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
err = Console(stderr=True)
# here, not in ``bank``: ``peer`` adds the sharing commands to it without importing ``bank``
# (and its hashing stack)
bank_app = typer.Typer(help="Create, fill, inspect and export hash banks.", no_args_is_help=True,
                       rich_markup_mode="rich")
app.add_typer(bank_app, name="bank")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Vigil command line."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error (no traceback: the message names the file or field)."""
    err.print(f"[red]vigil: error:[/red] {markup(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures (bad names, bad input files) into clean one-line errors."""
    from vigil.banks import BankError
    from vigil.formats import FormatError

    try:
        yield
    except (BankError, FormatError, ValueError) as exc:
        fail(str(exc))


def open_banks() -> Banks:
    """The bank layer over the configured store, migrated to the latest schema."""
    from vigil.banks import Banks
    from vigil.store import make_engine, migrate

    engine = make_engine()
    migrate(engine)
    return Banks(engine)


def open_indexes(banks: Banks) -> BankIndexes:
    """The indexes of the configured store, loaded from disk and brought up to date."""
    from vigil.banks.indexes import BankIndexes
    from vigil.store import vigil_home

    return BankIndexes(banks.engine, vigil_home() / "indexes" / "main")


def open_matcher(banks: Banks) -> Matcher:
    """A matcher reading the configured store directly (no caches: one command's run)."""
    from vigil.banks import EntryReader
    from vigil.matching import Matcher

    return Matcher(EntryReader(banks.engine), open_indexes(banks))


class RateColumn(ProgressColumn):
    """Items per second: what an examiner watches on a long job."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def progress(quiet: bool) -> Progress:
    """A progress display on stderr; ``--quiet`` turns it off (Rich hides it off a TTY)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), TextColumn("eta"),
                    TimeRemainingColumn(), console=err, disable=quiet, transient=True)

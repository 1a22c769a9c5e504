"""``vigil index …``: inspect or rebuild the on-disk indexes (the store is the truth)."""

from __future__ import annotations

import time

import typer

from vigil.cli._app import app, open_banks, open_indexes
from vigil.cli._audit import opened
from vigil.cli._display import shown

index_app = typer.Typer(help="Inspect or rebuild the match indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("status")
def status() -> None:
    """Entries per indexed signal type and the last change the indexes include."""
    idx = open_indexes(open_banks())
    sizes = ", ".join(f"{t} {n:,}" for t, n in idx.sizes().items())
    typer.echo(f"indexes at {shown(idx.folder)}: {sizes}; up to change {idx.checkpoint:,}")


@index_app.command("rebuild")
def rebuild() -> None:
    """Recreate every index from the store (after a restore, or if in doubt)."""
    banks = open_banks()
    audit = opened(banks.engine)
    t0 = time.perf_counter()
    idx = open_indexes(banks)
    idx.rebuild()
    sizes = ", ".join(f"{t} {n:,}" for t, n in idx.sizes().items())
    audit.record("index.rebuild", str(idx.folder), sizes=dict(idx.sizes()),
                 checkpoint=idx.checkpoint)
    typer.echo(f"rebuilt in {time.perf_counter() - t0:.1f} s: {sizes}")

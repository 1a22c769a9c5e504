"""A worker's garbage collector runs with the node's thresholds while it serves, and the
process gets its own back when the app stops."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from vigil.api.app import GC_THRESHOLDS, create_app
from vigil.api.runtime.settings import Settings
from vigil.node import init_node
from vigil.store import make_engine, migrate


def test_thresholds_while_serving_and_restored_after(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    migrate(engine)
    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    app = create_app(engine, Settings(home=tmp_path))
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    seen: list[tuple[int, ...]] = []

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            seen.append(gc.get_threshold())

    try:
        asyncio.run(serve())
    finally:
        gc.unfreeze()  # the lifespan froze this test process's objects
        engine.dispose()
    assert seen == [GC_THRESHOLDS]
    assert gc.get_threshold() == before

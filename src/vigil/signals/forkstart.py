"""Starting the hashing workers' fork server before the code that needs it is imported.

Why a module of its own: the fork server takes about a second to be ready (a fresh
interpreter imports the hashing code and loads its compiled kernels: ``vigil.signals.
preload``), and a command that hashes with workers spends about as long importing that same
code and opening its banks before it hashes anything. Started first, the server loads on
the second core meanwhile, and the first file is hashed that much sooner. So this module
imports nothing but the standard library: calling it costs nothing before the imports it
overlaps with. ``vigil.signals.runner`` forks its workers from the same server.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext, SpawnContext

#: What the fork server imports before it forks workers.
PRELOAD = ["vigil.signals.preload"]


def context() -> ForkServerContext | SpawnContext:
    """The start method of hashing workers: the fork server (with ``PRELOAD``) where
    there is one, else spawn."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")  # pragma: no cover - platforms without fork


def start_early(jobs: int) -> None:
    """Start the workers' fork server now, in a background thread, when ``jobs`` > 1.

    Its imports and kernel loading then overlap with whatever the caller does next
    (imports, opening banks, listing the evidence) instead of delaying the first result;
    the runner later finds it running. Nothing is lost if it is not used. A no-op where
    there is no fork server, and when it is already running.
    """
    if jobs <= 1 or "forkserver" not in mp.get_all_start_methods():
        return
    context()
    threading.Thread(target=forkserver.ensure_running, name="vigil-forkserver-start",
                     daemon=True).start()


__all__ = ["PRELOAD", "context", "start_early"]

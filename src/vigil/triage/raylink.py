"""Connecting to Ray, and getting its workers ready while the scan starts.

Why a module of its own, importing nothing of the hashing code: a scan on Ray pays, before
its first result, for connecting to the cluster and for each Ray worker importing the
hashing code and loading its compiled kernels on its first task (about 1.2 s on a
two-node loopback cluster). ``vigil scan --ray`` calls ``connect_early`` first, before it
imports its own code and opens the banks: the workers then warm up (``_warm_up``: the fork
server's preload, ``vigil.signals.preload``) while the driver does that, and the first
real task finds them ready. ``vigil.triage.cluster`` runs the tasks.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

#: the object store of ``--ray local``: results are small (signals and thumbnails)
LOCAL_OBJECT_STORE = 200 * 1024 * 1024
#: how Ray places the scan's tasks: spread over the nodes, not first on the driver's own
#: node until it is busy (Ray's default). With the default, a two-node loopback cluster
#: ran at 0.79-0.92x of `-j 2` from run to run (median 0.83x over 6 pairs), as tasks
#: sometimes queued on one node while the other idled; spread, 0.85-0.93x (bench/RESULTS.md).
SCHEDULING = "SPREAD"


class ClusterError(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached; the message says what to do."""


def spill_folder(out: Path) -> Path:
    """Where ``--ray local`` spills objects: inside the scan's own folder ``out``, so no
    evidence-derived object lands in an unprotected ``/tmp``."""
    return out / "ray-spill"


def _private_token(path: Path) -> None:
    """Token authentication for a private Ray, with a token of its own beside the scan
    (Ray's default would write one into the user's home for every later cluster)."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


def connect(address: str, spill: Path | None = None, cpus: int | None = None) -> Any:
    """Ray, connected: to the cluster at ``address`` (``auto``: the one ``ray start``
    made on this machine), or a private one on this machine (``local``)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == "local" and spill is not None:
        # before Ray is imported: it reads its authentication settings then
        spill.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private_token(spill.parent / "ray-token")
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'vigil[ray]'") from None
    if ray.is_initialized():  # connected early (``connect_early``)
        return ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False, "ignore_reinit_error": True}
    if address == "local":
        kwargs.update(num_cpus=cpus, object_store_memory=LOCAL_OBJECT_STORE)
        if spill is not None:
            kwargs["object_spilling_directory"] = str(spill)
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach a Ray cluster at {address!r}: {exc} (start one "
                           "with `ray start --head`, or give its address)") from None
    return ray


def describe(ray: Any) -> str:
    """What the scan runs on, for the operator: CPUs and live nodes of the cluster (a
    status line: if Ray cannot say, the scan goes on and the line says so)."""
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    except Exception as exc:  # the line is informative only
        return f"a cluster Ray could not describe ({type(exc).__name__})"
    return f"{cpus} CPU{'s' * (cpus != 1)} on {nodes} node{'s' * (nodes != 1)}"


def _warm_up() -> None:
    """A Ray task: load the hashing code and its compiled kernels in this worker."""
    import vigil.signals.preload  # noqa: F401  (importing it is the warm-up)


def connect_early(address: str, spill: Path | None = None, cpus: int | None = None) -> Any:
    """Connect (``connect``) and start one warm-up task per CPU of the cluster, without
    waiting for them: they run while the caller goes on. Returns Ray."""
    ray = connect(address, spill, cpus)
    warm = ray.remote(num_cpus=1, scheduling_strategy=SCHEDULING)(_warm_up)
    for _ in range(max(1, int(ray.cluster_resources().get("CPU", 1)))):
        warm.remote()
    return ray


__all__ = ["LOCAL_OBJECT_STORE", "SCHEDULING", "ClusterError", "connect", "connect_early",
           "describe", "spill_folder"]

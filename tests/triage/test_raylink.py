"""The operator's status line about the cluster (no cluster needed)."""

from __future__ import annotations

from typing import Any

from vigil.triage.raylink import describe


class _Ray:
    def __init__(self, cpus: float, alive: list[bool], fail: bool = False) -> None:
        self.cpus, self.alive, self.fail = cpus, alive, fail

    def cluster_resources(self) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("GCS unreachable")
        return {"CPU": self.cpus, "memory": 1e9}

    def nodes(self) -> list[dict[str, Any]]:
        return [{"Alive": a} for a in self.alive]


def test_counts_cpus_and_live_nodes_only() -> None:
    assert describe(_Ray(32.0, [True, True, False, True, True])) == "32 CPUs on 4 nodes"
    assert describe(_Ray(1.0, [True])) == "1 CPU on 1 node"


def test_a_cluster_that_cannot_say_does_not_stop_the_scan() -> None:
    assert describe(_Ray(2.0, [True], fail=True)) == (
        "a cluster Ray could not describe (ConnectionError)")

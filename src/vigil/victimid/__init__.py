"""Victim identification across borders: a shared series registry, claims that deconflict,
identified status and hit alerts — with no victim's personal data ever leaving a node.

* ``model``: what a series record may hold (checked field by field) and the fold that
  turns a series' records into its state, the same on every node.
* ``registry``: the store behind it (this node's chain and the peers' chains).
* ``service``: the operations (create, claim, renew, release, identify, close, clues).
* ``annotate``: series state for match and scan hits, and the hit notices they queue.
* ``sync``: serving this node's chain to peers and pulling theirs, verified.
"""

from vigil.victimid.model import SeriesError, SeriesState

__all__ = ["SeriesError", "SeriesState"]

"""Victims submit their own hashes (issue 18): pictures are hashed on the victim's device
by the page in ``static/`` and only the hashes reach the node.

* ``items``: what a submission may hold (checked at the door, with limits);
* ``pins``: case numbers, PINs and their slow salted hashes;
* ``keys``: the case's recovery key (ECDSA P-256 from WebCrypto), one-time challenges;
* ``throttle``: rate limits per address and per case, shared by every worker;
* ``cases``: submit, status, withdraw, leads, and the staff's counts;
* ``page``: the static page, served by the node or written as a bundle.
"""

from vigil.selfsubmit.cases import (
    BANK,
    CaseError,
    CaseStatus,
    Submitted,
    WrongSecret,
)

__all__ = ["BANK", "CaseError", "CaseStatus", "Submitted", "WrongSecret"]

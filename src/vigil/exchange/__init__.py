"""Federation: agencies share banks node to node through signed, incremental feeds.

* ``records``: the wire format — canonical record text, hash chain, signed checkpoints.
* ``rules``: what this node shares with which agency (deny by default).
* ``feeds``: serving a bank's feed to a peer agency, page by page.
* ``peers``: the nodes this node pulls from and the origin keys it trusts.
* ``sync``: pulling feeds into read-only mirror banks, verified and resumable.
* ``opinions``: agree/dispute on mirrored entries, shared back to their origin.
"""

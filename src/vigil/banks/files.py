"""A hashed file as bank entries: one rule for every way a file reaches a bank.

``vigil bank add``, the API's upload (``POST /v1/banks/{bank}/entries/file``) and any
later workflow that banks a file (a reviewer's decision, a new series) turn its signals
into the same entries: MD5, SHA-1 and SHA-256 always, PDQ for an image, one ``vpdq`` entry
for a video (its frame hashes travel in ``extra``), all sharing one source id (the file's
SHA-256) so that a match reports them as one lead.
"""

from __future__ import annotations

from vigil.banks.entry import EntryRecord, Labels, Op
from vigil.signals import FileSignals
from vigil.signals.vpdq import vpdq_digest, write_vpdq


def records_of_file(r: FileSignals, labels: Labels, op: Op = "add") -> list[EntryRecord]:
    """One file's signals as entries sharing a source id (its SHA-256); none if unread."""
    if r.digests is None:
        return []
    sid = f"sha256:{r.digests.sha256}"
    extra = {"size": r.digests.size}
    recs = [EntryRecord(t, v, labels, op=op, source_id=sid, extra=extra)
            for t, v in (("md5", r.digests.md5), ("sha1", r.digests.sha1),
                         ("sha256", r.digests.sha256))]
    if r.pdq is not None:
        recs.append(EntryRecord("pdq", r.pdq.hex, labels, r.pdq.quality, op, sid, extra))
    if r.vpdq is not None:
        recs.append(EntryRecord("vpdq", vpdq_digest(r.vpdq), labels, None, op, sid,
                                {**extra, "vpdq": write_vpdq(r.vpdq)}))
    return recs

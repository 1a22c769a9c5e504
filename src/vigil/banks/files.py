"""A hashed file as bank entries: one rule for every way a file reaches a bank.

``vigil bank add``, the API's upload (``POST /v1/banks/{bank}/entries/file``) and any
later workflow that banks a file (a reviewer's decision, a new series) turn its signals
into the same entries: MD5, SHA-1 and SHA-256 always, PDQ for an image, one ``vpdq`` entry
for a video (its frame hashes travel in ``extra``), all sharing one source id (the file's
SHA-256) so that a match reports them as one lead. A picture hashed for a bank with a crop
ladder keeps its derived PDQ codes in the PDQ entry's ``extra`` (``pdq_derived``: [window,
hex, quality] each) and, unless the picture is flat, its local features for the second
stage (``pdq_features``, ``vigil.banks.featured``); like any hash they are sensitive, and
travel and export with it.
"""

from __future__ import annotations

from vigil.banks.derived import MIN_VARIANT_QUALITY, bank_codes
from vigil.banks.entry import EntryRecord, Labels, Op
from vigil.banks.featured import FEATURES_KEY
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
        pdq_extra: dict[str, object] = dict(extra)
        derived = bank_codes((n, h.hex, h.quality) for n, h in r.pdq_derived or ())
        if derived:
            pdq_extra["pdq_derived"] = [list(c) for c in derived]
        if r.pdq_features is not None and r.pdq.quality >= MIN_VARIANT_QUALITY:
            pdq_extra[FEATURES_KEY] = r.pdq_features
        recs.append(EntryRecord("pdq", r.pdq.hex, labels, r.pdq.quality, op, sid, pdq_extra))
    if r.vpdq is not None:
        recs.append(EntryRecord("vpdq", vpdq_digest(r.vpdq), labels, None, op, sid,
                                {**extra, "vpdq": write_vpdq(r.vpdq)}))
    return recs

"""The feed wire format: every way of tampering with a page is caught, naming the record,
and what verified before it is kept."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vigil.exchange.records import (
    SIGN_EVERY,
    Descriptor,
    FeedError,
    WireRecord,
    canonical,
    filter_labels,
    genesis,
    make_body,
    public_key,
    record_hash,
    sign_checkpoint,
    verify_page,
)

D = Descriptor("SG-SPF", "csam", ("category",), False)
KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()


def chain(n: int, d: Descriptor = D, sign: set[int] | None = None) -> list[WireRecord]:
    """``n`` records of feed ``d``, signed where ``sign`` says (default: the last)."""
    out, prev = [], genesis(d)
    sign = sign if sign is not None else {n}
    for seq in range(1, n + 1):
        body = make_body(seq, prev, "add", "md5", f"{seq:032x}", None,
                         {"category": ["us", "1"]}, "2026-11-30T00:00:00+00:00")
        h = record_hash(body)
        out.append(WireRecord(body, h, sign_checkpoint(KEY, d, seq, h) if seq in sign else None))
        prev = h
    return out


def test_a_clean_page_verifies_whole() -> None:
    vp = verify_page(D, PUB, 0, genesis(D), chain(5))
    assert vp.error is None and vp.last_seq == 5 and len(vp.records) == 5


def test_altered_body_is_named_and_earlier_checkpoints_kept() -> None:
    recs = chain(6, sign={2, 4, 6})
    b = json.loads(recs[4].body)
    b["labels"]["category"] = ["us", "5"]
    recs[4] = WireRecord(canonical(b), recs[4].hash, recs[4].sig)
    vp = verify_page(D, PUB, 0, genesis(D), recs)
    assert "record seq 5" in (vp.error or "") and "does not match its hash" in vp.error
    assert vp.last_seq == 4 and [r[0]["seq"] for r in vp.records] == [1, 2, 3, 4]


def test_recomputed_hashes_fail_at_the_signature() -> None:
    recs = chain(4)
    b = json.loads(recs[1].body)
    b["value"] = "f" * 32
    forged, prev = [recs[0]], recs[0].hash
    for i in range(1, 4):  # an attacker recomputes the chain, but cannot re-sign it
        bb = json.loads(recs[i].body) if i != 1 else b
        bb["prev"] = prev
        body = canonical(bb)
        forged.append(WireRecord(body, record_hash(body), recs[i].sig))
        prev = forged[-1].hash
    vp = verify_page(D, PUB, 0, genesis(D), forged)
    assert "record seq 4" in vp.error and "signature" in vp.error
    assert vp.records == [] and vp.last_seq == 0


@pytest.mark.parametrize("how", ["drop", "reorder", "replay", "other-feed", "unsigned",
                                 "wrong-key", "wrong-start"])
def test_dropped_reordered_replayed_or_foreign_records_are_refused(how: str) -> None:
    recs = chain(4)
    after, prev = 0, genesis(D)
    key = PUB
    if how == "drop":
        recs = [recs[0], recs[2], recs[3]]
    elif how == "reorder":
        recs = [recs[1], recs[0], recs[2], recs[3]]
    elif how == "replay":
        after, prev = 4, recs[3].hash
    elif how == "other-feed":
        recs = chain(4, Descriptor("SG-SPF", "csam", ("category", "series"), False))
    elif how == "unsigned":
        recs = [WireRecord(r.body, r.hash, None) for r in recs]
    elif how == "wrong-key":
        key = Ed25519PrivateKey.generate().public_key()
    elif how == "wrong-start":
        after, prev = 1, recs[0].hash
    vp = verify_page(D, key, after, prev, recs)
    assert vp.error is not None and vp.records == [], how
    assert "record seq" in vp.error or "records" in vp.error


def test_every_checkpoint_is_checked_not_only_the_last() -> None:
    recs = chain(SIGN_EVERY + 1, sign={SIGN_EVERY, SIGN_EVERY + 1})
    bad = recs[SIGN_EVERY - 1]
    recs[SIGN_EVERY - 1] = WireRecord(bad.body, bad.hash, "00" * 64)
    vp = verify_page(D, PUB, 0, genesis(D), recs)
    assert f"record seq {SIGN_EVERY}" in vp.error and vp.records == []


def test_labels_filtered_to_the_rule() -> None:
    snap = {"category_scheme": "us", "category": "2", "series": "S1", "note": "secret",
            "victim_status": "identified", "tags": ["a"]}
    assert filter_labels(snap, ("category",)) == {"category": ["us", "2"]}
    assert "note" not in filter_labels(snap, ("category", "series", "tags", "victim_status"))
    assert filter_labels(snap, ("note",)) == {"note": "secret"}


def test_descriptor_and_key_errors_are_clear() -> None:
    with pytest.raises(FeedError, match="unknown label fields"):
        Descriptor.parse({"origin": "A", "bank": "b", "fields": ["password"], "reshare": False})
    with pytest.raises(FeedError, match="64 hex"):
        public_key("abc")
    raw = PUB.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    assert public_key(raw).public_bytes(Encoding.Raw, PublicFormat.Raw).hex() == raw

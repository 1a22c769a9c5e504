"""A picture's derived data in the signed feed record: it round-trips (sign, verify,
apply) under the same hash and signatures as the value; records without it (the old
format) still verify; altering it breaks verification; a malformed or oversized field
is refused naming the record and the field, and what verified before it is kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.featuresets import feature_set
from vigil.banks.derived import DERIVED_WINDOWS
from vigil.banks.travel import KNOWN_WINDOWS, MAX_FEATURES_CHARS, MAX_TRAVELLING_CODES
from vigil.exchange.records import (
    Descriptor,
    FeedError,
    WireRecord,
    canonical,
    genesis,
    make_body,
    parse_feed_list,
    record_hash,
    sign_checkpoint,
    verify_page,
)
from vigil.exchange.verify import check_page, to_entry_records
from vigil.formats import Limits

D = Descriptor("SG-SPF", "crops", ("category",), False)
KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()
AT = "2026-12-06T00:00:00+00:00"
CODES = [[w, f"{k:02x}" * 32, 60 + k] for k, w in enumerate(DERIVED_WINDOWS[:5])]
DERIVED: dict[str, Any] = {"pdq_derived": CODES, "pdq_features": feature_set(1)}


def pdq(k: int) -> str:
    return f"{k:064x}"


def signed(bodies: list[dict[str, Any]], sign_every: int = 1) -> list[WireRecord]:
    """Records chained from the genesis, as an origin sends them: each body gets its seq
    and prev; a checkpoint signature every ``sign_every`` records and on the last."""
    out, prev = [], genesis(D)
    for seq, b in enumerate(bodies, 1):
        body = canonical({"seq": seq, "prev": prev, "at": AT, **b})
        h = record_hash(body)
        sig = seq % sign_every == 0 or seq == len(bodies)
        out.append(WireRecord(body, h, sign_checkpoint(KEY, D, seq, h) if sig else None))
        prev = h
    return out


def add(k: int, derived: Any = None, **more: Any) -> dict[str, Any]:
    b = {"op": "add", "type": "pdq", "value": pdq(k), "quality": 100,
         "labels": {"category": ["us", "1"]}, **more}
    if derived is not None:
        b["derived"] = derived
    return b


def test_the_window_lists_agree() -> None:
    # travel.py lists the names so a peer sync need not load the hashing stack
    assert set(DERIVED_WINDOWS) == KNOWN_WINDOWS


def test_a_record_with_derived_data_round_trips() -> None:
    body = make_body(1, genesis(D), "add", "pdq", pdq(1), 100, {"category": ["us", "1"]}, AT,
                     derived=DERIVED)
    recs = [WireRecord(body, record_hash(body), sign_checkpoint(KEY, D, 1, record_hash(body)))]
    vp = verify_page(D, PUB, 0, genesis(D), recs)
    assert vp.error is None and vp.last_seq == 1
    [entry] = to_entry_records(D, vp.records)
    assert entry.signal_type == "pdq" and entry.value == pdq(1)
    assert entry.extra == DERIVED and entry.labels.category == ("us", "1")


def test_old_format_records_still_verify_and_apply() -> None:
    vp = verify_page(D, PUB, 0, genesis(D), signed([add(1), add(2), add(3, DERIVED)]))
    assert vp.error is None
    entries = to_entry_records(D, vp.records)
    assert [e.extra for e in entries] == [{}, {}, DERIVED]


def test_the_field_goes_in_the_canonical_text_where_the_template_puts_it() -> None:
    body = make_body(1, "p", "add", "pdq", pdq(1), 90, None, AT, derived=DERIVED)
    assert json.loads(body)["derived"] == DERIVED
    assert body == canonical(json.loads(body))  # sorted keys: derived after at


@pytest.mark.parametrize("how", ["code", "quality", "window", "features", "dropped"])
def test_tampering_with_the_field_breaks_verification(how: str) -> None:
    recs = signed([add(1), add(2, DERIVED), add(3)], sign_every=1)
    b = json.loads(recs[1].body)
    if how == "code":
        b["derived"]["pdq_derived"][0][1] = "f" * 64
    elif how == "quality":
        b["derived"]["pdq_derived"][0][2] = 99
    elif how == "window":
        b["derived"]["pdq_derived"][0][0] = "centre-0.15"
    elif how == "features":
        b["derived"]["pdq_features"] = "QUJD"
    else:
        del b["derived"]
    altered = canonical(b)
    # as sent (the hash no longer fits) and with the hash recomputed (the signature fails)
    for rec in (WireRecord(altered, recs[1].hash, recs[1].sig),
                WireRecord(altered, record_hash(altered), recs[1].sig)):
        vp = verify_page(D, PUB, 0, genesis(D), [recs[0], rec, recs[2]])
        assert vp.error is not None and "record seq 2" in vp.error, how
        assert vp.last_seq == 1 and [r[0]["seq"] for r in vp.records] == [1]


def _many(n: int) -> list[list[Any]]:
    return [[w, pdq(k), 80] for k, w in enumerate(sorted(KNOWN_WINDOWS))][:n] + \
        [["trimmed", pdq(99), 80]] * max(0, n - len(KNOWN_WINDOWS))


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("not an object", add(2, ["trimmed", pdq(1), 80]), "derived: must be an object"),
    ("empty object", add(2, {}), "derived: must be an object"),
    ("unknown key", add(2, {"pdq_derived": CODES, "faces": "x"}), "unknown field 'faces'"),
    ("not a list", add(2, {"pdq_derived": "trimmed"}), "pdq_derived: must be a list"),
    ("too many codes", add(2, {"pdq_derived": _many(MAX_TRAVELLING_CODES + 1)}),
     f"more than {MAX_TRAVELLING_CODES} codes"),
    ("unknown window", add(2, {"pdq_derived": [["centre-0.5", pdq(1), 80]]}),
     "pdq_derived[0]: unknown window 'centre-0.5'"),
    ("query window", add(2, {"pdq_derived": [["no-top-0.1", pdq(1), 80]]}),
     "unknown window 'no-top-0.1'"),
    ("window twice", add(2, {"pdq_derived": [CODES[0], CODES[1], CODES[0]]}),
     "pdq_derived[2]: window 'trimmed' named twice"),
    ("short code", add(2, {"pdq_derived": [["trimmed", "ab" * 31, 80]]}),
     "pdq_derived[0]: the code must be 64 lowercase hex"),
    ("upper-case code", add(2, {"pdq_derived": [["trimmed", "AB" * 32, 80]]}),
     "64 lowercase hex"),
    ("quality 101", add(2, {"pdq_derived": [["trimmed", pdq(1), 101]]}),
     "pdq_derived[0]: quality must be a number 0..100"),
    ("quality as text", add(2, {"pdq_derived": [["trimmed", pdq(1), "80"]]}), "quality"),
    ("quality as boolean", add(2, {"pdq_derived": [["trimmed", pdq(1), True]]}), "quality"),
    ("pair, not triple", add(2, {"pdq_derived": [["trimmed", pdq(1)]]}),
     "pdq_derived[0]: must be [window, hex, quality]"),
    ("features too long", add(2, {"pdq_features": "A" * (MAX_FEATURES_CHARS + 4)}),
     f"pdq_features: longer than {MAX_FEATURES_CHARS:,} characters"),
    ("features not base64", add(2, {"pdq_features": "not base64!"}), "not base64"),
    ("features not text", add(2, {"pdq_features": [1, 2]}), "pdq_features: must be a string"),
    ("on an md5", {"op": "add", "type": "md5", "value": "a" * 32, "derived": DERIVED},
     "only an add or update of a pdq entry"),
    ("on a removal", {"op": "remove", "type": "pdq", "value": pdq(2), "derived": DERIVED},
     "only an add or update of a pdq entry"),
]


@pytest.mark.parametrize(("bad", "says"), [(b, s) for _, b, s in BAD],
                         ids=[w for w, _, _ in BAD])
def test_malformed_or_oversized_fields_are_refused_naming_record_and_field(
        bad: dict[str, Any], says: str) -> None:
    recs = signed([add(1, DERIVED), bad, add(3)])
    vp = verify_page(D, PUB, 0, genesis(D), recs)
    assert vp.error is not None
    assert "record seq 2" in vp.error and "field derived" in vp.error, vp.error
    assert says in vp.error, vp.error
    assert "ab" * 16 not in vp.error and pdq(1) not in vp.error  # never a code
    assert vp.last_seq == 1 and [r[0]["seq"] for r in vp.records] == [1]  # kept


def test_the_largest_allowed_field_is_taken() -> None:
    biggest = {"pdq_derived": _many(len(KNOWN_WINDOWS)), "pdq_features": feature_set(3)}
    vp = verify_page(D, PUB, 0, genesis(D), signed([add(1, biggest)]))
    assert vp.error is None
    assert to_entry_records(D, vp.records)[0].extra == biggest


def test_a_page_with_a_bad_field_keeps_what_verified_before_it() -> None:
    recs = signed([add(1, DERIVED), add(2), add(3, {"pdq_derived": [["x", pdq(1), 1]]}),
                   add(4)], sign_every=2)
    page = json.dumps({"feed": D.as_dict(), "head": 4,
                       "records": [r.as_list() for r in recs]}).encode()
    cp = check_page(D, PUB, 0, genesis(D), page, Limits())
    assert cp.last_seq == 2 and [e.value for e in cp.entries] == [pdq(1), pdq(2)]
    assert cp.entries[0].extra == DERIVED
    assert cp.error is not None and "record seq 3" in cp.error and "unknown window" in cp.error


def test_the_feed_list_says_which_banks_keep_a_ladder() -> None:
    def listing(**more: Any) -> bytes:
        return json.dumps({"feeds": [{"bank": "crops", "descriptor": D.as_dict(), "head": 3,
                                      **more}]}).encode()

    assert parse_feed_list(listing(crop_ladder=True), Limits())[0].crop_ladder is True
    assert parse_feed_list(listing(crop_ladder=False), Limits())[0].crop_ladder is False
    old = parse_feed_list(listing(), Limits())[0]  # a peer that predates the field
    assert old.crop_ladder is None and old.descriptor == D and old.bank == "crops"
    with pytest.raises(FeedError, match=r"feeds\[0\].crop_ladder must be true or false"):
        parse_feed_list(listing(crop_ladder="true"), Limits())

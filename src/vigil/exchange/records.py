"""Feed records on the wire: canonical text, hash chain, signed checkpoints.

Why this shape:

* A record travels as the exact canonical JSON text that was hashed (``body``), so a
  receiver hashes the bytes it got — no re-serialisation, no ambiguity between
  implementations. ``body`` carries ``prev``, the hash of the record before it, so the
  records of a feed form a chain that starts at ``genesis(descriptor)``: a record cannot
  be altered, dropped, reordered, replayed or moved to another feed without breaking it.
* The origin signs *checkpoints* — (descriptor, seq, hash) — with its Ed25519 key, not
  every record: a signature covers the whole chain up to it, and verifying one costs
  ~0.2 ms here, too slow for a million records each. Every ``SIGN_EVERY``-th record and
  the last record of every page carry one. A receiver keeps a page's records only up to
  the last checkpoint it verified.
* The descriptor (origin agency, origin bank, label fields, may-pass-on flag) is inside
  every signed checkpoint, so a node that receives a feed through an intermediate node
  still checks it against the origin's key and the origin's own re-share permission.
* A picture's derived data (the codes of its crop ladder, its features) travels in the
  record's ``derived`` field, under the same hash and signatures as its value. Nodes that
  predate the field ignore it (their mirror matches the plain PDQ only); a record whose
  field is malformed or over its limits (``vigil.banks.travel``) is refused.
* A receiver trusts nothing of a page before it checked it: :func:`parse_page` walks the
  page's JSON within limits (nesting, records, record size: ``vigil.formats.limits``)
  before parsing it, and every field has its exact JSON type — a ``seq`` is a number, not
  ``"5"``; a flag a boolean, not ``"false"`` (which Python would call true).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigil.banks.travel import check_derived
from vigil.formats.limits import JsonError, JsonLimits, Limits, load_json

#: label fields a share rule may pass along (the signal itself and its quality always go)
SHAREABLE_FIELDS = ("category", "series", "victim_status", "tags", "note")
DEFAULT_FIELDS = ("category",)
#: a checkpoint signature on every record whose seq is a multiple of this
SIGN_EVERY = 128
OPS = ("add", "update", "remove")
#: the most records a receiver takes in one page (an origin serves at most this many)
MAX_PAGE_RECORDS = 20_000
#: the most feeds one peer may offer in one listing
MAX_FEEDS = 10_000
_AGENCY = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
#: the limits a record body is checked against before it is parsed: a body is an object
#: holding ``labels``, which holds lists (``category``, ``tags``), and ``derived``, which
#: holds a list of lists (``pdq_derived``)
_BODY_DEPTH = 4


class FeedError(Exception):
    """A feed cannot be trusted or applied; the message names the feed and the record."""


def canonical(obj: Any) -> str:
    """The one JSON text of ``obj``: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a feed is: whose bank, which labels it carries, whether it may be passed on."""

    origin: str
    bank: str
    fields: tuple[str, ...]
    reshare: bool

    def text(self) -> str:
        return canonical({"origin": self.origin, "bank": self.bank,
                          "fields": sorted(self.fields), "reshare": self.reshare})

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "bank": self.bank, "fields": sorted(self.fields),
                "reshare": self.reshare}

    @classmethod
    def parse(cls, data: Any) -> Descriptor:
        """From its JSON form (an object, or its text); raises FeedError naming what is
        wrong. Strict: a peer's answer is not trusted to have the right types."""
        if isinstance(data, str):
            try:
                data = load_json(data, JsonLimits(depth=3, values=64, items=16, string=1024))
            except JsonError as exc:
                raise FeedError(f"malformed feed descriptor: {exc}") from None
        if not isinstance(data, dict):
            raise FeedError("malformed feed descriptor: not an object")
        origin, bank = data.get("origin"), data.get("bank")
        fields, reshare = data.get("fields"), data.get("reshare")
        if not isinstance(origin, str) or not _AGENCY.fullmatch(origin):
            raise FeedError("malformed feed descriptor: origin must be an agency code "
                            "(A-Z, 0-9, _ and -, at most 64)")
        if not isinstance(bank, str) or not 1 <= len(bank) <= 100 or not bank.isprintable():
            raise FeedError("malformed feed descriptor: bank must be a name of 1 to 100 "
                            "printable characters")
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise FeedError("malformed feed descriptor: fields must be a list of label names")
        if not isinstance(reshare, bool):
            raise FeedError("malformed feed descriptor: reshare must be true or false")
        bad = [f[:40] for f in fields if f not in SHAREABLE_FIELDS]
        if bad:
            raise FeedError(f"feed descriptor names unknown label fields: {', '.join(bad)}")
        if len(set(fields)) != len(fields):
            raise FeedError("malformed feed descriptor: a label field is named twice")
        return cls(origin, bank, tuple(sorted(fields)), reshare)

    def __str__(self) -> str:
        return f"{self.origin}/{self.bank}"


def genesis(d: Descriptor) -> str:
    """The ``prev`` of a feed's first record: binds the chain to this one feed."""
    return hashlib.sha256(b"vigil-feed\0" + d.text().encode()).hexdigest()


def record_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def checkpoint_message(d: Descriptor, seq: int, hash_: str) -> bytes:
    return b"vigil-checkpoint\0" + canonical(
        {"feed": d.as_dict(), "seq": seq, "hash": hash_}).encode()


def sign_checkpoint(key: Ed25519PrivateKey, d: Descriptor, seq: int, hash_: str) -> str:
    return key.sign(checkpoint_message(d, seq, hash_)).hex()


def public_key(hex_key: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its 64 hex characters (as `vigil init` prints it)."""
    try:
        raw = bytes.fromhex(hex_key.strip())
        if len(raw) != 32:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise FeedError(f"invalid Ed25519 public key {hex_key[:16]!r}…: expected 64 hex "
                        "characters (the key `vigil init` printed)") from None


def check_signature(key: Ed25519PublicKey, d: Descriptor, seq: int, hash_: str,
                    sig: str) -> bool:
    try:
        key.verify(bytes.fromhex(sig), checkpoint_message(d, seq, hash_))
        return True
    except (InvalidSignature, ValueError):
        return False


def make_body(seq: int, prev: str, op: str, signal_type: str, value: str,
              quality: int | None, labels: dict[str, Any] | None, at: str,
              frames: str | None = None, derived: dict[str, Any] | None = None) -> str:
    """A record's canonical text. ``labels`` holds only the fields the feed carries;
    a video (vpdq) entry carries its frame hashes in ``frames`` (vPDQ text), without
    which a mirror could not match it, and a picture its ``derived`` data (the codes of
    its crop ladder, its features), without which a mirror would match only its plain
    PDQ."""
    body: dict[str, Any] = {"seq": seq, "prev": prev, "op": op, "type": signal_type,
                            "value": value, "at": at}
    if frames:
        body["frames"] = frames
    if derived:
        body["derived"] = derived
    if quality is not None:
        body["quality"] = quality
    if labels:
        body["labels"] = labels
    return canonical(body)


def _jstr(s: str) -> str:
    """A JSON string as ``canonical`` writes it: letters and digits (every hex signal)
    need no escaping; anything else goes through ``json``."""
    return f'"{s}"' if s.isalnum() else json.dumps(s, ensure_ascii=False)


def make_body_fast(seq: int, prev: str, op: str, signal_type: str, value: str,
                   quality: int | None, labels_json: str | None, at_json: str,
                   frames: str | None = None, derived_json: str | None = None) -> str:
    """``make_body`` from a fixed template, byte-identical to it (tests compare the two on
    random data): the materialising origin builds a million of these, and ``canonical``
    (a sorted ``json.dumps`` per record) was most of its time.

    ``labels_json`` is ``canonical(labels)`` (or None when there are none) and ``at_json``
    is ``canonical(at)``: both are the same for many records, so callers make them once.
    ``derived_json`` is ``canonical(derived)`` (None: none).
    The keys below are in sorted order, as ``canonical`` sorts them.
    """
    if type(quality) is not int and quality is not None:  # bool, numpy ints: the reference
        return make_body(seq, prev, op, signal_type, value, quality,
                         None if labels_json is None else json.loads(labels_json),
                         json.loads(at_json), frames,
                         None if derived_json is None else json.loads(derived_json))
    return "".join((
        '{"at":', at_json,
        ',"derived":' + derived_json if derived_json else "",
        ',"frames":' + _jstr(frames) if frames else "",
        ',"labels":' + labels_json if labels_json else "",
        ',"op":', _jstr(op), ',"prev":', _jstr(prev),
        "" if quality is None else f',"quality":{quality}',
        f',"seq":{int(seq)},"type":', _jstr(signal_type), ',"value":', _jstr(value), "}"))


def filter_labels(snapshot: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The labels of a change (as the change log keeps them) a feed with ``fields`` carries."""
    out: dict[str, Any] = {}
    if "category" in fields and snapshot.get("category_scheme"):
        out["category"] = [snapshot["category_scheme"], snapshot["category"]]
    if "series" in fields and snapshot.get("series"):
        out["series"] = snapshot["series"]
    if "victim_status" in fields and snapshot.get("victim_status") not in (None, "unknown"):
        out["victim_status"] = snapshot["victim_status"]
    if "tags" in fields and snapshot.get("tags"):
        out["tags"] = list(snapshot["tags"])
    if "note" in fields and snapshot.get("note"):
        out["note"] = snapshot["note"]
    return out


@dataclass(frozen=True, slots=True)
class WireRecord:
    """A record as a page carries it: the body text, its hash, and maybe a signature."""

    body: str
    hash: str
    sig: str | None = None

    def as_list(self) -> list[str | None]:
        return [self.body, self.hash, self.sig]


@dataclass(frozen=True, slots=True)
class Page:
    """A feed page as received: whose feed, its head, and its records (not yet verified)."""

    descriptor: Descriptor
    head: int
    records: list[WireRecord]


MIN_KEYS = 32


def answer_limits(limits: Limits, items: int, per_item: int, depth: int) -> JsonLimits:
    """The limits of a peer's answer listing up to ``items`` things of ``per_item`` values
    each, the longest string being a record (its body). ``items`` also bounds the keys of
    one object, so it is never below :data:`MIN_KEYS` (an answer's objects have a few
    named fields each)."""
    return JsonLimits(depth=depth, values=items * per_item + 64, items=max(items, MIN_KEYS),
                      string=limits.max_record_bytes)


def parse_page(data: bytes | bytearray, limits: Limits) -> Page:
    """A page's bytes as a :class:`Page`, checked within ``limits`` before it is parsed:
    an object of ``feed`` (a descriptor), ``head`` (a number) and ``records``, at most
    ``MAX_PAGE_RECORDS`` of ``[body, hash, signature or null]`` (strings; the hash 64 and
    the signature 128 lowercase hex digits). FeedError names what is wrong."""
    try:
        doc = load_json(bytes(data), answer_limits(limits, MAX_PAGE_RECORDS, 4, depth=4))
    except JsonError as exc:
        raise FeedError(f"malformed page: {exc}") from None
    if not isinstance(doc, dict):
        raise FeedError("malformed page: not an object")
    d = Descriptor.parse(doc.get("feed"))
    head, raw = doc.get("head"), doc.get("records")
    if type(head) is not int or head < 0:
        raise FeedError(f"feed {d}: malformed page: head must be a number")
    if not isinstance(raw, list):
        raise FeedError(f"feed {d}: malformed page: records must be a list")
    records = []
    for i, r in enumerate(raw):
        if not (isinstance(r, list) and len(r) == 3 and isinstance(r[0], str)
                and isinstance(r[1], str) and _HEX64.fullmatch(r[1])
                and (r[2] is None or (isinstance(r[2], str) and _HEX128.fullmatch(r[2])))):
            raise FeedError(f"feed {d}: malformed page: records[{i}] must be [body, hash "
                            "(64 hex), signature (128 hex) or null]")
        records.append(WireRecord(r[0], r[1], r[2]))
    return Page(d, head, records)


@dataclass(frozen=True, slots=True)
class Listed:
    """A feed as a peer lists it: the bank's name there, what the feed is, and whether the
    bank keeps a crop ladder (None: the peer predates the field).

    The flag is not signed: it only decides whether this node indexes the derived codes
    the (signed) records carry, never what a record says."""

    bank: str
    descriptor: Descriptor
    crop_ladder: bool | None = None


def parse_feed_list(data: bytes | bytearray, limits: Limits) -> list[Listed]:
    """``GET /v1/feeds``'s answer as the feeds it lists, checked as :func:`parse_page`
    checks a page."""
    try:
        doc = load_json(bytes(data), answer_limits(limits, MAX_FEEDS, 16, depth=5))
    except JsonError as exc:
        raise FeedError(f"malformed list of feeds: {exc}") from None
    items = doc.get("feeds") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise FeedError("malformed list of feeds: no 'feeds' list")
    out = []
    for i, item in enumerate(items):
        bank = item.get("bank") if isinstance(item, dict) else None
        if not isinstance(bank, str) or not 1 <= len(bank) <= 100:
            raise FeedError(f"malformed list of feeds: feeds[{i}].bank must be a bank name")
        ladder = item.get("crop_ladder")
        if ladder is not None and not isinstance(ladder, bool):
            raise FeedError(f"malformed list of feeds: feeds[{i}].crop_ladder must be true "
                            "or false")
        out.append(Listed(bank, Descriptor.parse(item.get("descriptor")), ladder))
    return out


def parse_body(text: str, limits: Limits = Limits()) -> dict[str, Any]:  # noqa: B008 (frozen)
    """A record's body as data, checked within ``limits`` before it is parsed and field by
    field after: ``seq`` a number, ``prev``, ``op``, ``type``, ``value`` and ``at``
    strings, ``quality`` a number 0..100 if present, ``frames`` a string, ``labels`` an
    object of the shareable fields with their types, ``derived`` (an add or update of a
    pdq entry only) derived data within its limits (``vigil.banks.travel``). ValueError
    says which field."""
    lim = JsonLimits(depth=_BODY_DEPTH, values=limits.max_record_values,
                     items=limits.max_record_values, string=limits.max_record_bytes)
    body = load_json(text, lim)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    seq = body.get("seq")
    if type(seq) is not int or seq < 1:
        raise ValueError("seq must be a positive number")
    for key in ("prev", "op", "type", "value", "at"):
        if not isinstance(body.get(key), str):
            raise ValueError(f"{key} must be a string")
    if body["op"] not in OPS:
        raise ValueError(f"unknown op {body['op'][:20]!r}")
    q = body.get("quality")
    if q is not None and (type(q) is not int or not 0 <= q <= 100):
        raise ValueError("quality must be a number 0..100")
    if "frames" in body and not isinstance(body["frames"], str):
        raise ValueError("frames must be a string")
    labels = body.get("labels")
    if labels is not None:
        _check_labels(labels)
    if "derived" in body:
        if body["type"] != "pdq" or body["op"] == "remove":
            raise ValueError("field derived: only an add or update of a pdq entry "
                             "carries it")
        try:
            body["derived"] = check_derived(body["derived"])
        except ValueError as exc:
            raise ValueError(f"field derived: {exc}") from None
    return body


def _check_labels(labels: Any) -> None:
    if not isinstance(labels, dict):
        raise ValueError("labels must be an object")
    for key, v in labels.items():
        if key not in SHAREABLE_FIELDS:
            raise ValueError(f"labels: unknown field {key[:40]!r}")
        if key == "category":
            ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)
        elif key == "tags":
            ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
        else:
            ok = isinstance(v, str)
        if not ok:
            raise ValueError(f"labels.{key} has the wrong type")


@dataclass(frozen=True, slots=True)
class VerifiedPage:
    """The part of a page that verified: parsed bodies up to the last good checkpoint."""

    records: list[tuple[dict[str, Any], WireRecord]]
    last_seq: int
    last_hash: str
    #: why the rest of the page was refused (None: the whole page verified)
    error: str | None


def verify_page(d: Descriptor, key: Ed25519PublicKey, after: int, prev_hash: str,
                records: list[WireRecord], limits: Limits = Limits(),  # noqa: B008 (frozen)
                ) -> VerifiedPage:
    """Check a page against the chain so far (``after``, ``prev_hash``) and the origin key.

    Returns what can be kept — records up to the last verified checkpoint before any
    problem — and the problem, naming the record. A record is refused if its body is not
    what its hash says, is not a well-formed body (:func:`parse_body`, within ``limits``),
    its ``prev`` is not the hash before it, its ``seq`` is not the next one, or a
    checkpoint signature on it does not verify against the origin's key.
    """
    kept: list[tuple[dict[str, Any], WireRecord]] = []
    pending: list[tuple[dict[str, Any], WireRecord]] = []
    seq, prev = after, prev_hash
    good_seq, good_hash = after, prev_hash
    where = f"feed {d}"
    for rec in records:
        expect = seq + 1
        if record_hash(rec.body) != rec.hash:
            return VerifiedPage(kept, good_seq, good_hash,
                                f"{where} record seq {expect}: its content does not match its "
                                "hash (altered in transit?)")
        try:
            body = parse_body(rec.body, limits)
            rseq, rprev = body["seq"], body["prev"]
        except ValueError as exc:
            return VerifiedPage(kept, good_seq, good_hash,
                                f"{where} record seq {expect}: malformed record ({exc})")
        if rseq != expect:
            return VerifiedPage(kept, good_seq, good_hash,
                                f"{where} record seq {rseq}: expected seq {expect} (a record "
                                "was dropped, reordered or replayed)")
        if rprev != prev:
            return VerifiedPage(kept, good_seq, good_hash,
                                f"{where} record seq {rseq}: does not chain to the record "
                                "before it (dropped, reordered or replayed records)")
        seq, prev = rseq, rec.hash
        pending.append((body, rec))
        if rec.sig is not None:
            if not check_signature(key, d, rseq, rec.hash, rec.sig):
                return VerifiedPage(kept, good_seq, good_hash,
                                    f"{where} record seq {rseq}: the checkpoint signature does "
                                    f"not verify against {d.origin}'s key (records "
                                    f"{good_seq + 1}-{rseq} refused)")
            kept += pending
            pending = []
            good_seq, good_hash = seq, prev
    if pending:
        return VerifiedPage(kept, good_seq, good_hash,
                            f"{where}: records {good_seq + 1}-{seq} carry no checkpoint "
                            "signature; refused")
    return VerifiedPage(kept, good_seq, good_hash, None)

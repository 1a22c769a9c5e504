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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: label fields a share rule may pass along (the signal itself and its quality always go)
SHAREABLE_FIELDS = ("category", "series", "victim_status", "tags", "note")
DEFAULT_FIELDS = ("category",)
#: a checkpoint signature on every record whose seq is a multiple of this
SIGN_EVERY = 128
OPS = ("add", "update", "remove")


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
        """From its JSON form; raises FeedError naming what is wrong."""
        if isinstance(data, str):
            data = json.loads(data)
        try:
            fields = tuple(sorted(data["fields"]))
            d = cls(str(data["origin"]), str(data["bank"]), fields, bool(data["reshare"]))
        except (KeyError, TypeError) as exc:
            raise FeedError(f"malformed feed descriptor: {exc}") from None
        bad = [f for f in fields if f not in SHAREABLE_FIELDS]
        if bad:
            raise FeedError(f"feed descriptor names unknown label fields: {', '.join(bad)}")
        return d

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
              frames: str | None = None) -> str:
    """A record's canonical text. ``labels`` holds only the fields the feed carries;
    a video (vpdq) entry carries its frame hashes in ``frames`` (vPDQ text), without
    which a mirror could not match it."""
    body: dict[str, Any] = {"seq": seq, "prev": prev, "op": op, "type": signal_type,
                            "value": value, "at": at}
    if frames:
        body["frames"] = frames
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
                   frames: str | None = None) -> str:
    """``make_body`` from a fixed template, byte-identical to it (tests compare the two on
    random data): the materialising origin builds a million of these, and ``canonical``
    (a sorted ``json.dumps`` per record) was most of its time.

    ``labels_json`` is ``canonical(labels)`` (or None when there are none) and ``at_json``
    is ``canonical(at)``: both are the same for many records, so callers make them once.
    The keys below are in sorted order, as ``canonical`` sorts them.
    """
    if type(quality) is not int and quality is not None:  # bool, numpy ints: the reference
        return make_body(seq, prev, op, signal_type, value, quality,
                         None if labels_json is None else json.loads(labels_json),
                         json.loads(at_json), frames)
    return "".join((
        '{"at":', at_json,
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
class VerifiedPage:
    """The part of a page that verified: parsed bodies up to the last good checkpoint."""

    records: list[tuple[dict[str, Any], WireRecord]]
    last_seq: int
    last_hash: str
    #: why the rest of the page was refused (None: the whole page verified)
    error: str | None


def verify_page(d: Descriptor, key: Ed25519PublicKey, after: int, prev_hash: str,
                records: list[WireRecord]) -> VerifiedPage:
    """Check a page against the chain so far (``after``, ``prev_hash``) and the origin key.

    Returns what can be kept — records up to the last verified checkpoint before any
    problem — and the problem, naming the record. A record is refused if its body is not
    what its hash says, its ``prev`` is not the hash before it, its ``seq`` is not the next
    one, or a checkpoint signature on it does not verify against the origin's key.
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
            body = json.loads(rec.body)
            rseq, rprev = int(body["seq"]), str(body["prev"])
            if body["op"] not in OPS:
                raise ValueError(f"unknown op {body['op']!r}")
        except (ValueError, KeyError, TypeError) as exc:
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

"""The feed wire format: every way of tampering with a page is caught, naming the record,
and what verified before it is kept; a page, a descriptor and a record body are checked
within limits and with exact JSON types before they are trusted, also against a hostile
peer over HTTP (a gzip bomb, deep nesting, ill-typed fields), and the verifier is fuzzed
under a memory cap."""

from __future__ import annotations

import gzip
import json
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.formats import fuzz
from vigil.exchange.peers import add_peer
from vigil.exchange.records import (
    MAX_PAGE_RECORDS,
    SIGN_EVERY,
    Descriptor,
    FeedError,
    WireRecord,
    canonical,
    filter_labels,
    genesis,
    make_body,
    parse_page,
    public_key,
    record_hash,
    sign_checkpoint,
    verify_page,
)
from vigil.exchange.sync import sync_peer
from vigil.formats import Limits
from vigil.node import init_node
from vigil.store.models import Entry

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


# ----------------------------------------------------------------------------- strict parsing

def _page(records: list[WireRecord], d: Descriptor = D, head: object = None) -> bytes:
    return json.dumps({"feed": d.as_dict(), "head": len(records) if head is None else head,
                       "records": [r.as_list() for r in records]}).encode()


@pytest.mark.parametrize(("descriptor", "says"), [
    ({"origin": "SG-SPF", "bank": "csam", "fields": [], "reshare": "false"}, "reshare"),
    ({"origin": "SG-SPF", "bank": "csam", "fields": [], "reshare": 0}, "reshare"),
    ({"origin": "sg spf", "bank": "csam", "fields": [], "reshare": False}, "origin"),
    ({"origin": ["SG"], "bank": "csam", "fields": [], "reshare": False}, "origin"),
    ({"origin": "SG-SPF", "bank": "", "fields": [], "reshare": False}, "bank"),
    ({"origin": "SG-SPF", "bank": "a\nb", "fields": [], "reshare": False}, "bank"),
    ({"origin": "SG-SPF", "bank": "csam", "fields": "category", "reshare": False}, "fields"),
    ({"origin": "SG-SPF", "bank": "csam", "fields": ["tags", "tags"], "reshare": False},
     "twice"),
    ({"origin": "SG-SPF", "bank": "csam"}, "fields"),
    ([1, 2], "not an object"),
    ('{"origin": ' + "[" * 100_000, "malformed feed descriptor"),
])
def test_descriptors_are_strict(descriptor: object, says: str) -> None:
    with pytest.raises(FeedError, match=says):
        Descriptor.parse(descriptor)


@pytest.mark.parametrize(("page", "says"), [
    (lambda: b'{"feed": ' + b"[" * 200_000, "nested deeper than 4 levels"),
    (lambda: _page(chain(1), head="1"), "head must be a number"),
    (lambda: _page(chain(1), head=True), "head must be a number"),
    (lambda: json.dumps({"feed": D.as_dict(), "head": 1, "records": [["{}", "ab", None]]}
                        ).encode(), r"records\[0\] must be"),
    (lambda: json.dumps({"feed": D.as_dict(), "head": 1, "records": [["{}"] * 4]}).encode(),
     r"records\[0\] must be"),
    (lambda: json.dumps({"feed": D.as_dict(), "head": 1,
                         "records": [["{}", "a" * 64, None]] * (MAX_PAGE_RECORDS + 1)}
                        ).encode(), f"more than {MAX_PAGE_RECORDS:,} items"),
    (lambda: b"[1, 2]", "not an object"),
    (lambda: b"\xff\xfe", "invalid JSON"),
])
def test_pages_are_checked_before_they_are_trusted(page, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FeedError, match=says):
        parse_page(page(), Limits())


def test_a_clean_page_parses() -> None:
    recs = chain(3)
    p = parse_page(_page(recs), Limits())
    assert p.descriptor == D and p.head == 3 and p.records == recs


def _signed(bodies: list[dict]) -> list[WireRecord]:  # type: ignore[type-arg]
    """Records a (hostile) origin would send: chained and signed with its key."""
    out, prev = [], genesis(D)
    for i, b in enumerate(bodies, 1):
        body = canonical({**b, "prev": prev}) if "prev" not in b else canonical(b)
        h = record_hash(body)
        out.append(WireRecord(body, h, sign_checkpoint(KEY, D, i, h) if i == len(bodies)
                              else None))
        prev = h
    return out


GOOD = {"seq": 1, "op": "add", "type": "md5", "value": "a" * 32, "at": "2026-12-01T00:00:00Z"}


@pytest.mark.parametrize(("change", "says"), [
    ({"seq": "1"}, "seq must be a positive number"),
    ({"seq": True}, "seq must be a positive number"),
    ({"seq": 1.0}, "seq must be a positive number"),
    ({"op": ["add"]}, "op must be a string"),
    ({"op": "upsert"}, "unknown op"),
    ({"value": 5}, "value must be a string"),
    ({"quality": "90"}, "quality must be a number"),
    ({"quality": 101}, "quality must be a number"),
    ({"frames": ["1,2"]}, "frames must be a string"),
    ({"labels": ["us", "1"]}, "labels must be an object"),
    ({"labels": {"tags": "abc"}}, "labels.tags has the wrong type"),
    ({"labels": {"category": ["us"]}}, "labels.category has the wrong type"),
    ({"labels": {"secret": "x"}}, "labels: unknown field"),
    ({"labels": {"tags": [[[[["x"]]]]]}}, "nested deeper than 4 levels"),
])
def test_record_bodies_are_strict(change: dict, says: str) -> None:  # type: ignore[type-arg]
    vp = verify_page(D, PUB, 0, genesis(D), _signed([{**GOOD, **change}]))
    assert vp.records == [] and vp.error is not None
    assert "record seq 1: malformed record" in vp.error and says in vp.error


def test_a_record_body_past_the_record_limit_is_refused() -> None:
    big = {**GOOD, "frames": "0,100," + "f" * 64 + ",0.0\n" * 10}
    lim = Limits(max_record_bytes=100)
    vp = verify_page(D, PUB, 0, genesis(D), _signed([big]), lim)
    assert vp.records == [] and "a string longer than 100 characters" in (vp.error or "")


def test_fuzz_the_feed_verifier_briefly() -> None:
    fuzz.run("feeds", examples=12)


@pytest.mark.slow
def test_fuzz_the_feed_verifier_long(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("long fuzzing: run with -m slow")
    fuzz.run("feeds", examples=1000, timeout=3600)


# ----------------------------------------------------------------------------- a hostile peer

class FakePeer:
    """A peer that answers what a test tells it to: the receiver's side under attack."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.answers: dict[str, tuple[bytes, dict[str, str]]] = {}
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/v1/node":
                    body, headers = json.dumps({
                        "agency": "HK-POL", "name": "HK", "jurisdiction": "HK",
                        "public_key": peer.public}).encode(), {}
                else:
                    body, headers = peer.answers.get(path, (b'{"detail": "no"}', {}))
                self.send_response(200 if path in peer.answers or path == "/v1/node"
                                   else 404)
                for k, v in {"content-type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def offer(self, descriptor: object, bank: str = "csam") -> None:
        self.answers["/v1/feeds"] = (json.dumps({"feeds": [
            {"bank": bank, "descriptor": descriptor, "head": 1}]}).encode(), {})
        self.answers["/v1/opinions"] = (b'{"opinions": []}', {})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


HKD = Descriptor("HK-POL", "csam", ("category", "tags"), False)


@pytest.fixture
def hostile(engine: Engine, tmp_path: Path) -> Iterator[tuple[FakePeer, Engine, Path]]:
    """This node (SG-SPF) with a peer "hk" that is a FakePeer."""
    init_node(engine, tmp_path, "SG-SPF", "Singapore Police Force", "SG")
    peer = FakePeer()
    try:
        add_peer(engine, tmp_path, "hk", peer.url, peer.public, "vgl_" + "x" * 43)
        yield peer, engine, tmp_path
    finally:
        peer.close()


def _hk_records(bodies: list[dict], key: Ed25519PrivateKey) -> list[list[str | None]]:  # type: ignore[type-arg]
    out, prev = [], genesis(HKD)
    for i, b in enumerate(bodies, 1):
        body = canonical({**b, "prev": prev})
        h = record_hash(body)
        out.append([body, h, sign_checkpoint(key, HKD, i, h) if i == len(bodies) else None])
        prev = h
    return out


def test_a_gzip_bomb_of_a_page_is_refused_in_bounded_memory(
        hostile: tuple[FakePeer, Engine, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    peer, engine, home = hostile
    monkeypatch.setenv("VIGIL_MAX_FEED_PAGE_BYTES", str(1 << 20))
    peer.offer(HKD.as_dict())
    bomb = gzip.compress(b'{"feed": ' + b" " * (256 << 20) + b"}", compresslevel=9)
    assert len(bomb) < 1 << 20
    peer.answers["/v1/feeds/csam"] = (bomb, {"content-encoding": "gzip"})
    tracemalloc.start()
    try:
        out = sync_peer(engine, home, "hk")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not out.ok
    [feed] = out.feeds
    assert "larger than 1,048,576 bytes (VIGIL_MAX_FEED_PAGE_BYTES)" in (feed.error or "")
    assert peak < 32 << 20, f"{peak / 1e6:.0f} MB traced"


@pytest.mark.parametrize(("answer", "says"), [
    ("page", "nested deeper than 4 levels"),
    ("descriptor", "reshare must be true or false"),
    ("tags", "labels.tags has the wrong type"),
    ("opinions", "opinions[0].at must be an ISO 8601 date"),
    ("feeds", "nested deeper than 5 levels"),
])
def test_a_hostile_peer_gets_a_named_error_and_changes_nothing(
        hostile: tuple[FakePeer, Engine, Path], answer: str, says: str) -> None:
    peer, engine, home = hostile
    peer.offer(HKD.as_dict())
    good = {**GOOD, "labels": {"category": ["us", "1"], "tags": ["a"]}}
    peer.answers["/v1/feeds/csam"] = (json.dumps({"feed": HKD.as_dict(), "head": 1,
                                                  "records": _hk_records([good], peer.key)}
                                                 ).encode(), {})
    if answer == "page":
        peer.answers["/v1/feeds/csam"] = (b'{"feed": ' + b"[" * 100_000, {})
    elif answer == "descriptor":
        peer.offer({**HKD.as_dict(), "reshare": "false"})
    elif answer == "tags":
        bad = {**good, "labels": {"tags": "abc"}}
        peer.answers["/v1/feeds/csam"] = (json.dumps({
            "feed": HKD.as_dict(), "head": 1, "records": _hk_records([bad], peer.key)}
        ).encode(), {})
    elif answer == "opinions":
        peer.answers["/v1/opinions"] = (json.dumps({"opinions": [{
            "id": 1, "signal_type": "md5", "value": "a" * 32, "opinion": "dispute",
            "reason": "x", "at": "yesterday", "origin": "SG-SPF", "origin_bank": "b"}]}
        ).encode(), {})
    elif answer == "feeds":
        peer.answers["/v1/feeds"] = (b'{"feeds": ' + b"[" * 100_000, {})
    out = sync_peer(engine, home, "hk")
    errors = [out.error or ""] + [f.error or "" for f in out.feeds]
    assert not out.ok and any(says in e for e in errors), errors
    with Session(engine) as s:
        mirrored = s.scalar(select(func.count()).select_from(Entry))
    assert mirrored == (1 if answer == "opinions" else 0)

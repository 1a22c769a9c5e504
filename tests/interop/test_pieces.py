"""The parts of vigil.interop one by one: opinions, credentials, the record mapping, vPDQ
text, the vigil_vpdq signal type, the URL fetcher's allowlist, and the feed reader's
refusals against a real node."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.exchange.conftest import FedNode
from tests.interop.conftest import PEER, bank_file
from vigil.banks.entry import EntryRecord, Labels
from vigil.exchange.records import FeedError
from vigil.interop.feed import FeedReader
from vigil.interop.fetch import ENV, FetchRefused, fetch
from vigil.interop.opinions import opinion_of
from vigil.interop.vpdqjson import from_pytx, to_pytx
from vigil.signals.vpdq import VpdqFrame, write_vpdq

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "0" * 63 + "1"


def test_categories_become_opinions() -> None:
    assert opinion_of(("us", "1")) == opinion_of(("uk", "C")) == "positive"
    assert opinion_of(("ncmec", "B2")) == opinion_of(("interpol", "yes")) == "positive"
    assert opinion_of(("us", "4")) == opinion_of(("us", "5")) == "negative"
    assert opinion_of(None) == opinion_of(("us", "0")) == opinion_of(("us", "3")) == "seed"
    assert opinion_of(("interpol", "no")) == "seed"


def test_vpdq_text_round_trips_and_refuses_what_is_not_vpdq() -> None:
    frames = [VpdqFrame(0, 100, PDQ_A, 0.0), VpdqFrame(1, 80, PDQ_B, 1.0)]
    text = to_pytx(frames)
    assert text == f'["{PDQ_A},100,0.000", "{PDQ_B},80,1.000"]'
    assert write_vpdq(from_pytx(text)) == write_vpdq(frames)
    for bad, says in (("nope", "JSON"), ("[]", "at least one"), ("[1]", "list of"),
                      (f'["{PDQ_A},100"]', "frame 0"), (f'["{PDQ_A[:60]},100,0.0"]', "PDQ")):
        with pytest.raises(ValueError, match=says) as e:
            from_pytx(bad)
        assert PDQ_A not in str(e.value)


@pytest.fixture
def pytx() -> Any:
    """vigil.interop.pytx.exchange (skips without the pytx extra)."""
    return pytest.importorskip("vigil.interop.pytx.exchange",
                               reason="the pytx extra is not installed (pip install 'vigil[pytx]')")


def test_credentials_are_keyed_by_origin_and_errors_never_show_a_token(pytx: Any) -> None:
    creds = pytx.VigilCredentials._from_str("SG-SPF=vgl_a, KR-KNPA=vgl_b\n# note\nHK-POL=vgl_c")
    assert creds.tokens == {"SG-SPF": "vgl_a", "KR-KNPA": "vgl_b", "HK-POL": "vgl_c"}
    with pytest.raises(ValueError, match="entry 2") as e:
        pytx.VigilCredentials._from_str("SG-SPF=vgl_a,vgl_secret")
    assert "vgl_secret" not in str(e.value)
    collab = pytx.VigilCollabConfig(name="kr", base_url="http://127.0.0.1:9", bank="b",
                                    origin="AU-AFP", origin_key="00" * 32)
    from threatexchange.exchanges.auth import SignalExchangeAPIInvalidAuthException
    with pytest.raises(SignalExchangeAPIInvalidAuthException) as ie:
        pytx.VigilSignalExchangeAPI.for_collab(collab, creds)
    assert "AU-AFP" in ie.value.message and "vgl_" not in ie.value.message


def test_records_map_to_pytx_updates(pytx: Any) -> None:
    frames = write_vpdq([VpdqFrame(0, 100, PDQ_A, 0.0), VpdqFrame(1, 100, PDQ_B, 1.0)])
    recs = [EntryRecord("pdq", PDQ_A, Labels(("us", "1"), tags=("t1",))),
            EntryRecord("md5", "a" * 32, Labels(("us", "5"))),  # negative: dropped
            EntryRecord("sha1", "b" * 40, Labels(("us", "1"))),  # not carried
            EntryRecord("sha256", "c" * 64, op="remove"),
            EntryRecord("vpdq", "d" * 64, Labels(None), extra={"vpdq": frames})]
    bodies = [{"seq": n} for n in range(1, 6)]
    up = pytx.updates_of(recs, bodies, "SG-SPF")
    assert set(up) == {("pdq", PDQ_A), ("md5", "a" * 32), ("sha256", "c" * 64),
                       ("vpdq", "d" * 64)}
    assert up[("md5", "a" * 32)] is None and up[("sha256", "c" * 64)] is None
    pdq = up[("pdq", PDQ_A)]
    assert pdq is not None and (pdq.signal, pdq.opinion, pdq.category, pdq.seq) == (
        PDQ_A, "positive", "us:1", 1)
    [op] = pdq.get_as_opinions()
    assert op.category.name == "POSITIVE_CLASS" and op.tags == {"us:1", "t1"}
    video = up[("vpdq", "d" * 64)]
    assert video is not None and video.opinion == "seed"
    assert write_vpdq(from_pytx(video.signal)) == frames

    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal

    from vigil.interop.pytx.vpdq import VigilVpdqSignal
    collab = pytx.VigilCollabConfig(name="sg", base_url="http://x", bank="b",
                                    origin="SG-SPF", origin_key="00" * 32)
    conv = pytx.VigilSignalExchangeAPI.naive_convert_to_signal_type(
        [PdqSignal, VideoMD5Signal, VigilVpdqSignal], collab, up)
    assert set(conv) == {PdqSignal, VigilVpdqSignal}
    assert list(conv[PdqSignal]) == [PDQ_A]


@pytest.mark.shared
def test_vigil_vpdq_hashes_and_matches_videos(shared: Path, pytx: Any) -> None:
    from vigil.interop.pytx.vpdq import VigilVpdqSignal
    videos = shared / "fixtures/video/sample-videos"
    orig = VigilVpdqSignal.hash_from_file(videos / "chair-orig-22-sd-bar.mp4")
    grey = VigilVpdqSignal.hash_from_file(videos / "chair-22-sd-grey-bar.mp4")
    other = VigilVpdqSignal.hash_from_file(videos / "doorknob-hd-no-bar.mp4")
    assert VigilVpdqSignal.validate_signal_str(orig) == orig
    same = VigilVpdqSignal.compare_hash(orig, grey)
    assert same.match and same.distance.pretty_str().endswith("%]")
    assert not VigilVpdqSignal.compare_hash(orig, other).match
    index = VigilVpdqSignal.get_index_cls().build([(orig, "banked"), (other, "other")])
    assert [m.metadata for m in index.query(grey)] == ["banked"]


# ---- fetching URLs: only from hosts the operator named -------------------------------------

@pytest.fixture
def media_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/photo")
                self.end_headers()
                return
            body = b"x" * (5000 if self.path == "/big" else 100)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_urls_are_fetched_only_from_allowed_hosts(media_server: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://{media_server}/photo"
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(FetchRefused) as e:
        fetch(url, 1000)
    assert e.value.status == 403 and ENV in str(e.value)
    monkeypatch.setenv(ENV, f"example.org, {media_server}")
    assert fetch(url, 1000) == (b"x" * 100, "image/jpeg")
    for path, status in (("/moved", 400), ("/big", 413)):
        with pytest.raises(FetchRefused) as e:
            fetch(f"http://{media_server}{path}", 1000)
        assert e.value.status == status
    with pytest.raises(FetchRefused):
        fetch(f"file:///etc/passwd#{media_server}", 1000)


# ---- the feed reader against a real node ----------------------------------------------------

@pytest.fixture(scope="module")
def shared_bank(sg: FedNode) -> tuple[str, str]:
    """A bank of two photos shared with HK-POL, and a peer token for HK-POL."""
    from tests.conftest import SHARED
    if not (SHARED / "corpus").is_dir():
        pytest.skip("../shared (corpus and fixtures) is not present")
    bank = f"csam-{uuid.uuid4().hex[:6]}"
    sg.bank(bank)
    for p in sorted((SHARED / "corpus/bsds500/train").glob("*.jpg"))[:2]:
        bank_file(sg, bank, p, "us:1")
    with sg.client() as cl:
        assert cl.put(f"/v1/banks/{bank}/shares/{PEER}", json={"fields": ["category"]}
                      ).status_code == 200
    return bank, sg.grant(PEER)


def test_the_reader_pulls_a_whole_feed_in_pages(sg: FedNode,
                                                shared_bank: tuple[str, str]) -> None:
    bank, token = shared_bank
    with FeedReader(sg.url, bank, sg.agency, sg.public_key, token, page_size=3) as r:
        pages = list(r.pages(None))
    assert [len(p.entries) for p in pages] == [3, 3, 2]
    assert pages[-1].position.seq == pages[-1].head == 8
    assert all(p.last_at is not None and p.last_at <= time.time() + 1 for p in pages)
    with FeedReader(sg.url, bank, sg.agency, sg.public_key, token) as r:
        assert list(r.pages(pages[-1].position)) == []  # up to date: nothing more


def test_the_reader_refuses_with_a_message_naming_what(sg: FedNode,
                                                       shared_bank: tuple[str, str]) -> None:
    bank, token = shared_bank
    wrong_key = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    with FeedReader(sg.url, bank, sg.agency, wrong_key, token) as r, \
            pytest.raises(FeedError) as e:
        list(r.pages(None))
    assert "record seq" in str(e.value) and "does not verify" in str(e.value)
    cases = [(dict(origin="KR-KNPA"), "trusts KR-KNPA's key only"),
             (dict(bank="not-shared"), "'not-shared' is not shared"),
             (dict(token="vgl_wrong"), "refused the token")]
    for change, says in cases:
        kw = {"base_url": sg.url, "bank": bank, "origin": sg.agency, "origin_key": wrong_key,
              "token": token, **change}
        with FeedReader(**kw) as r, pytest.raises(FeedError, match=says) as e:
            list(r.pages(None))
        assert token not in str(e.value)
    with pytest.raises(ValueError, match="page size"):
        FeedReader(sg.url, bank, sg.agency, sg.public_key, token, page_size=0)


def test_the_checkpoint_never_goes_back(sg: FedNode, shared_bank: tuple[str, str],
                                         pytx: Any) -> None:
    bank, token = shared_bank
    collab = pytx.VigilCollabConfig(name="sg", base_url=sg.url, bank=bank, origin=sg.agency,
                                    origin_key=sg.public_key, page_size=5)
    api = pytx.VigilSignalExchangeAPI.for_collab(
        collab, pytx.VigilCredentials({sg.agency: token}))
    deltas = list(api.fetch_iter([], None))
    assert [d.checkpoint.seq for d in deltas] == [5, 8]
    first = deltas[0].checkpoint.get_progress_timestamp()
    assert first is not None and first > 0
    future = pytx.VigilCheckpoint(0, deltas[0].checkpoint.chain_tip, "", int(time.time()) + 10**6)
    later = list(api.fetch_iter([], future))  # another descriptor: replayed from the start
    assert later and all(d.checkpoint.progress == future.progress for d in later)

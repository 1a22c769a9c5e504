"""Reading one bank's feed from a Vigil node, for tools that keep their own copy of it.

``vigil peer sync`` pulls feeds into mirror banks; other tools (python-threatexchange,
HMA) keep fetched signals in their own stores, so they need the pull without the bank:
this reader. Each page is checked by :func:`vigil.exchange.verify.check_page`, the code
the sync runs, so the two refuse the same pages with the same messages. What verified is
handed out page by page *before* a refusal is raised: a caller that stores each page with
its position keeps everything up to the last good checkpoint, and its next pull resumes
there.

Limits: a page is read up to ``MAX_PAGE_BYTES`` (a node sends at most 20,000 records a
page, well under it); the page size asked for is 1 to 20,000 records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from vigil.banks.entry import EntryRecord
from vigil.exchange.records import Descriptor, FeedError, genesis, public_key
from vigil.exchange.verify import check_page

#: the most bytes one answer of the node may have (a page, or the list of feeds)
MAX_PAGE_BYTES = 256 << 20
#: records per page, as the node's ``GET /v1/feeds/{bank}`` allows (``limit``)
MAX_PAGE_RECORDS = 20_000
DEFAULT_PAGE_RECORDS = 5_000


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a reader's copy of a feed ends: the last verified record and its hash (the
    chain tip), and the feed's descriptor text (another descriptor starts a new chain)."""

    seq: int
    tip: str
    descriptor: str


@dataclass(frozen=True, slots=True)
class PulledPage:
    """The verified records of one page, as bank records, and the position after them."""

    entries: list[EntryRecord]
    #: the parsed record bodies, in the same order (``seq``, ``op``, ``at``, ``labels``)
    bodies: list[dict[str, Any]]
    position: FeedPosition
    head: int
    #: the first page after the feed's descriptor changed: the chain starts again at 1
    restarted: bool

    @property
    def last_at(self) -> int | None:
        """When the page's last record was made at the origin (Unix seconds), if stated."""
        if not self.bodies:
            return None
        try:
            return int(datetime.fromisoformat(str(self.bodies[-1]["at"])).timestamp())
        except (KeyError, ValueError):
            return None


def _problem(body: bytes) -> str:
    """The ``detail`` of a problem document, or the start of the answer."""
    try:
        data = orjson.loads(body)
        if isinstance(data, dict) and data.get("detail"):
            return str(data["detail"])[:200]
    except orjson.JSONDecodeError:
        pass
    return body[:200].decode("utf-8", "replace")


class FeedReader:
    """Pulls the feed of ``bank`` from the node at ``base_url`` with a peer ``token``,
    trusting only ``origin``'s Ed25519 key ``origin_key`` (64 hex characters)."""

    def __init__(self, base_url: str, bank: str, origin: str, origin_key: str, token: str, *,
                 page_size: int = DEFAULT_PAGE_RECORDS, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not 1 <= page_size <= MAX_PAGE_RECORDS:
            raise ValueError(f"page size must be 1 to {MAX_PAGE_RECORDS:,} records, "
                             f"not {page_size}")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL {base_url!r} must start with http:// or https://")
        self.base_url, self.bank, self.origin = base_url.rstrip("/"), bank, origin
        self.key = public_key(origin_key)
        self.page_size = page_size
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FeedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> tuple[httpx.Response, bytes]:
        """GET ``path``: the answer and its body, read up to ``MAX_PAGE_BYTES``."""
        where = f"{self.base_url}{path}"
        try:
            with self.http.stream("GET", path, params=params) as r:
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        raise FeedError(f"{where}: the answer is larger than "
                                        f"{MAX_PAGE_BYTES:,} bytes; refused")
                return r, bytes(body)
        except httpx.HTTPError as exc:
            raise FeedError(f"{where}: {type(exc).__name__}: {exc}") from None

    def _refused(self, r: httpx.Response, body: bytes, what: str) -> FeedError:
        if r.status_code == 401:
            return FeedError(f"{what}: the node refused the token (401: {_problem(body)}); "
                             f"give a valid peer token for {self.origin} (`vigil peer grant` "
                             "on that node)")
        if r.status_code == 403:
            return FeedError(f"{what}: bank {self.bank!r} is not shared with the token's "
                             f"agency (403: {_problem(body)})")
        return FeedError(f"{what}: the node answered {r.status_code}: {_problem(body)}")

    def descriptor(self) -> Descriptor:
        """What the node offers of ``bank`` to the token's agency; refused if not offered or
        not of ``origin``."""
        r, body = self._get("/v1/feeds")
        if r.status_code != 200:
            raise self._refused(r, body, f"{self.base_url}/v1/feeds")
        try:
            offered = {str(f["bank"]): f["descriptor"] for f in orjson.loads(body)["feeds"]}
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise FeedError(f"{self.base_url}/v1/feeds: malformed answer ({exc})") from None
        if self.bank not in offered:
            raise FeedError(f"{self.base_url}: bank {self.bank!r} is not shared with the "
                            "token's agency (offered: "
                            f"{', '.join(sorted(offered)[:10]) or 'nothing'})")
        d = Descriptor.parse(offered[self.bank])
        if d.origin != self.origin:
            raise FeedError(f"feed {d}: its origin is {d.origin}, but this collaboration "
                            f"trusts {self.origin}'s key only; refused")
        return d

    def pages(self, position: FeedPosition | None) -> Iterator[PulledPage]:
        """The verified pages after ``position`` (None: from the start) up to the feed's
        head. A refused page raises FeedError naming the feed and the record, after the
        part of it that verified was yielded."""
        d = self.descriptor()
        restarted = position is not None and position.descriptor != d.text()
        if position is None or restarted:
            after, prev = 0, genesis(d)
        else:
            after, prev = position.seq, position.tip
        path = f"/v1/feeds/{quote(self.bank, safe='')}"
        while True:
            r, body = self._get(path, after=after, limit=self.page_size)
            if r.status_code != 200:
                raise self._refused(r, body, f"feed {d}")
            try:
                cp = check_page(d, self.key, after, prev, body)
            except (KeyError, TypeError, ValueError) as exc:
                raise FeedError(f"feed {d}: malformed page after seq {after} "
                                f"({type(exc).__name__}: {exc})") from None
            vp = cp.verified
            if vp.records:
                yield PulledPage(cp.entries, [b for b, _ in vp.records],
                                 FeedPosition(vp.last_seq, vp.last_hash, d.text()), cp.head,
                                 restarted)
                restarted = False
            if cp.error is not None:
                raise FeedError(cp.error)
            if not vp.records or vp.last_seq >= cp.head:
                return
            after, prev = vp.last_seq, vp.last_hash


__all__ = ["DEFAULT_PAGE_RECORDS", "MAX_PAGE_RECORDS", "FeedPosition", "FeedReader",
           "PulledPage"]

"""Forwarding notices hotline to hotline: a host in a partner's country is that partner's.

INHOPE's ICCAM routes each report to the hotline of the hosting country, because that
hotline knows the hosts, the law and the language. Vigil does the same peer to peer: a
notice whose host is in the jurisdiction of a peer agency is offered to that agency's
node (``GET /v1/notices/forwarded``, peer principals only), which pulls it as it pulls
feeds and reports the URL into its own takedown loop. There it is fetched, matched
against that node's banks (its mirrors of ours included) and noticed to the host with
its own contacts; this node keeps re-checking the URL as before.

What travels per notice: the URL, the matched categories, when the material was first
seen and the deadline, and the origin's notice number. Never the case reference, the
series, hashes or anything of the victim. A page is signed with the origin's node key
(Ed25519, the key feeds are signed with) over its canonical JSON, including who it is for
and the cursor it answers, so a page cannot be altered, replayed to another agency or
spliced into another position; the receiver checks it with the key it trusts for the
origin before anything is stored.

The host's country is its contact's ``country`` when one is set, else its country-code
top-level domain (``.hk`` is HK; ``.uk`` is GB); a host with neither is never forwarded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vigil.exchange.peers import PeerError, peer_token, trusted_key
from vigil.exchange.records import FeedError, answer_limits, canonical, public_key
from vigil.exchange.repo import PeerInfo
from vigil.exchange.sync import PeerClient, problem_of
from vigil.formats.limits import JsonError, Limits, load_json
from vigil.store.models_takedown import TakedownForwardCursor
from vigil.takedown import intake, repo
from vigil.takedown.repo import NoticeRow

#: notices one page forwards at most, and looks at (a page ends early past either)
MAX_ITEMS = 1000
SCAN = 5000
#: only notices still waiting for removal are worth a partner's work
FORWARDED_STATES = ("open", "sent", "acknowledged")
#: country-code top-level domains that are not the ISO 3166 code of their country
_CCTLD = {"uk": "GB"}
_DOMAIN = b"vigil-forward-v1\n"
_COUNTRY = re.compile(r"[A-Z]{2}")


class ForwardError(Exception):
    """A forwarded page that cannot be trusted or taken; the message names the field."""


def host_country(domain: str, contact_country: str | None) -> str | None:
    """The ISO 3166 country a host's notices belong to, if it can be told."""
    if contact_country:
        return contact_country.upper()
    tld = domain.rsplit(".", 1)[-1].lower()
    if re.fullmatch(r"[a-z]{2}", tld):
        return _CCTLD.get(tld, tld.upper())
    return None


def _item(n: NoticeRow, country: str) -> dict[str, Any]:
    return {"notice": n.id, "url": n.url, "country": country,
            "categories": [{"scheme": s, "value": v} for s, v in n.categories],
            "first_seen_at": n.first_seen_at.isoformat(),
            "deadline_at": n.deadline_at.isoformat()}


def _message(body: dict[str, Any]) -> bytes:
    return _DOMAIN + canonical(body).encode()


def outgoing(engine: Engine, key: Ed25519PrivateKey, origin: str, to: str, jurisdiction: str,
             after: int, limit: int = MAX_ITEMS) -> dict[str, Any]:
    """The signed page of notices after ``after`` whose host is in ``jurisdiction``, for
    agency ``to``. ``next`` is the last notice looked at: the cursor of the next page
    (equal to ``after`` when there is nothing more). With no ``jurisdiction`` (this node
    has not been told the agency's) the page is empty and the cursor stays, so nothing is
    skipped before it is known."""
    limit = max(1, min(limit, MAX_ITEMS))
    countries = {c.domain: c.country for c in repo.list_contacts(engine)}
    items: list[dict[str, Any]] = []
    nxt = after
    for n in repo.list_notices(engine, after=after, limit=SCAN) if jurisdiction else ():
        nxt = n.id
        country = host_country(n.domain, countries.get(n.domain))
        if country == jurisdiction and n.state in FORWARDED_STATES:
            items.append(_item(n, country))
            if len(items) >= limit:
                break
    body = {"from": origin, "to": to, "after": after, "next": nxt, "items": items}
    return {**body, "signature": key.sign(_message(body)).hex()}


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One notice a partner forwarded: the URL to report here, and what it said."""

    origin: str
    notice: int
    url: str
    country: str
    categories: tuple[tuple[str, str], ...]
    first_seen_at: datetime
    deadline_at: datetime

    @property
    def case(self) -> str:
        """The case reference the URL is reported under on this node."""
        return f"forwarded:{self.origin}:notice-{self.notice}"


def _when(i: int, it: dict[str, Any], field: str) -> datetime:
    v = it.get(field)
    try:
        if isinstance(v, str) and len(v) <= 64:
            return datetime.fromisoformat(v)
    except ValueError:
        pass
    raise ForwardError(f"items[{i}].{field} must be an ISO 8601 date and time")


def _forwarded(origin: str, i: int, it: Any) -> Forwarded:
    if not isinstance(it, dict):
        raise ForwardError(f"items[{i}] must be an object")
    notice, url, country = it.get("notice"), it.get("url"), it.get("country")
    if type(notice) is not int or notice < 1:
        raise ForwardError(f"items[{i}].notice must be a positive number")
    if not isinstance(url, str) or not isinstance(country, str) or \
            not _COUNTRY.fullmatch(country):
        raise ForwardError(f"items[{i}]: url must be a string and country an ISO 3166 code")
    cats = it.get("categories")
    if not isinstance(cats, list) or len(cats) > 100 or not all(
            isinstance(c, dict) and isinstance(c.get("scheme"), str) and
            isinstance(c.get("value"), str) for c in cats):
        raise ForwardError(f"items[{i}].categories must be a list of {{scheme, value}}")
    return Forwarded(origin, notice, url, country,
                     tuple((c["scheme"][:32], c["value"][:64]) for c in cats),
                     _when(i, it, "first_seen_at"), _when(i, it, "deadline_at"))


def parse_page(data: bytes | bytearray, key_hex: str, origin: str, us: str, after: int,
               limits: Limits) -> tuple[list[Forwarded], int]:
    """A partner's page, checked within limits, for its signature by ``origin``'s key and
    that it answers this node's request (for ``us``, after ``after``); then item by item.
    Returns the notices and the cursor for the next page."""
    try:
        doc = load_json(bytes(data), answer_limits(limits, MAX_ITEMS, 16, depth=5))
    except JsonError as exc:
        raise ForwardError(f"malformed page: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("signature"), str):
        raise ForwardError("malformed page: an object with a 'signature' is expected")
    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        public_key(key_hex).verify(bytes.fromhex(doc["signature"]), _message(body))
    except (InvalidSignature, ValueError):
        raise ForwardError(f"signature: the page is not signed by {origin}'s trusted key"
                           ) from None
    for field, want in (("from", origin), ("to", us), ("after", after)):
        if body.get(field) != want:
            raise ForwardError(f"{field}: the page is for {field}={body.get(field)!r}, "
                               f"not {want!r}")
    nxt, items = body.get("next"), body.get("items")
    if type(nxt) is not int or nxt < after or not isinstance(items, list):
        raise ForwardError("malformed page: 'next' must be a cursor at or past 'after', "
                           "and 'items' a list")
    return [_forwarded(origin, i, it) for i, it in enumerate(items)], nxt


def cursor(engine: Engine, agency: str) -> int:
    with Session(engine) as s:
        return s.scalar(select(TakedownForwardCursor.after)
                        .where(TakedownForwardCursor.agency == agency)) or 0


def _set_cursor(engine: Engine, agency: str, after: int, now: datetime) -> None:
    with Session(engine) as s, s.begin():
        row = s.get(TakedownForwardCursor, agency)
        if row is None:
            s.add(TakedownForwardCursor(agency=agency, after=after, pulled_at=now))
        else:
            row.after, row.pulled_at = after, now


@dataclass(frozen=True, slots=True)
class Pulled:
    """What one pull from a partner brought: URLs new here, and ones already reported."""

    peer: str
    agency: str
    added: int
    known: int


def pull(engine: Engine, home: Path, peer: PeerInfo, us: str, now: datetime,
         timeout: float = 30, limits: Limits | None = None) -> Pulled:
    """Pull the notices ``peer`` forwarded to this node and report their URLs here.

    Each page is checked whole before any of it is stored; a bad item refuses its page
    (named in the error) and the cursor stays before it, so what earlier pages added is
    kept and the next pull retries from there."""
    key_hex = trusted_key(engine, peer.agency)
    if key_hex is None:
        raise PeerError(f"no trusted key for {peer.agency} (vigil peer trust)")
    client = PeerClient(peer.url, peer_token(home, peer.name), timeout, limits)
    added = known = 0
    after = cursor(engine, peer.agency)
    try:
        while True:
            r = client.get("/v1/notices/forwarded", after=after)
            if r.status_code != 200:
                raise PeerError(f"{peer.url}/v1/notices/forwarded answered {r.status_code}:"
                                f" {problem_of(r)}")
            try:
                items, nxt = parse_page(r.content, key_hex, peer.agency, us, after,
                                        client.limits)
                checked = [intake.check(f.url, f.case) for f in items]
            except (ForwardError, FeedError, intake.IntakeError) as exc:
                raise ForwardError(f"{peer.name} ({peer.agency}), page after {after}: "
                                   f"{exc}") from None
            for reported in checked:
                if intake.add(engine, reported, f"peer:{peer.name}", now)[1]:
                    added += 1
                else:
                    known += 1
            if nxt == after:
                break
            after = nxt
            _set_cursor(engine, peer.agency, after, now)
    finally:
        client.close()
    return Pulled(peer.name, peer.agency, added, known)


__all__ = ["FORWARDED_STATES", "ForwardError", "Forwarded", "Pulled", "cursor",
           "host_country", "outgoing", "parse_page", "pull"]

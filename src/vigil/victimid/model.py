"""Series records and the fold that turns them into a series' state.

Why a fold and not a stored status: every agency writes only its own chain (its series,
its claims, its identifications), and a series' state is what all chains say together.
Folding the records of a series in one total order — ``(at, origin, seq)`` — gives the
same state on every node that holds the same records, whatever order they arrived in:
the first valid claim wins everywhere, a later one is *contested* (and both agencies see
the conflict), and a lease that lapsed lapses everywhere, by the clock.

What a record may carry is only what DESIGN.md lets travel: the namespaced id, aliases,
status changes, opaque victim references (``V1``), the offender-identified flag, a likely
country with a confidence, clue tags from :data:`CLUE_TAGS`, and for an identification the
agency, a contact *role* and a case reference. No names, no free text beyond those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("series", "claim", "renew", "release", "identify", "close")
STATUSES = ("unidentified", "claimed", "identified", "closed")
#: the controlled vocabulary of clue tags (a clue's words stay local: see ``SeriesClue``)
CLUE_TAGS = ("background", "clothing", "school-uniform", "signage", "language", "accent",
             "product", "plug-socket", "vehicle", "landmark", "weather", "exif-device",
             "exif-gps", "audio", "tattoo", "furniture")
DEFAULT_LEASE = timedelta(days=30)
MAX_LEASE = timedelta(days=365)
MAX_ALIASES = 32
MAX_VICTIMS = 64
#: ``AGENCY:LOCAL``: the namespace is the originating agency's code
SERIES_ID = re.compile(r"([A-Z0-9][A-Z0-9_-]{0,63}):([A-Za-z0-9][A-Za-z0-9._-]{0,34})")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9 :._/#-]{0,79}")
_VICTIM = re.compile(r"V[0-9]{1,4}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .,&()/-]{0,79}")
CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9 :._/#-]{0,99}")


class SeriesError(ValueError):
    """An operation or record refused; the message names the series and the rule."""

    def __init__(self, message: str, series: str | None = None, status: int = 409) -> None:
        super().__init__(message)
        self.series, self.status = series, status


def iso(at: datetime) -> str:
    """A record's time: UTC with microseconds, so that text order is time order."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def check_series_id(text: str) -> str:
    """A series id as ``AGENCY:LOCAL`` (``SG-SPF:S-000017``); SeriesError otherwise."""
    if not isinstance(text, str) or not SERIES_ID.fullmatch(text):
        raise SeriesError(f"series id {str(text)[:60]!r} must be AGENCY:LOCAL, e.g. "
                          "SG-SPF:S-000017 (the agency code, a colon, then letters, digits, "
                          "'.', '_' or '-')", status=422)
    return text


def namespace(series_id: str) -> str:
    """The agency a series id belongs to (the part before the colon)."""
    return series_id.split(":", 1)[0]


def parse_lease(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``45s`` as a lease length (1 s to 365 days)."""
    m = re.fullmatch(r"([0-9]{1,6})([dhms])", text.strip())
    if not m:
        raise SeriesError(f"lease {text[:20]!r} must be a number and a unit: 30d, 12h, 90m "
                          "or 45s", status=422)
    n, unit = int(m.group(1)), m.group(2)
    lease = timedelta(**{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: n})
    if not timedelta(seconds=1) <= lease <= MAX_LEASE:
        raise SeriesError("a lease lasts from 1 second to 365 days", status=422)
    return lease


def check_fields(kind: str, f: dict[str, Any], series_id: str) -> dict[str, Any]:
    """The fields of a record of ``kind``, each of its exact type and shape; SeriesError
    names the series and the field. Used for this node's own records and every record a
    peer sends, so nothing outside the list above can be stored or sent."""
    allowed = {"series": {"aliases", "victims", "offender_identified", "country",
                          "country_confidence", "tags"},
               "claim": {"lease_seconds"}, "renew": {"lease_seconds"}, "release": set(),
               "identify": {"contact_role", "case_ref"}, "close": set()}[kind]
    extra = sorted(set(f) - allowed)
    if extra:
        raise SeriesError(f"series {series_id}: a {kind} record cannot carry "
                          f"{', '.join(x[:30] for x in extra)}", series_id, 422)

    def bad(name: str, what: str) -> SeriesError:
        return SeriesError(f"series {series_id}: {name} must be {what}", series_id, 422)

    out: dict[str, Any] = {}
    if kind == "series":
        aliases = f.get("aliases", [])
        if not isinstance(aliases, list) or len(aliases) > MAX_ALIASES or not all(
                isinstance(a, str) and _ALIAS.fullmatch(a) for a in aliases):
            raise bad("aliases", f"at most {MAX_ALIASES} ids (letters, digits, ' :._/#-')")
        victims = f.get("victims", [])
        if not isinstance(victims, list) or len(victims) > MAX_VICTIMS or not all(
                isinstance(v, str) and _VICTIM.fullmatch(v) for v in victims):
            raise bad("victims", "opaque references V1, V2, … (never names)")
        oi = f.get("offender_identified", False)
        if type(oi) is not bool:
            raise bad("offender_identified", "true or false")
        country = f.get("country")
        if country is not None and not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
            raise bad("country", "an ISO 3166 alpha-2 code (SG, HK, KR)")
        conf = f.get("country_confidence")
        if conf is not None and (type(conf) is not int or not 0 <= conf <= 100):
            raise bad("country_confidence", "a whole percentage 0-100")
        tags = f.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t in CLUE_TAGS
                                                 for t in tags):
            raise bad("tags", f"clue tags from: {', '.join(CLUE_TAGS)}")
        out = {"aliases": sorted(set(aliases)), "victims": sorted(set(victims)),
               "offender_identified": oi, "tags": sorted(set(tags))}
        if country is not None:
            out["country"] = country
        if conf is not None:
            out["country_confidence"] = conf
    elif kind in ("claim", "renew"):
        lease = f.get("lease_seconds")
        if type(lease) is not int or not 1 <= lease <= int(MAX_LEASE.total_seconds()):
            raise bad("lease_seconds", "a whole number of seconds up to 365 days")
        out = {"lease_seconds": lease}
    elif kind == "identify":
        role, case = f.get("contact_role"), f.get("case_ref", "")
        if not isinstance(role, str) or not _ROLE.fullmatch(role):
            raise bad("contact_role", "a contact role such as 'VID desk' (not a person's "
                      "name; at most 80 characters)")
        if not isinstance(case, str) or (case and not CASE_REF.fullmatch(case)):
            raise bad("case_ref", "a case reference (letters, digits, ' :._/#-')")
        out = {"contact_role": role, "case_ref": case}
    return out


@dataclass(frozen=True, slots=True)
class Event:
    """One registry record as the fold sees it."""

    origin: str
    seq: int
    at: str
    kind: str
    series: str
    fields: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.at, self.origin, self.seq)


@dataclass(slots=True)
class Claim:
    agency: str
    at: str
    expires: str


@dataclass(slots=True)
class SeriesState:
    """A series as every node holding the same records sees it (at a given time)."""

    id: str
    origin: str
    created_at: str
    aliases: list[str] = field(default_factory=list)
    victims: list[str] = field(default_factory=list)
    offender_identified: bool = False
    country: str | None = None
    country_confidence: int | None = None
    tags: list[str] = field(default_factory=list)
    status: str = "unidentified"
    holder: Claim | None = None
    #: live claims made while another agency held the series (in the order made)
    contested: list[Claim] = field(default_factory=list)
    #: every conflict seen: holder, contender, when, and whether it is still open
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    identified: dict[str, Any] | None = None
    #: records the fold refused (an invalid transition), each with why
    refused: list[dict[str, Any]] = field(default_factory=list)
    updated_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "origin": self.origin, "status": self.status,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "aliases": self.aliases, "victims": self.victims,
                "offender_identified": self.offender_identified, "country": self.country,
                "country_confidence": self.country_confidence, "tags": self.tags,
                "claim": None if self.holder is None else {
                    "agency": self.holder.agency, "since": self.holder.at,
                    "expires": self.holder.expires},
                "contested": [{"agency": c.agency, "since": c.at, "expires": c.expires}
                              for c in self.contested],
                "conflicts": self.conflicts, "identified": self.identified,
                "refused": self.refused}

    def note(self) -> dict[str, Any]:
        """What a hit says about its series: id, origin, status, who identified it
        (agency, contact role, when), who holds the claim."""
        out: dict[str, Any] = {"id": self.id, "origin": self.origin, "status": self.status,
                               "summary": self.summary()}
        if self.identified:
            out["identified"] = {k: self.identified[k] for k in ("agency", "contact_role",
                                                                 "at")}
        if self.holder is not None:
            out["claimed_by"] = self.holder.agency
        return out

    def valid_until(self) -> str:
        """Until when this state holds with no new record: the first lease to end (a
        lapse changes it), or far in the future."""
        ends = [c.expires for c in ([self.holder] if self.holder else []) + self.contested]
        return min(ends) if ends else "9999-12-31T00:00:00.000000Z"

    def summary(self) -> str:
        """One line for a hit: the id, the status and who to contact."""
        if self.status == "identified" and self.identified:
            i = self.identified
            return (f"{self.id} identified by {i['agency']} on {i['at'][:10]} — contact "
                    f"their {i['contact_role']}")
        if self.status == "claimed" and self.holder is not None:
            return f"{self.id} claimed by {self.holder.agency} until {self.holder.expires[:10]}"
        return f"{self.id} {self.status} (origin {self.origin})"


def _plus(at: str, seconds: int) -> str:
    return iso(parse_iso(at) + timedelta(seconds=seconds))


def _lapse(s: SeriesState, t: str) -> None:
    """Leases that ended by ``t`` end; the earliest live contested claim takes over."""
    s.contested = [c for c in s.contested if c.expires > t]
    if s.holder is not None and s.holder.expires <= t:
        s.holder = None
    if s.holder is None and s.contested:
        s.holder = s.contested.pop(0)
    for c in s.conflicts:
        if c["open"] and (s.holder is None or {c["holder"], c["contender"]} - (
                {s.holder.agency} | {x.agency for x in s.contested})):
            c["open"] = False


def _status(s: SeriesState) -> str:
    if s.status in ("identified", "closed"):
        return s.status
    return "claimed" if s.holder is not None else "unidentified"


def apply(s: SeriesState, e: Event) -> str | None:
    """Apply one record (in fold order) to ``s``; the reason if it is refused."""
    _lapse(s, e.at)
    s.status = _status(s)
    who = e.origin
    if e.kind == "series":
        if who != s.origin:
            return f"only {s.origin} may change its series"
        for k, v in e.fields.items():
            setattr(s, k, v)
        return None
    if e.kind == "close":
        if who != s.origin:
            return f"only {s.origin} may close its series"
        if s.status == "closed":
            return "already closed"
        s.status, s.holder, s.contested = "closed", None, []
        return None
    if s.status in ("identified", "closed"):
        return f"a series {s.status} cannot take a {e.kind}"
    if e.kind == "claim":
        lease = Claim(who, e.at, _plus(e.at, e.fields["lease_seconds"]))
        if s.holder is None:
            s.holder = lease
        elif s.holder.agency == who:
            s.holder.expires = lease.expires
        elif any(c.agency == who for c in s.contested):
            return f"{who} already has a contested claim"
        else:
            s.contested.append(lease)
            s.conflicts.append({"holder": s.holder.agency, "contender": who, "at": e.at,
                                "open": True})
    elif e.kind == "renew":
        mine = [c for c in ([s.holder] if s.holder else []) + s.contested if c.agency == who]
        if not mine:
            return f"{who} holds no live claim to renew"
        mine[0].expires = _plus(e.at, e.fields["lease_seconds"])
    elif e.kind == "release":
        if s.holder is not None and s.holder.agency == who:
            s.holder = None
        elif any(c.agency == who for c in s.contested):
            s.contested = [c for c in s.contested if c.agency != who]
        else:
            return f"{who} holds no live claim to release"
        _lapse(s, e.at)
    elif e.kind == "identify":
        if s.holder is not None and s.holder.agency != who:
            return f"{s.holder.agency} holds the claim; only it may mark the series identified"
        s.identified = {"agency": who, "at": e.at, **e.fields}
        s.status, s.holder, s.contested = "identified", None, []
        for c in s.conflicts:
            c["open"] = False
        return None
    s.status = _status(s)
    return None


def fold(series_id: str, events: list[Event], now: datetime | None = None,
         ) -> SeriesState | None:
    """A series' state from its records (any order), as of ``now``; None until the
    record that creates it (from its own namespace's agency) is among them."""
    events = sorted(events, key=lambda e: e.key)
    origin = namespace(series_id)
    s: SeriesState | None = None
    for e in events:
        if s is None:
            if e.kind != "series" or e.origin != origin:
                continue  # before the series is known here: waits for it (kept, not lost)
            s = SeriesState(series_id, origin, e.at)
        why = apply(s, e)
        if why is not None:
            s.refused.append({"origin": e.origin, "seq": e.seq, "kind": e.kind, "at": e.at,
                              "reason": why})
        s.updated_at = e.at
    if s is not None:
        _lapse(s, iso(now or datetime.now(UTC)))
        s.status = _status(s)
    return s

"""Every database read and write of the takedown workflow, in one place.

The other modules decide (what a fetch means, what to send, when) and call these
functions; they hold no session and build no query. Rows leave as the plain dataclasses
below, never as ORM objects.

Due work is claimed with a conditional ``UPDATE`` (``claim_due_urls``,
``claim_due_notices``): a row is taken only if it is due and nobody holds an unexpired
lease on it, and every later write checks the lease is still this claim's. On
PostgreSQL the ``UPDATE`` re-checks its conditions on the row it waited for; on SQLite
writers take turns. So two workers, in one process or on two hosts, never hold the same
row at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    Engine,
    Result,
    and_,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.store.dialects import is_postgresql
from vigil.store.models_takedown import (
    TakedownContact,
    TakedownFetch,
    TakedownLink,
    TakedownNotice,
    TakedownNoticeEntry,
    TakedownSend,
    TakedownUrl,
)
from vigil.takedown.clock import aware

#: the advisory lock that serialises opening notices on PostgreSQL
OPEN_LOCK = 0x7644_6F77_6E01
ACTIVE = ("open", "sent", "acknowledged")
STATES = ("open", "sent", "acknowledged", "removed", "closed")


class TakedownError(ValueError):
    """An expected failure (no such notice, a state that does not allow the action)."""


def _count(res: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched."""
    assert isinstance(res, CursorResult)
    return res.rowcount or 0


def _t(t: datetime | None) -> datetime | None:
    return aware(t) if t is not None else None


# ---- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UrlRow:
    id: int
    url: str
    host: str
    domain: str
    case_ref: str
    added_by: str | None
    added_at: datetime
    state: str
    checks: int
    last_error: str | None
    next_check_at: datetime | None

    @classmethod
    def of(cls, u: TakedownUrl) -> UrlRow:
        return cls(u.id, u.url, u.host, u.domain, u.case_ref, u.added_by, aware(u.added_at),
                   u.state, u.checks, u.last_error, _t(u.next_check_at))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "host": self.host, "domain": self.domain,
                "case": self.case_ref, "added_by": self.added_by,
                "added_at": self.added_at.isoformat(), "state": self.state,
                "checks": self.checks, "last_error": self.last_error,
                "next_check_at": self.next_check_at.isoformat() if self.next_check_at
                else None}


@dataclass(frozen=True, slots=True)
class NoticeRow:
    id: int
    url_id: int
    url: str
    host: str
    domain: str
    case_ref: str
    state: str
    categories: tuple[tuple[str, str], ...]
    series: tuple[str, ...]
    first_seen_at: datetime
    opened_at: datetime
    deadline_at: datetime
    sends: int
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    removed_at: datetime | None
    removal: str | None
    closed_at: datetime | None
    problem: str | None
    next_due_at: datetime | None

    @classmethod
    def of(cls, n: TakedownNotice) -> NoticeRow:
        cats = tuple((str(c["scheme"]), str(c["value"])) for c in n.categories or ())
        return cls(n.id, n.url_id, n.url, n.host, n.domain, n.case_ref, n.state, cats,
                   tuple(n.series or ()), aware(n.first_seen_at), aware(n.opened_at),
                   aware(n.deadline_at), n.sends, _t(n.first_sent_at), _t(n.last_sent_at),
                   _t(n.escalated_at), _t(n.acknowledged_at), _t(n.removed_at), n.removal,
                   _t(n.closed_at), n.problem, _t(n.next_due_at))

    def to_json(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t is not None else None
        return {"id": self.id, "url": self.url, "host": self.host, "domain": self.domain,
                "case": self.case_ref, "state": self.state,
                "categories": [{"scheme": s, "value": v} for s, v in self.categories],
                "series": list(self.series), "first_seen_at": iso(self.first_seen_at),
                "opened_at": iso(self.opened_at), "deadline_at": iso(self.deadline_at),
                "sends": self.sends, "first_sent_at": iso(self.first_sent_at),
                "last_sent_at": iso(self.last_sent_at), "escalated_at": iso(self.escalated_at),
                "acknowledged_at": iso(self.acknowledged_at),
                "removed_at": iso(self.removed_at), "removal": self.removal,
                "closed_at": iso(self.closed_at), "problem": self.problem,
                "next_due_at": iso(self.next_due_at)}


@dataclass(frozen=True, slots=True)
class SendRow:
    id: int
    notice_id: int
    seq: int
    kind: str
    to_addr: str
    message_id: str
    state: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int

    @classmethod
    def of(cls, s: TakedownSend) -> SendRow:
        return cls(s.id, s.notice_id, s.seq, s.kind, s.to_addr, s.message_id, s.state,
                   aware(s.created_at), _t(s.sent_at), s.attempts)


@dataclass(frozen=True, slots=True)
class Contact:
    domain: str
    email: str
    escalation_email: str | None = None
    name: str = ""
    country: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "email": self.email,
                "escalation_email": self.escalation_email, "name": self.name,
                "country": self.country}


@dataclass(frozen=True, slots=True)
class FetchFacts:
    """One fetch as it is recorded (never the content, never its hashes)."""

    outcome: str  # match | no-match | gone | error
    status: int | None = None
    content_type: str | None = None
    final_url: str | None = None
    address: str | None = None
    seconds: float = 0.0
    size: int | None = None
    error_code: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    notice: NoticeRow
    #: earlier notices of the same material at other URLs
    earlier: tuple[int, ...]


def new_owner(name: str = "worker") -> str:
    """A claim's owner: unique per claim, so whose rows are whose is never ambiguous."""
    return f"{name[:60]}:{uuid.uuid4().hex[:16]}"


# ---- URLs ----------------------------------------------------------------------------------


def add_url(engine: Engine, url: str, key: str, host: str, domain: str, case_ref: str,
            by: str | None, now: datetime) -> tuple[UrlRow, bool]:
    """Store a reported URL, due for a check now; (row, False) if it was already there."""
    with Session(engine) as s:
        old = s.scalar(select(TakedownUrl).where(TakedownUrl.url_key == key))
        if old is not None:
            return UrlRow.of(old), False
        row = TakedownUrl(url=url, url_key=key, host=host, domain=domain, case_ref=case_ref,
                          added_by=by, added_at=now, state="new", checks=0,
                          next_check_at=now)
        s.add(row)
        try:
            s.commit()
        except IntegrityError:  # added by someone else meanwhile
            s.rollback()
            old = s.scalar(select(TakedownUrl).where(TakedownUrl.url_key == key))
            if old is None:
                raise
            return UrlRow.of(old), False
        return UrlRow.of(row), True


def list_urls(engine: Engine, state: str | None = None, case_ref: str | None = None,
              limit: int = 1000, after: int = 0) -> list[UrlRow]:
    q = select(TakedownUrl).where(TakedownUrl.id > after).order_by(TakedownUrl.id).limit(limit)
    if state:
        q = q.where(TakedownUrl.state == state)
    if case_ref:
        q = q.where(TakedownUrl.case_ref == case_ref)
    with Session(engine) as s:
        return [UrlRow.of(u) for u in s.scalars(q)]


def get_url(engine: Engine, url_id: int) -> UrlRow | None:
    with Session(engine) as s:
        u = s.get(TakedownUrl, url_id)
        return UrlRow.of(u) if u is not None else None


def _free(table: Any, now: datetime) -> Any:
    return or_(table.lease_until.is_(None), table.lease_until < now)


def claim_due_urls(engine: Engine, owner: str, now: datetime, lease: timedelta,
                   limit: int) -> list[UrlRow]:
    """Take up to ``limit`` URLs due for a check that nobody holds."""
    t = TakedownUrl
    with Session(engine) as s, s.begin():
        ids = list(s.scalars(select(t.id).where(t.next_check_at <= now, _free(t, now))
                             .order_by(t.next_check_at, t.id).limit(limit)))
        if not ids:
            return []
        s.execute(update(t).where(t.id.in_(ids), t.next_check_at <= now, _free(t, now))
                  .values(lease_owner=owner, lease_until=now + lease))
    with Session(engine) as s:
        return [UrlRow.of(u) for u in s.scalars(select(t).where(t.id.in_(ids),
                                                                 t.lease_owner == owner))]


def record_fetch(engine: Engine, url_id: int, owner: str, now: datetime, facts: FetchFacts,
                 state: str | None, next_check_at: datetime | None) -> bool:
    """Record a fetch of a URL; with ``state``, also the URL's new state and next check,
    releasing the claim. False if the claim was lost (nothing written)."""
    with Session(engine) as s, s.begin():
        if state is not None:
            values: dict[str, Any] = dict(
                state=state, next_check_at=next_check_at, lease_owner=None,
                lease_until=None, checks=TakedownUrl.checks + 1,
                last_error=facts.error if facts.outcome == "error" else None)
            r = s.execute(update(TakedownUrl).where(TakedownUrl.id == url_id,
                                                    TakedownUrl.lease_owner == owner)
                          .values(**values))
            if _count(r) != 1:
                return False
        s.add(TakedownFetch(url_id=url_id, at=now, outcome=facts.outcome, status=facts.status,
                            content_type=facts.content_type, final_url=facts.final_url,
                            address=facts.address, seconds=facts.seconds, size=facts.size,
                            error_code=facts.error_code, error=facts.error))
    return True


def fetches(engine: Engine, url_id: int, limit: int = 100) -> list[dict[str, Any]]:
    with Session(engine) as s:
        rows = s.scalars(select(TakedownFetch).where(TakedownFetch.url_id == url_id)
                         .order_by(TakedownFetch.id.desc()).limit(limit))
        return [{"at": aware(f.at).isoformat(), "outcome": f.outcome, "status": f.status,
                 "content_type": f.content_type, "final_url": f.final_url,
                 "address": f.address, "seconds": round(f.seconds, 4), "size": f.size,
                 "error_code": f.error_code, "error": f.error} for f in rows]


# ---- notices -------------------------------------------------------------------------------


def active_notice(engine: Engine, url_id: int) -> NoticeRow | None:
    with Session(engine) as s:
        n = s.scalar(select(TakedownNotice).where(TakedownNotice.url_id == url_id,
                                                  TakedownNotice.state.in_(ACTIVE)))
        return NoticeRow.of(n) if n is not None else None


def open_notice(engine: Engine, url: UrlRow, categories: Sequence[tuple[str, str]],
                series: Sequence[str], entry_ids: Iterable[int], now: datetime,
                deadline: timedelta) -> Opened:
    """Open a notice for a URL whose content matched, due to be sent now, linked to the
    earlier notices (at other URLs) that matched any of the same entries."""
    eids = sorted(set(entry_ids))
    with Session(engine) as s, s.begin():
        # notices open one at a time, so two re-uploads opened at once still see each
        # other (SQLite's single writer does this by itself)
        if is_postgresql(s):
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": OPEN_LOCK})
        first = s.scalar(select(func.min(TakedownFetch.at)).where(
            TakedownFetch.url_id == url.id, TakedownFetch.outcome == "match"))
        n = TakedownNotice(
            url_id=url.id, url=url.url, host=url.host, domain=url.domain,
            case_ref=url.case_ref, state="open",
            categories=[{"scheme": a, "value": b} for a, b in sorted(set(categories))],
            series=sorted(set(series)), first_seen_at=_t(first) or now, opened_at=now,
            deadline_at=now + deadline, sends=0, next_due_at=now)
        s.add(n)
        s.flush()
        s.add_all(TakedownNoticeEntry(notice_id=n.id, entry_id=e) for e in eids)
        earlier: list[int] = []
        if eids:
            earlier = sorted(set(s.scalars(
                select(TakedownNoticeEntry.notice_id)
                .join(TakedownNotice, TakedownNotice.id == TakedownNoticeEntry.notice_id)
                .where(TakedownNoticeEntry.entry_id.in_(eids),
                       TakedownNotice.id != n.id, TakedownNotice.url_id != url.id))))
            s.add_all(TakedownLink(notice_id=n.id, earlier_id=e) for e in earlier)
        s.flush()
        return Opened(NoticeRow.of(n), tuple(earlier))


def get_notice(engine: Engine, notice_id: int) -> NoticeRow | None:
    with Session(engine) as s:
        n = s.get(TakedownNotice, notice_id)
        return NoticeRow.of(n) if n is not None else None


def list_notices(engine: Engine, state: str | None = None, domain: str | None = None,
                 case_ref: str | None = None, limit: int = 1000, after: int = 0,
                 ) -> list[NoticeRow]:
    t = TakedownNotice
    q = select(t).where(t.id > after).order_by(t.id).limit(limit)
    if state == "active":
        q = q.where(t.state.in_(ACTIVE))
    elif state:
        q = q.where(t.state == state)
    if domain:
        q = q.where(t.domain == domain)
    if case_ref:
        q = q.where(t.case_ref == case_ref)
    with Session(engine) as s:
        return [NoticeRow.of(n) for n in s.scalars(q)]


def links(engine: Engine, notice_ids: Iterable[int] | None = None,
          ) -> list[tuple[int, int]]:
    """(notice, earlier notice) pairs: re-uploads and what they re-upload."""
    q = select(TakedownLink.notice_id, TakedownLink.earlier_id)
    if notice_ids is not None:
        ids = list(notice_ids)
        q = q.where(or_(TakedownLink.notice_id.in_(ids), TakedownLink.earlier_id.in_(ids)))
    with Session(engine) as s:
        return [(a, b) for a, b in s.execute(q)]


def sends(engine: Engine, notice_id: int | None = None) -> list[SendRow]:
    q = select(TakedownSend).order_by(TakedownSend.notice_id, TakedownSend.seq)
    if notice_id is not None:
        q = q.where(TakedownSend.notice_id == notice_id)
    with Session(engine) as s:
        return [SendRow.of(x) for x in s.scalars(q)]


def claim_due_notices(engine: Engine, owner: str, now: datetime, lease: timedelta,
                      limit: int) -> list[NoticeRow]:
    """Take up to ``limit`` notices due for work (a send, a re-check) that nobody holds."""
    t = TakedownNotice
    with Session(engine) as s, s.begin():
        ids = list(s.scalars(select(t.id).where(t.next_due_at <= now, _free(t, now))
                             .order_by(t.next_due_at, t.id).limit(limit)))
        if not ids:
            return []
        s.execute(update(t).where(t.id.in_(ids), t.next_due_at <= now, _free(t, now),
                                  t.state.in_(ACTIVE))
                  .values(lease_owner=owner, lease_until=now + lease))
    with Session(engine) as s:
        return [NoticeRow.of(n) for n in s.scalars(
            select(t).where(t.id.in_(ids), t.lease_owner == owner).order_by(t.id))]


def count_due(engine: Engine, now: datetime) -> int:
    t = TakedownNotice
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(t).where(
            t.next_due_at <= now, _free(t, now))) or 0)


def holds(engine: Engine, notice_id: int, owner: str, now: datetime, margin: timedelta,
          ) -> bool:
    """Whether this claim still holds the notice, with at least ``margin`` to spare."""
    with Session(engine) as s:
        until = s.scalar(select(TakedownNotice.lease_until).where(
            TakedownNotice.id == notice_id, TakedownNotice.lease_owner == owner))
        return until is not None and aware(until) - now >= margin


def pending_send(engine: Engine, notice_id: int) -> SendRow | None:
    """A message written to the ledger whose sending was never confirmed (a crash)."""
    with Session(engine) as s:
        x = s.scalar(select(TakedownSend).where(TakedownSend.notice_id == notice_id,
                                                TakedownSend.state == "sending"))
        return SendRow.of(x) if x is not None else None


def begin_send(engine: Engine, notice_id: int, owner: str, kind: str, to_addr: str,
               message_id_of: Any, now: datetime) -> SendRow | None:
    """Write the next message of a notice to the ledger (state ``sending``), before it
    leaves. None if the claim was lost."""
    with Session(engine) as s, s.begin():
        n = s.scalar(select(TakedownNotice).where(TakedownNotice.id == notice_id,
                                                  TakedownNotice.lease_owner == owner))
        if n is None:
            return None
        seq = int(s.scalar(select(func.coalesce(func.max(TakedownSend.seq), 0)).where(
            TakedownSend.notice_id == notice_id)) or 0) + 1
        x = TakedownSend(notice_id=notice_id, seq=seq, kind=kind, to_addr=to_addr,
                         message_id=message_id_of(seq), state="sending", created_at=now,
                         attempts=1)
        s.add(x)
        s.flush()
        return SendRow.of(x)


def retry_send(engine: Engine, send_id: int) -> None:
    with Session(engine) as s, s.begin():
        s.execute(update(TakedownSend).where(TakedownSend.id == send_id)
                  .values(attempts=TakedownSend.attempts + 1))


def finish_send(engine: Engine, send: SendRow, owner: str, now: datetime,
                next_due_at: datetime | None) -> bool:
    """The message left: mark it sent and move the notice on (sent; escalated), one
    transaction. False if the claim was lost (the ledger row is still marked sent)."""
    t = TakedownNotice
    with Session(engine) as s, s.begin():
        s.execute(update(TakedownSend).where(TakedownSend.id == send.id)
                  .values(state="sent", sent_at=now))
        n = s.scalar(select(t).where(t.id == send.notice_id, t.lease_owner == owner))
        if n is None:
            return False
        n.sends += 1
        n.first_sent_at = n.first_sent_at or now
        n.last_sent_at = now
        if n.state == "open":
            n.state = "sent"
        if send.kind == "escalation":
            n.escalated_at = now
        n.problem = None
        n.next_due_at = next_due_at
        n.lease_owner, n.lease_until = None, None
    return True


def release(engine: Engine, notice_id: int, owner: str, next_due_at: datetime | None,
            problem: str | None) -> bool:
    """Give a notice back without sending (no contact, relay down): due again later."""
    t = TakedownNotice
    with Session(engine) as s, s.begin():
        r = s.execute(update(t).where(t.id == notice_id, t.lease_owner == owner).values(
            next_due_at=next_due_at, problem=problem, lease_owner=None, lease_until=None))
        return _count(r) == 1


def mark_removed(engine: Engine, notice_id: int, owner: str | None, now: datetime,
                 how: str) -> bool:
    """A re-fetch verified the content is gone (``gone``) or no longer matches
    (``no-match``): the notice is removed, nothing more is due."""
    t = TakedownNotice
    cond = [t.id == notice_id, t.state.in_(ACTIVE)]
    if owner is not None:
        cond.append(t.lease_owner == owner)
    with Session(engine) as s, s.begin():
        r = s.execute(update(t).where(and_(*cond)).values(
            state="removed", removed_at=now, removal=how, next_due_at=None,
            lease_owner=None, lease_until=None, problem=None))
        return _count(r) == 1


def set_state(engine: Engine, notice_id: int, action: str, now: datetime) -> NoticeRow:
    """A person's step: ``acknowledge`` (the host answered) or ``close``."""
    t = TakedownNotice
    with Session(engine) as s, s.begin():
        n = s.get(t, notice_id)
        if n is None:
            raise TakedownError(f"no notice {notice_id}")
        if action == "acknowledge":
            if n.state not in ("open", "sent"):
                raise TakedownError(f"notice {notice_id} is {n.state}: only an open or sent "
                                    "notice can be acknowledged")
            n.state, n.acknowledged_at = "acknowledged", now
        elif action == "close":
            if n.state == "closed":
                raise TakedownError(f"notice {notice_id} is already closed")
            n.state, n.closed_at, n.next_due_at = "closed", now, None
        else:
            raise TakedownError(f"unknown action {action!r}")
        s.flush()
        return NoticeRow.of(n)


# ---- contacts ------------------------------------------------------------------------------


def set_contact(engine: Engine, c: Contact, now: datetime) -> None:
    """Add or replace a host's contact; its notices waiting for one are due at once."""
    with Session(engine) as s, s.begin():
        row = s.scalar(select(TakedownContact).where(TakedownContact.domain == c.domain))
        if row is None:
            row = TakedownContact(domain=c.domain)
            s.add(row)
        row.email, row.escalation_email, row.name, row.country = (
            c.email, c.escalation_email, c.name, c.country)
        t = TakedownNotice
        s.execute(update(t).where(t.domain == c.domain, t.problem.is_not(None),
                                  t.state.in_(ACTIVE)).values(next_due_at=now))


def get_contact(engine: Engine, domain: str) -> Contact | None:
    with Session(engine) as s:
        r = s.scalar(select(TakedownContact).where(TakedownContact.domain == domain))
        return Contact(r.domain, r.email, r.escalation_email, r.name, r.country) if r else None


def list_contacts(engine: Engine) -> list[Contact]:
    with Session(engine) as s:
        return [Contact(r.domain, r.email, r.escalation_email, r.name, r.country)
                for r in s.scalars(select(TakedownContact).order_by(TakedownContact.domain))]


def remove_contact(engine: Engine, domain: str) -> bool:
    with Session(engine) as s, s.begin():
        r = s.execute(delete(TakedownContact).where(TakedownContact.domain == domain))
        return _count(r) == 1

"""The notice loop: due work lives in the database; any number of workers run cycles.

A cycle takes (claims) what is due, in batches, and does it:

* a **URL due for a check** is fetched (``vigil.takedown.fetch``), its signals matched
  against the node's banks; a match opens a notice (due at once), linked to earlier
  notices of the same entries at other URLs (re-uploads). A failed fetch is retried
  later, a few times; a refused one (not an image, too large, a private address) is not.
* a **notice due** is first re-checked if it was sent before: gone (404/410/451), or no
  longer matching, and it is *removed* (removal verified) and nothing more is due.
  Otherwise its next message goes out: the first notice, a re-notice every
  ``Settings.renotice``, and once past ``Settings.deadline`` an escalation to the host's
  second contact. A host with no contact yet waits (``problem`` says so).

**Exactly-once sending.** Each message is written to the send ledger (``sending``,
with its number and a stable Message-ID) and committed before it leaves, and marked
``sent`` with the notice's next due time in one transaction after the relay accepted
it. A worker killed in between leaves a ``sending`` row; whoever claims the notice next
(after the lease ran out) sends *that same message* again, never a new one. So:

* killed before or while handing the message over: it is sent once, after restart;
* killed after the relay accepted it but before the commit (a window of one database
  round trip): it is sent twice, with the same Message-ID and number, which a relay or
  host can recognise. This is the at-least-once choice: a notice missed harms a
  victim; one repeated with the same identity does not. The outbox folder (one file per
  Message-ID, replaced atomically) has no such window.

Two workers never hold the same notice (``repo.claim_due_notices``), and a worker
checks its lease has time to spare before it sends.
"""

from __future__ import annotations

import logging
import threading
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from vigil.matching import Match, Matcher, queries_of
from vigil.signals import FileSignals
from vigil.takedown import repo
from vigil.takedown.clock import Clock
from vigil.takedown.fetch import Fetcher, FetchResult
from vigil.takedown.mail import Mailer, MailError
from vigil.takedown.render import email_of, message_id
from vigil.takedown.repo import Contact, FetchFacts, NoticeRow, SendRow, UrlRow
from vigil.takedown.settings import Settings

log = logging.getLogger("vigil.takedown")

#: fetch errors that will not change by trying again
PERMANENT = frozenset({"content-type", "not-media", "too-large", "address-refused",
                       "redirect-loop", "too-many-redirects", "bad-redirect",
                       "content-encoding"})
#: fetch errors that, at a URL that matched before, mean the material was replaced
REPLACED = frozenset({"content-type", "not-media"})
#: how soon a notice whose message could not be handed over is tried again
MAIL_RETRY = timedelta(minutes=5)
BATCH = 200


@dataclass(frozen=True, slots=True)
class Found:
    """What a match of fetched content found: labels and entries, never hashes."""

    categories: tuple[tuple[str, str], ...]
    series: tuple[str, ...]
    entry_ids: tuple[int, ...]


@dataclass(slots=True)
class CycleStats:
    checked: int = 0
    matched: int = 0
    opened: int = 0
    sent: int = 0
    removed: int = 0
    waiting: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"checked": self.checked, "matched": self.matched, "opened": self.opened,
                "sent": self.sent, "removed": self.removed, "waiting": self.waiting,
                "errors": self.errors[:50]}


def _verified(matches: typing.Sequence[Match]) -> list[Match]:
    """Matches that may open a notice: not on unverified entries (victims' self-submitted
    hashes, tagged ``unverified``: a hit on them is a lead for review, never an automatic
    action)."""
    return [m for m in matches if "unverified" not in m.entry.labels.tags]


def facts_of(r: FetchResult, outcome: str) -> FetchFacts:
    return FetchFacts(outcome=outcome, status=r.status, content_type=r.content_type,
                      final_url=r.final_url, address=r.address, seconds=r.seconds,
                      size=r.signals.digests.size if r.signals and r.signals.digests else None,
                      error_code=r.error.code if r.error else None,
                      error=str(r.error) if r.error else None)


class Loop:
    """One worker's view of the notice loop (see the module doc)."""

    def __init__(self, engine: Engine, matcher: Matcher, fetcher: Fetcher, mailer: Mailer,
                 settings: Settings, clock: Clock, agency: str, name: str = "worker",
                 after_send: Callable[[SendRow], None] | None = None, batch: int = BATCH,
                 ) -> None:
        self.engine, self.matcher, self.fetcher, self.mailer = engine, matcher, fetcher, mailer
        self.settings, self.clock, self.agency, self.name = settings, clock, agency, name
        #: called after the relay accepted a message, before it is marked sent (tests)
        self.after_send = after_send
        #: rows claimed at once (a smaller batch shares the work among workers more finely)
        self.batch = batch
        #: set when the server stops: the cycle ends after the rows in hand (rows claimed
        #: but not begun stay leased, and are due again when the lease runs out)
        self.stopping = threading.Event()

    # ---- matching ----------------------------------------------------------------------

    def match(self, signals: FileSignals) -> Found | None:
        outcome = self.matcher.match([queries_of(signals, dihedral=True)])[0]
        matches = _verified(outcome.matches)
        if not matches:
            return None
        cats = {m.entry.labels.category for m in matches if m.entry.labels.category}
        series = {m.entry.labels.series for m in matches if m.entry.labels.series}
        return Found(tuple(sorted(cats)), tuple(sorted(series)),
                     tuple(sorted({m.entry.id for m in matches})))

    def _classify(self, r: FetchResult) -> tuple[str, Found | None]:
        if r.ok and r.signals is not None:
            found = self.match(r.signals)
            return ("match" if found else "no-match"), found
        return ("gone" if r.gone else "error"), None

    # ---- URLs --------------------------------------------------------------------------

    def check_url(self, u: UrlRow, owner: str) -> tuple[str, bool]:
        """Fetch a claimed URL, match it, open a notice on a match; (outcome, opened)."""
        r = self.fetcher.fetch(u.url)
        outcome, found = self._classify(r)
        now = self.clock.now()
        opened = False
        if found is not None and repo.active_notice(self.engine, u.id) is None:
            o = repo.open_notice(self.engine, u, found.categories, found.series,
                                 found.entry_ids, now, self.settings.deadline)
            opened = True
            if o.earlier:
                log.info("notice %d re-uploads the material of notice(s) %s", o.notice.id,
                         ", ".join(map(str, o.earlier)))
        state, nxt = {"match": ("matched", None), "no-match": ("no-match", None),
                      "gone": ("gone", None)}.get(outcome, ("error", None))
        if outcome == "error":
            assert r.error is not None
            if r.error.code in PERMANENT:
                state = "refused"
            elif u.checks + 1 < self.settings.max_checks:
                nxt = now + self.settings.retry
            else:
                state = "failed"
        repo.record_fetch(self.engine, u.id, owner, now, facts_of(r, outcome), state, nxt)
        return outcome, opened

    # ---- notices -----------------------------------------------------------------------

    def work_notice(self, n: NoticeRow, owner: str) -> str:
        """Do what a claimed notice is due for: sent | removed | waiting | lost."""
        pending = repo.pending_send(self.engine, n.id)
        if pending is not None:  # a message a dead worker may not have sent: that one again
            return self._deliver(n, pending, owner, repo.get_contact(self.engine, n.domain))
        if n.sends > 0:
            r = self.fetcher.fetch(n.url)
            outcome, _found = self._classify(r)
            removed = outcome in ("gone", "no-match") or (
                r.error is not None and r.error.code in REPLACED)
            now = self.clock.now()
            repo.record_fetch(self.engine, n.url_id, owner, now, facts_of(r, outcome),
                              None, None)
            if removed:
                how = "gone" if outcome == "gone" else "no-match"
                return "removed" if repo.mark_removed(self.engine, n.id, owner, now, how) \
                    else "lost"
        now = self.clock.now()
        contact = repo.get_contact(self.engine, n.domain)
        if contact is None:
            repo.release(self.engine, n.id, owner, now + self.settings.retry,
                         f"no contact for {n.domain}: add one with `vigil notice contact "
                         f"add {n.domain} EMAIL`")
            return "waiting"
        if n.sends == 0:
            kind = "notice"
        elif now >= n.deadline_at and n.escalated_at is None and contact.escalation_email:
            kind = "escalation"
        else:
            kind = "renotice"
        if not repo.holds(self.engine, n.id, owner, now, self.settings.lease / 2):
            return "lost"
        to = contact.escalation_email if kind == "escalation" else contact.email
        send = repo.begin_send(self.engine, n.id, owner, kind, to or contact.email,
                               lambda seq: message_id(self.agency, n.id, seq), now)
        if send is None:
            return "lost"
        return self._deliver(n, send, owner, contact)

    def _deliver(self, n: NoticeRow, send: SendRow, owner: str, contact: Contact | None,
                 ) -> str:
        c = contact or Contact(n.domain, send.to_addr)
        msg = email_of(n, self.agency, c, send.kind, send.seq, self.settings.sender,
                       send.created_at)
        try:
            self.mailer.send(msg)
        except MailError as exc:
            repo.retry_send(self.engine, send.id)
            repo.release(self.engine, n.id, owner, self.clock.now() + MAIL_RETRY, str(exc))
            return "waiting"
        if self.after_send is not None:
            self.after_send(send)
        now = self.clock.now()
        nxt = now + self.settings.renotice
        escalation_owed = (send.kind != "escalation" and n.escalated_at is None
                           and c.escalation_email is not None)
        if escalation_owed and n.deadline_at > now:
            nxt = min(nxt, n.deadline_at)
        repo.finish_send(self.engine, send, owner, now, nxt)
        return "sent"

    # ---- a cycle -----------------------------------------------------------------------

    def cycle(self, max_rounds: int = 1000) -> CycleStats:
        """Do everything due now, batch by batch, until nothing is due (a row whose work
        failed stays held until its lease runs out, so a cycle always ends)."""
        stats = CycleStats()
        workers = max(1, self.settings.concurrency)
        with ThreadPoolExecutor(workers, thread_name_prefix="vigil-takedown") as pool:
            for _ in range(max_rounds):
                owner = repo.new_owner(self.name)
                now = self.clock.now()
                urls = repo.claim_due_urls(self.engine, owner, now, self.settings.lease,
                                           self.batch)
                owners = [owner] * len(urls)
                for u, res in zip(urls, pool.map(self._safe, [self.check_url] * len(urls),
                                                 urls, owners), strict=True):
                    if isinstance(res, str):
                        stats.errors.append(f"url {u.id}: {res}")
                        continue
                    outcome, opened = typing.cast(tuple[str, bool], res)
                    stats.checked += 1
                    stats.matched += outcome == "match"
                    stats.opened += opened
                now = self.clock.now()
                notices = repo.claim_due_notices(self.engine, owner, now, self.settings.lease,
                                                 self.batch)
                owners = [owner] * len(notices)
                for n, out in zip(notices, pool.map(
                        self._safe, [self.work_notice] * len(notices), notices, owners),
                        strict=True):
                    if out == "sent":
                        stats.sent += 1
                    elif out == "removed":
                        stats.removed += 1
                    elif out == "waiting":
                        stats.waiting += 1
                    elif out != "lost":
                        stats.errors.append(f"notice {n.id}: {out}")
                if (not urls and not notices) or self.stopping.is_set():
                    break
        return stats

    def _safe(self, fn: Callable[..., object], row: object, owner: str) -> object:
        """One row's failure (a database hiccup) must not end the cycle: its lease runs
        out and it is due again."""
        if self.stopping.is_set():
            return "lost"
        try:
            return fn(row, owner)
        except Exception as exc:
            log.warning("takedown: %s failed: %s: %s", fn.__name__, type(exc).__name__, exc)
            return f"{type(exc).__name__}: {str(exc)[:200]}"

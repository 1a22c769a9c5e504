"""Notices as a host reads them: text and JSON, from the notice and the host's contact.

What a host is told: the URL, the host, the categories the matched entries carry, when
the material was first seen there, how many notices came before, the deadline, and the
sending agency's reference (``AGENCY-N<id>``). Not told: the case reference, the series
(they name a victim's material), the banks, the hashes.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from vigil.takedown.repo import Contact, NoticeRow

KINDS = ("notice", "renotice", "escalation")


def reference(agency: str, notice_id: int) -> str:
    return f"{agency}-N{notice_id}"


def message_id(agency: str, notice_id: int, seq: int) -> str:
    """Stable per (notice, message number): a message sent again after a crash carries
    the same Message-ID, so a receiver can tell it is the same one."""
    return f"<takedown.{agency.lower()}.{notice_id}.{seq}@vigil.invalid>"


def notice_json(n: NoticeRow, agency: str, kind: str = "notice", seq: int = 1,
                ) -> dict[str, Any]:
    return {"type": "vigil.takedown.notice", "version": 1, "reference": reference(agency, n.id),
            "kind": kind, "number": seq, "agency": agency, "url": n.url, "host": n.host,
            "domain": n.domain,
            "categories": [{"scheme": s, "value": v} for s, v in n.categories],
            "first_seen_at": n.first_seen_at.isoformat(), "opened_at": n.opened_at.isoformat(),
            "deadline_at": n.deadline_at.isoformat(), "notices_before": n.sends}


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


def notice_text(n: NoticeRow, agency: str, contact: Contact | None, kind: str = "notice",
                seq: int = 1) -> str:
    greeting = f"Dear {contact.name}," if contact and contact.name else "Hello,"
    cats = ", ".join(f"{s}:{v}" for s, v in n.categories) or "known material"
    lead = {
        "notice": "The URL below serves material that matches entries in our hash banks of "
                  "child sexual abuse material. Please remove it.",
        "renotice": f"This is reminder {seq - 1} about the URL below: a check of it just now "
                    "found the material still there. Please remove it.",
        "escalation": "The URL below is still online past the removal deadline, after "
                      f"{n.sends} notice(s) to your abuse contact. We are escalating it to "
                      "you. Please remove it.",
    }[kind]
    return "\n".join([
        greeting, "", lead, "",
        f"  Reference:   {reference(agency, n.id)}",
        f"  URL:         {n.url}",
        f"  Host:        {n.host}",
        f"  Categories:  {cats}",
        f"  First seen:  {_when(n.first_seen_at)}",
        f"  Deadline:    {_when(n.deadline_at)}",
        f"  Notices so far: {n.sends}", "",
        "We check the URL again before each reminder; reminders stop when the material is "
        "gone or no longer matches. Reply quoting the reference to acknowledge.", "",
        f"{agency} (sent by Vigil)", ""])


def email_of(n: NoticeRow, agency: str, contact: Contact, kind: str, seq: int, sender: str,
             now: datetime) -> EmailMessage:
    """The message for a notice: text, with the JSON as an attachment."""
    msg = EmailMessage()
    if kind == "escalation" and contact.escalation_email:
        msg["To"] = contact.escalation_email
        msg["Cc"] = contact.email
    else:
        msg["To"] = contact.email
    msg["From"] = sender
    label = {"notice": "Takedown notice", "renotice": "Reminder", "escalation": "Escalation"}
    msg["Subject"] = f"[{reference(agency, n.id)}] {label[kind]}: {n.host}"
    msg["Message-ID"] = message_id(agency, n.id, seq)
    msg["Date"] = format_datetime(now)
    msg["X-Vigil-Notice"] = f"{reference(agency, n.id)}; kind={kind}; number={seq}"
    msg.set_content(notice_text(n, agency, contact, kind, seq))
    msg.add_attachment(json.dumps(notice_json(n, agency, kind, seq), indent=1).encode(),
                       maintype="application", subtype="json",
                       filename=f"{reference(agency, n.id)}-{seq}.json")
    return msg


def host_text(notices: list[NoticeRow], agency: str, contact: Contact | None) -> str:
    """Every active notice of one host, as one text (to read or to send by hand)."""
    return "\n".join(notice_text(n, agency, contact, "notice" if n.sends == 0 else "renotice",
                                 n.sends + 1) for n in notices)


def host_json(notices: list[NoticeRow], agency: str, contact: Contact | None,
              ) -> dict[str, Any]:
    return {"contact": contact.to_json() if contact else None,
            "notices": [notice_json(n, agency, "notice" if n.sends == 0 else "renotice",
                                    n.sends + 1) for n in notices]}

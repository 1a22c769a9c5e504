"""Host contacts at the door: a registrable domain, and addresses that look like one."""

from __future__ import annotations

import re

from vigil.banks.text import FieldError, label
from vigil.takedown.repo import Contact
from vigil.takedown.urls import UrlError, registrable_domain

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$")


class ContactError(ValueError):
    """A contact that cannot be stored; the message names the field."""


def _email(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    v = value.strip()
    if not _EMAIL.match(v) or ".." in v or v.endswith("."):
        raise ContactError(f"{field}: not an e-mail address")
    return v


def check(domain: str, email: str, escalation: str | None = None, name: str = "",
          country: str | None = None) -> Contact:
    d = domain.strip().lower().rstrip(".")
    try:
        from vigil.takedown.urls import normalise

        host = normalise(f"http://{d}/").split("/")[2]
    except UrlError:
        raise ContactError("domain: not a domain name") from None
    if registrable_domain(host) != host:
        raise ContactError(f"domain: give the registrable domain "
                           f"({registrable_domain(host)}), not a host under it")
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country):
        raise ContactError("country: an ISO 3166 two-letter code")
    try:
        shown = label(name, "name", 200) if name else ""
    except FieldError as exc:
        raise ContactError(str(exc)) from None
    return Contact(host, _email(email, "email") or "", _email(escalation, "escalation"),
                   shown, country.upper() if country else None)

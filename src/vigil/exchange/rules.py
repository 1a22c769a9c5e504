"""Sharing rules: which bank goes to which peer agency, with which labels, passed on or not.

Deny by default: a bank with no rule for an agency is not in that agency's feed list and
its feed answers 403. A mirror bank (pulled from a peer) can be passed on only if its
origin allowed it, and only as the origin signed it: its label fields cannot be changed
here, because the origin's signatures cover them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from vigil.banks import BankError
from vigil.exchange import repo
from vigil.exchange.records import DEFAULT_FIELDS, SHAREABLE_FIELDS, Descriptor
from vigil.exchange.repo import MirrorInfo, RuleInfo
from vigil.node import check_code

#: victims' self-submitted hashes (vigil.selfsubmit): unverified, so their tags (which say
#: so) always travel with them, whatever label fields a rule names; a peer must never take
#: them for verified entries (its takedown acts only on verified ones)
SELF_SUBMITTED_BANK = "self-submitted"


def check_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    """Validate label field names; None means the default (category only)."""
    if fields is None:
        return DEFAULT_FIELDS
    out = sorted({f.strip() for f in fields if f.strip()})
    bad = [f for f in out if f not in SHAREABLE_FIELDS]
    if bad:
        raise BankError(f"unknown label field(s) {', '.join(bad)}; shareable: "
                        f"{', '.join(SHAREABLE_FIELDS)}")
    return tuple(out)


def share(engine: Engine, bank: str, agency: str, fields: Sequence[str] | None = None,
          reshare: bool = False, by: str | None = None) -> RuleInfo:
    """Share ``bank`` with ``agency`` (create or replace the rule)."""
    agency = check_code(agency)

    def decide(b: repo.BankFacts) -> tuple[tuple[str, ...], bool]:
        if agency == b.agency:
            raise BankError(f"{agency} owns bank {bank!r}; sharing is with other agencies")
        if b.mirror_of is None:
            checked = check_fields(fields)
            if bank == SELF_SUBMITTED_BANK and "tags" not in checked:
                checked = tuple(sorted((*checked, "tags")))
            return checked, reshare
        d = Descriptor.parse(b.mirror_of)
        if not d.reshare:
            raise BankError(f"bank {bank!r} mirrors {d}; {d.origin} did not allow "
                            "passing it on")
        if fields is not None and tuple(sorted(fields)) != d.fields:
            raise BankError(f"bank {bank!r} mirrors {d} and is passed on as {d.origin} "
                            f"signed it (labels: {', '.join(d.fields) or 'none'}); "
                            "its label fields cannot be changed")
        return d.fields, d.reshare

    return repo.put_rule(engine, bank, agency, decide, by)


def unshare(engine: Engine, bank: str, agency: str) -> bool:
    """Stop sharing ``bank`` with ``agency``; False if it was not shared with it.

    What the peer already pulled stays with it (nothing can be taken back over the
    network); its next sync of this feed is refused.
    """
    return repo.delete_rule(engine, bank, agency)


def rules(engine: Engine, bank: str | None = None, agency: str | None = None,
          owner: str | None = None) -> list[RuleInfo]:
    """Sharing rules, optionally of one bank, one peer agency, or banks of one owner."""
    return repo.list_rules(engine, bank, agency, owner)


def mirror_info(engine: Engine, bank: str) -> MirrorInfo | None:
    """The provenance and sync state of mirror bank ``bank`` (None for a local bank)."""
    return repo.mirror_info(engine, bank)


def mirror_names(engine: Engine) -> dict[str, str]:
    """Local mirror bank name -> ``ORIGIN/bank`` it mirrors."""
    return repo.mirror_names(engine)


__all__ = ["SELF_SUBMITTED_BANK", "MirrorInfo", "RuleInfo", "check_fields", "mirror_info",
           "mirror_names", "rules", "share", "unshare"]

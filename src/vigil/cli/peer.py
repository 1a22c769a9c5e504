"""``vigil peer …`` (nodes this node pulls from) and ``vigil bank share/unshare/shares``,
``vigil bank opinion/opinions`` (what this node shares, and its view of mirrored entries)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._app import app, bank_app, err, fail
from vigil.cli._display import markup

if TYPE_CHECKING:
    from sqlalchemy import Engine

peer_app = typer.Typer(
    help="Peers: other agencies' nodes this node pulls shared banks from.\n\n"
    "Setting up a pair (HK pulls from SG):\n\n"
    "  on SG: vigil bank share csam HK-POL --labels category,series\n\n"
    "  on SG: vigil peer grant HK-POL        (prints a token for HK, once)\n\n"
    "  on HK: vigil peer add sg https://sg.example:8443 --key SG_PUBLIC_KEY --token TOKEN\n\n"
    "  on HK: vigil peer sync sg             (or let `vigil serve` sync every minute)",
    no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(peer_app, name="peer")


def _engine() -> Engine:
    from vigil.store import make_engine, migrate

    engine = make_engine()
    migrate(engine)
    return engine


@contextmanager
def _guard() -> Iterator[None]:
    """Expected refusals (an unknown peer, a key mismatch, a bad name) as one-line errors."""
    from vigil.banks import BankError
    from vigil.exchange.peers import FeedError, PeerError
    from vigil.node import NodeError

    try:
        yield
    except (PeerError, FeedError, NodeError, BankError, ValueError) as exc:
        fail(str(exc))


def _local_agency(engine: Engine) -> str:
    from vigil.node import identity

    ident = identity(engine)
    if ident is None:
        fail("this node has no identity yet: run `vigil init` first")
    return ident.agency


@peer_app.command("grant")
def grant(
    agency: Annotated[str, typer.Argument(help="The peer agency's code, e.g. HK-POL.")],
    name: Annotated[str, typer.Option(help="Name of the peer's service principal here.")] = "node",
    days: Annotated[int, typer.Option(help="Days the token lives.")] = 365,
) -> None:
    """Issue a token a peer agency's node uses to pull the banks shared with it (printed once).

    The token is bound to that agency: with it, the peer reads only feeds of banks shared
    with its agency (`vigil bank share`), and nothing else of this node.
    """
    from vigil.cli._audit import local_actor, opened
    from vigil.node import create_principal, ensure_agency, find_principal, issue_token

    engine = _engine()
    with _guard():
        if agency == _local_agency(engine):
            fail(f"{agency} is this node's own agency")
        audit = opened(engine)
        ensure_agency(engine, agency)
        p = find_principal(engine, agency, name)
        if p is None:
            p = create_principal(engine, agency, name, ["peer"], "service",
                                 created_by=local_actor())
            audit.record("user.create", p.label, roles=list(p.roles), kind=p.kind)
        if "peer" not in p.roles:
            fail(f"{agency}/{name} exists without the peer role; choose another --name")
        token, t = issue_token(engine, p.id, days, f"peer token for {agency}")
        audit.record("token.create", p.label, token_id=t.id, days=days)
    err.print(f"token for {markup(agency)}/{markup(name)} (role peer, valid {days} days; "
              "shown once — give it to the peer's administrator over a secure channel):",
              highlight=False)
    typer.echo(token)


@peer_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A short local name for the peer, e.g. sg.")],
    url: Annotated[str, typer.Argument(help="The peer node's base URL.")],
    key: Annotated[str, typer.Option(help="The peer's Ed25519 public key (hex), obtained out "
                                          "of band: `vigil init` printed it on the peer.")],
    token: Annotated[str, typer.Option(help="The token the peer issued to this node "
                                            "(`vigil peer grant` there).")],
) -> None:
    """Register a peer. Its key must match what it presents, or nothing is registered."""
    from vigil.cli._audit import local_actor, opened
    from vigil.exchange.peers import add_peer
    from vigil.store import vigil_home

    engine = _engine()
    with _guard():
        audit = opened(engine)
        p = add_peer(engine, vigil_home(), name, url, key, token, by=local_actor())
    audit.record("peer.add", p.name, agency=p.agency, url=p.url, public_key=p.public_key)
    err.print(f"added peer {markup(p.name)}: {markup(p.agency)} at {markup(p.url)}",
              highlight=False)


@peer_app.command("trust")
def trust(
    agency: Annotated[str, typer.Argument(help="An origin agency's code, e.g. SG-SPF.")],
    key: Annotated[str, typer.Option(help="Its Ed25519 public key (hex), obtained out of band.")],
) -> None:
    """Trust an origin agency's key, for its banks passed on to us by another peer."""
    from vigil.cli._audit import opened
    from vigil.exchange.peers import trust as trust_key

    engine = _engine()
    with _guard():
        audit = opened(engine)
        trust_key(engine, agency, key)
    audit.record("peer.trust", agency, public_key=key.strip().lower())
    err.print(f"trusting {markup(agency)}'s key {markup(key[:16])}…", highlight=False)


@peer_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False) -> None:
    """Peers, their agencies, last sync and last error."""
    from vigil.exchange.peers import list_peers

    peers = list_peers(_engine())
    if as_json:
        typer.echo(json.dumps([{"name": p.name, "agency": p.agency, "url": p.url,
                                "public_key": p.public_key, "feeds": p.feeds,
                                "synced_at": p.synced_at.isoformat() if p.synced_at else None,
                                "error": p.error} for p in peers], indent=2))
        return
    if not peers:
        err.print("no peers yet (vigil peer add)")
        return
    t = Table("name", "agency", "url", "feeds", "last sync", "error")
    for p in peers:
        t.add_row(markup(p.name), markup(p.agency), markup(p.url), str(p.feeds),
                  p.synced_at.strftime("%Y-%m-%d %H:%M:%S") if p.synced_at else "never",
                  markup(p.error or ""))
    Console().print(t)


@peer_app.command("sync")
def sync(
    name: Annotated[str | None, typer.Argument(help="Peer to sync (default: all).")] = None,
    page_size: Annotated[int, typer.Option(help="Records per request (at most 20,000).")
                         ] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Pull what peers share into local read-only mirror banks.

    Incremental (from each feed's checkpoint), resumable after any failure, idempotent.
    Verified pages are committed at least every 2 seconds (VIGIL_SYNC_COMMIT_SECONDS): a
    kill loses at most that much work. A record that fails verification, or a page that
    comes back empty before the feed's head, stops that feed with an error naming it;
    what came before is kept.

    Each sync also witnesses the peer's audit log: it keeps the peer's signed audit head,
    hands back the furthest one kept, and collects the heads of this node's log the peer
    keeps (vigil audit verify checks against them). A peer whose log went back fails.

    Exit status 1 if any feed failed, or the peer's audit log went back.
    """
    from vigil.api.runtime.epochs import epoch_file
    from vigil.cli._audit import local_actor, opened
    from vigil.exchange.sync import PeerSyncer, summary
    from vigil.store import vigil_home

    engine = _engine()
    home = vigil_home()

    def show(fs) -> None:  # type: ignore[no-untyped-def]
        if not quiet and not as_json:
            err.print(f"  {markup(fs.mirror)}: seq {fs.after}/{fs.head}", highlight=False)

    with _guard():
        from vigil.exchange.peers import list_peers

        names = [name] if name else [p.name for p in list_peers(engine)]
        if not names:
            fail("no peers yet (vigil peer add)")
        audit = opened(engine).log
        epochs = epoch_file(home)  # running workers of this host see new mirrors at once
        results = [PeerSyncer(engine, home, n, page_size=page_size, audit=audit,
                              progress=show, banks_changed=lambda: epochs.bump("banks"),
                              actor=local_actor()).run()
                   for n in names]
    # the series registries of the same peers (vigil.victimid): claims, identifications,
    # hit notices and granted clues travel with every sync
    from vigil.cli.series import report_sync
    from vigil.victimid.sync import sync_all as sync_registries

    registries = sync_registries(engine, home, names)
    for rs in registries:
        audit.append("series.sync", outcome="ok" if rs.error is None else "failed",
                     agency=_local_agency(engine), actor=local_actor(), target=rs.peer,
                     detail={"records": rs.after - rs.before, "hits": rs.hits,
                             "clues": rs.clues, "error": rs.error})
    if not as_json:
        report_sync(registries, False)
    if as_json:
        typer.echo(json.dumps([summary(r) for r in results], indent=2))
    else:
        for r in results:
            if r.error:
                err.print(f"[red]{markup(r.peer)}: {markup(r.error)}[/red]", highlight=False)
            for d in r.dropped:
                err.print(f"[yellow]{markup(r.peer)}: {markup(d)} is no longer shared with "
                          "us; the mirror is kept, no longer synced[/yellow]", highlight=False)
            for f in r.feeds:
                line = (f"{markup(r.peer)}: {markup(f.feed)} -> {markup(f.mirror)}: seq "
                        f"{f.before} -> {f.after} of {f.head} (+{f.added} added, "
                        f"{f.updated} relabelled, "
                        f"{f.removed} retracted)")
                if f.error:
                    err.print(f"[red]{line}: {markup(f.error)}[/red]", highlight=False)
                else:
                    err.print(line, highlight=False)
    if not all(r.ok for r in results) or any(rs.error for rs in registries):
        raise typer.Exit(1)


@peer_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="Peer name.")]) -> None:
    """Forget a peer and its token (its mirror banks stay, read-only, no longer synced)."""
    from vigil.cli._audit import opened
    from vigil.exchange.peers import remove_peer
    from vigil.store import vigil_home

    engine = _engine()
    with _guard():
        audit = opened(engine)
        remove_peer(engine, vigil_home(), name)
    audit.record("peer.remove", name)
    err.print(f"removed peer {markup(name)}", highlight=False)


# ---- sharing rules and opinions, under `vigil bank` ---------------------------------------

@bank_app.command("share")
def share(
    bank: Annotated[str, typer.Argument(help="Bank name.")],
    agency: Annotated[str, typer.Argument(help="Peer agency code, e.g. HK-POL.")],
    labels: Annotated[str | None, typer.Option(
        help="Label fields that go along, comma-separated, from: category, series, "
             "victim_status, tags, note. Default: category.")] = None,
    reshare: Annotated[bool, typer.Option(help="Let the peer pass the bank on.")] = False,
    materialise: Annotated[bool, typer.Option(
        help="Build the signed feed now (the peer's first sync then reads it stored); "
             "--no-materialise leaves it to the first pull.")] = True,
) -> None:
    """Share a bank with a peer agency: its signals, and only the label fields named.

    Nothing is shared by default. The peer pulls the bank as a signed feed (`vigil peer
    grant` gives it a token); replacing a rule with other fields makes peers resync.
    """
    import time

    from vigil.cli._audit import local_actor, opened
    from vigil.exchange.feeds import materialise_shared
    from vigil.exchange.rules import share as do_share
    from vigil.node import identity, signing_key
    from vigil.store import vigil_home

    with _guard():
        fields = [f.strip() for f in labels.split(",")] if labels is not None else None
        engine = _engine()
        audit = opened(engine)
        r = do_share(engine, bank, agency, fields, reshare, by=local_actor())
    audit.record("bank.share", r.bank, agency=r.agency, fields=list(r.fields),
                 reshare=r.reshare)
    err.print(f"bank {markup(r.bank)} shared with {markup(r.agency)}: signals + "
              f"{', '.join(r.fields) or 'no labels'}"
              f"{'; may be passed on' if r.reshare else ''}", highlight=False)
    ident = identity(engine)
    if materialise and ident is not None:
        t = time.perf_counter()
        with _guard():
            n = materialise_shared(engine, signing_key(vigil_home()), ident.agency, r.bank,
                                   r.agency)
        if n:
            err.print(f"feed built: {n:,} signed records in {time.perf_counter() - t:.1f} s",
                      highlight=False)


@bank_app.command("unshare")
def unshare(bank: Annotated[str, typer.Argument(help="Bank name.")],
            agency: Annotated[str, typer.Argument(help="Peer agency code.")]) -> None:
    """Stop sharing a bank with a peer agency (what it pulled before stays with it)."""
    from vigil.cli._audit import opened
    from vigil.exchange.rules import unshare as do_unshare

    engine = _engine()
    with _guard():
        audit = opened(engine)
        if not do_unshare(engine, bank, agency):
            fail(f"bank {bank!r} is not shared with {agency}")
    audit.record("bank.unshare", bank, agency=agency)
    err.print(f"bank {markup(bank)} no longer shared with {markup(agency)}", highlight=False)


@bank_app.command("shares")
def shares(bank: Annotated[str | None, typer.Argument(help="Bank (default: all).")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
           ) -> None:
    """Sharing rules: which bank goes to which agency, with which labels."""
    from vigil.exchange.rules import rules

    with _guard():
        rs = rules(_engine(), bank)
    if as_json:
        typer.echo(json.dumps([{"bank": r.bank, "agency": r.agency, "fields": list(r.fields),
                                "reshare": r.reshare} for r in rs], indent=2))
        return
    if not rs:
        err.print("nothing is shared (vigil bank share BANK AGENCY)")
        return
    t = Table("bank", "agency", "labels", "may pass on")
    for r in rs:
        t.add_row(markup(r.bank), markup(r.agency), ", ".join(r.fields) or "(none)",
                  "yes" if r.reshare else "no")
    Console().print(t)


@bank_app.command("opinion")
def opinion(
    bank: Annotated[str, typer.Argument(help="A mirror bank (pulled from a peer).")],
    signal: Annotated[list[str], typer.Option("--signal", help="type:value, e.g. pdq:HEX; "
                                              "repeat for several.")],
    dispute: Annotated[bool, typer.Option("--dispute/--agree",
                                          help="Dispute (needs --reason) or agree.")] = False,
    reason: Annotated[str, typer.Option(help="Why (required for a dispute).")] = "",
) -> None:
    """Record this agency's view of mirrored entries; their origin pulls it back."""
    from vigil.cli._audit import local_actor, opened
    from vigil.exchange.opinions import record
    from vigil.matching import parse_query

    engine = _engine()
    with _guard():
        sigs = [(q.signal_type, q.value) for q in map(parse_query, signal)]
        audit = opened(engine)
        made = record(engine, bank, _local_agency(engine), sigs,
                      "dispute" if dispute else "agree", reason, by=local_actor())
    audit.record("bank.opinion", bank, opinion="dispute" if dispute else "agree",
                 signals=len(made))
    err.print(f"recorded {len(made)} opinion(s) on {markup(bank)}", highlight=False)


@bank_app.command("opinions")
def opinions(bank: Annotated[str, typer.Argument(help="Bank name.")],
             as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
             ) -> None:
    """Opinions on a bank: ours on a mirror, or peers' on our own bank (disputes first)."""
    from vigil.exchange.opinions import of_bank

    with _guard():
        ops = sorted(of_bank(_engine(), bank), key=lambda o: (o.opinion != "dispute", o.id))
    if as_json:
        typer.echo(json.dumps([{"id": o.id, "agency": o.agency, "signal_type": o.signal_type,
                                "opinion": o.opinion, "reason": o.reason, "by": o.by,
                                "at": o.at.isoformat()} for o in ops], indent=2))
        return
    t = Table("agency", "type", "opinion", "reason", "by", "at")
    for o in ops:  # the signal value is not printed: bank contents stay out of terminals
        t.add_row(markup(o.agency), markup(o.signal_type), o.opinion, markup(o.reason),
                  markup(o.by or ""),
                  o.at.strftime("%Y-%m-%d %H:%M"))
    Console().print(t)

"""``vigil init``, ``vigil serve``, ``vigil token …``, ``vigil user …``, ``vigil audit …``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli._app import app, err, fail
from vigil.cli._display import markup, shown

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

    from vigil.audit import AuditLog

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Users and services (principals) of agencies.",
                       no_args_is_help=True)
audit_app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")


def _engine() -> Engine:
    from vigil.store import make_engine, migrate

    engine = make_engine()
    migrate(engine)
    return engine


@contextmanager
def _node_errors() -> Iterator[None]:
    """A node's refusal (a bad name, an existing user) as a one-line error."""
    from vigil.node import NodeError

    try:
        yield
    except NodeError as exc:
        fail(str(exc))


@app.command("init")
def init(
    agency: Annotated[str, typer.Option(help="This node's agency code, e.g. SG-SPF.")],
    name: Annotated[str, typer.Option(help="The agency's name.")],
    jurisdiction: Annotated[str, typer.Option(help="ISO 3166 code, e.g. SG.")],
    admin: Annotated[str, typer.Option(help="Name of the first admin.")] = "admin",
    days: Annotated[int, typer.Option(help="Days the admin token lives.")] = 90,
) -> None:
    """Create this node's identity, keys and first admin token (printed once).

    The Ed25519 key pair and the audit key go to $VIGIL_HOME/keys (mode 0600), never
    into the database. Store the printed token in a password manager: it is not kept.

    [bold]Example[/bold]

      vigil init --agency SG-SPF --name "Singapore Police Force" --jurisdiction SG
    """
    from vigil.cli._audit import opened
    from vigil.node import find_principal, init_node, tokens
    from vigil.store import vigil_home

    engine = _engine()
    audit = opened(engine)  # the key the log already runs under, if any: init keeps it
    with _node_errors():
        ident, token = init_node(engine, vigil_home(), agency, name, jurisdiction, admin,
                                 days)
    audit.agency = ident.agency
    audit.record("node.init", ident.agency, name=ident.name, jurisdiction=ident.jurisdiction,
                 public_key=ident.public_key)
    first = find_principal(engine, ident.agency, admin)
    assert first is not None
    audit.record("user.create", first.label, roles=list(first.roles), kind=first.kind)
    for t in tokens(engine, ident.agency, first.id):
        audit.record("token.create", first.label, token_id=t.id, days=days)
    err.print(f"initialised node of {ident.agency} ({markup(ident.name)}, {ident.jurisdiction}); "
              f"public key {ident.public_key}", highlight=False)
    err.print(f"admin token for {ident.agency}/{markup(admin)} (shown once, valid {days} days):",
              highlight=False)
    typer.echo(token)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes (default: 2 on PostgreSQL, 1 on SQLite).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the node's HTTP API (FastAPI under uvicorn).

    The store is migrated and the shared on-disk index brought up to date once, here; then every worker maps the same index and tails the change log to stay current.

    Put a TLS-terminating proxy in front of it for anything but loopback.

    Settings come from the environment: VIGIL_HOME, VIGIL_DATABASE_URL (PostgreSQL for several workers), VIGIL_SYNC_INTERVAL, VIGIL_MAX_JSON_BYTES, VIGIL_MAX_UPLOAD_BYTES, VIGIL_MAX_IMPORT_BYTES, VIGIL_TRUSTED_PROXIES (the reverse proxies whose X-Forwarded-For is believed), VIGIL_REVIEW_ROOT (the folder of finished scans the review workspace at /review serves: docs/review.md) and its reviewers' caps (VIGIL_REVIEW_CLEAR_MINUTES, VIGIL_REVIEW_BREAK_MINUTES, VIGIL_REVIEW_DAILY_MINUTES, VIGIL_REVIEW_REVEAL_SECONDS, VIGIL_REVIEW_LIGHT_WEIGHT), VIGIL_TAKEDOWN_* (the notice loop: docs/takedown.md), the parsers' limits (VIGIL_MAX_DEPTH, VIGIL_MAX_RECORD_BYTES, ...). A guide to running a node (PostgreSQL, systemd, a TLS proxy, backups): docs/api.md.
    """  # noqa: E501 (one paragraph per line: the help rewraps them)
    from vigil.api.runtime.settings import Settings
    from vigil.node import identity
    from vigil.store import vigil_home

    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a setting out of range: named, before anything starts
        fail(str(exc))
    engine = _engine()
    if identity(engine) is None:
        fail("this node has no identity yet: run `vigil init --agency … --name … "
             "--jurisdiction …` first")
    sqlite = engine.dialect.name == "sqlite"
    n = workers or (1 if sqlite else 2)
    if sqlite and n > 1:
        err.print("vigil serve: several workers on SQLite serialise every write; "
                  "use PostgreSQL (VIGIL_DATABASE_URL) for a busy node", highlight=False)
    from vigil.banks.indexes import BankIndexes

    BankIndexes(engine, settings.index_folder).save()  # one build/refresh, not one per worker
    engine.dispose()
    prom = _metrics_dir(vigil_home() / "run") if n > 1 else None
    if prom is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    # one accept queue per worker (vigil.api.server.workers); httptools with a response's head
    # and body in one write (vigil.api.server.http)
    from vigil.api.server import workers as api_workers

    try:
        api_workers.run("vigil.api:create_asgi", n, factory=True, host=host, port=port,
                        log_level=log_level, access_log=False, server_header=False,
                        http="vigil.api.server.http:CoalescingHttpToolsProtocol",
                        # X-Forwarded-For: only from VIGIL_TRUSTED_PROXIES, by the app
                        proxy_headers=False)
    finally:
        if prom is not None:
            shutil.rmtree(prom, ignore_errors=True)


def _metrics_dir(run: Path) -> Path:
    """This server's own folder for its workers' Prometheus files (``metrics-<pid>``),
    after removing those of servers no longer running. Why its own: a second
    ``vigil serve`` on the same home (another port) wiped the first one's counters."""
    run.mkdir(parents=True, exist_ok=True)
    for old in run.glob("metrics*"):
        pid = old.name.removeprefix("metrics-")
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)
    prom = run / f"metrics-{os.getpid()}"
    prom.mkdir()
    return prom


def _alive(pid: int) -> bool:
    """Whether a process runs under that id (someone else's counts: PermissionError)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


# ---- tokens ------------------------------------------------------------------------------

def _agency(agency: str | None) -> str:
    from vigil.node import identity

    if agency:
        return agency
    ident = identity(_engine())
    if ident is None:
        fail("this node has no identity yet: run `vigil init` first")
    return ident.agency


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="User or service name.")],
    agency: Annotated[str | None, typer.Option(help="Its agency (default: this node's).")]
    = None,
    days: Annotated[int, typer.Option(help="Days the token lives.")] = 90,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create a token for a user or service and print it (once)."""
    from vigil.cli._audit import opened
    from vigil.node import find_principal, issue_token

    engine = _engine()
    code = _agency(agency)
    p = find_principal(engine, code, user)
    if p is None:
        fail(f"{code} has no user named {user!r} (vigil user create)")
    audit = opened(engine)
    with _node_errors():
        token, t = issue_token(engine, p.id, days, description)
    audit.record("token.create", p.label, token_id=t.id, days=days)
    err.print(f"token {t.id} for {markup(p.label)}, expires {t.expires_at:%Y-%m-%d} (shown once):",
              highlight=False)
    typer.echo(token)


@token_app.command("list")
def token_list(agency: Annotated[str | None, typer.Option(help="Only this agency.")] = None,
               ) -> None:
    """List tokens (never the tokens themselves): owner, expiry, revocation."""
    from vigil.node import tokens

    t = Table("id", "user", "description", "created", "expires", "revoked")
    for tok in tokens(_engine(), agency):
        t.add_row(str(tok.id), markup(tok.principal), markup(tok.description),
                  f"{tok.created_at:%Y-%m-%d}",
                  f"{tok.expires_at:%Y-%m-%d}",
                  f"{tok.revoked_at:%Y-%m-%d %H:%M}" if tok.revoked_at else "")
    Console().print(t)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Token id (vigil token list).")],
                 ) -> None:
    """Revoke a token at once."""
    from vigil.api.runtime.epochs import epoch_file
    from vigil.cli._audit import opened
    from vigil.node import revoke_token, token_owner
    from vigil.store import vigil_home

    engine = _engine()
    audit = opened(engine)
    owner = token_owner(engine, token_id)
    if owner is None or not revoke_token(engine, token_id):
        fail(f"no live token with id {token_id}")
    epoch_file(vigil_home()).bump("auth")  # running workers on this host drop it at once
    audit.record("token.revoke", owner.label, token_id=token_id)
    typer.echo(f"revoked token {token_id} of {shown(owner.label)}")


# ---- users -------------------------------------------------------------------------------

@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="User or service name.")],
    role: Annotated[list[str], typer.Option(
        "--role", help="admin, curator, analyst, matcher or auditor; repeatable.")],
    agency: Annotated[str | None, typer.Option(
        help="Its agency (default: this node's; another code registers that agency).")]
    = None,
    service: Annotated[bool, typer.Option("--service", help="A service, not a person.")]
    = False,
) -> None:
    """Create a user or service with roles (then: vigil token create NAME)."""
    from vigil.cli._audit import local_actor, opened
    from vigil.node import create_principal, ensure_agency

    engine = _engine()
    code = _agency(agency)
    audit = opened(engine)
    with _node_errors():
        ensure_agency(engine, code)
        p = create_principal(engine, code, name, role, "service" if service else "user",
                             created_by=local_actor())
    audit.record("user.create", p.label, roles=list(p.roles), kind=p.kind)
    typer.echo(f"created {p.kind} {shown(p.label)} (id {p.id}) with roles {', '.join(p.roles)}")


@user_app.command("list")
def user_list(agency: Annotated[str | None, typer.Option(help="Only this agency.")] = None,
              ) -> None:
    """List users and services with their roles."""
    from vigil.node import principals

    t = Table("id", "agency", "name", "kind", "roles", "disabled")
    for p in principals(_engine(), agency):
        t.add_row(str(p.id), markup(p.agency), markup(p.name), p.kind, ",".join(p.roles),
                  "yes" if p.disabled else "")
    Console().print(t)


@user_app.command("disable")
def user_disable(user_id: Annotated[int, typer.Argument(help="User id (vigil user list).")],
                 ) -> None:
    """Disable a user or service and revoke all its tokens."""
    from vigil.api.runtime.epochs import epoch_file
    from vigil.cli._audit import opened
    from vigil.node import disable_principal, get_principal
    from vigil.store import vigil_home

    engine = _engine()
    p = get_principal(engine, user_id)
    if p is None:
        fail(f"no user with id {user_id}")
    audit = opened(engine)
    n = disable_principal(engine, user_id)
    epoch_file(vigil_home()).bump("auth")  # running workers on this host drop its tokens now
    audit.record("user.disable", p.label, tokens_revoked=n)
    typer.echo(f"disabled {shown(p.label)}; {n} token(s) revoked")


# ---- audit -------------------------------------------------------------------------------

def _audit_log(engine: Engine | None = None) -> AuditLog:
    from vigil.audit import AuditLog
    from vigil.node import NodeError, audit_key, keys_dir
    from vigil.store import vigil_home

    engine = engine or _engine()
    try:
        return AuditLog(engine, audit_key(vigil_home()), vigil_home() / "audit")
    except NodeError as exc:
        if not (keys_dir(vigil_home()) / "audit.key").exists():
            fail(f"no audit key in {keys_dir(vigil_home())}: nothing has been changed on this "
                 "store from this VIGIL_HOME yet (the first change, or `vigil init`, starts the "
                 "log), or VIGIL_HOME is not the node's home")
        fail(str(exc))


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log: any edited, deleted, reordered or cut-off record is reported.

    Checks the chain of keyed MACs, the head row, the keyed anchor file
    ($VIGIL_HOME/audit/anchor.json) and every head of this log that peers witnessed and
    handed back at sync (signed by this node's key): a record a peer saw that is now
    missing or different shows, even if the log was rewound by someone holding the key.

    Exit status 0 if the log is intact, 1 if not.
    """
    from vigil.audit import witness_store
    from vigil.node import identity, signing_key
    from vigil.store import vigil_home

    engine = _engine()
    log = _audit_log(engine)
    ident = identity(engine)
    witnessed, public = [], None
    if ident is not None:
        public = signing_key(vigil_home()).public_key()
        witnessed = [(w.witness, w.head) for w in witness_store.held(engine, ident.agency)
                     if w.witness != ident.agency]
    rep = log.verify(witnessed=witnessed, public_key=public)
    for note in rep.notes:
        err.print(f"note: {note}", highlight=False)
    if rep.witnessed:
        err.print("checked against heads witnessed by " + ", ".join(
            f"{a} ({n})" for a, n in sorted(rep.witnessed.items())), highlight=False)
    elif ident is not None:
        err.print("note: no peer has witnessed this log yet (peers keep its signed head when "
                  "they sync from this node): a rewind by someone holding the audit key "
                  "would not show", highlight=False)
    if rep.ok:
        typer.echo(f"audit log intact: {rep.records} records, last {rep.last_id} "
                   f"({rep.last_hash[:16]}…)")
        return
    for p in rep.problems:
        err.print(f"[red]tampered:[/red] {markup(p)}", highlight=False)
    err.print(f"audit log NOT intact ({rep.records} records checked)", highlight=False)
    raise typer.Exit(1)


@audit_app.command("list")
def audit_list(
    action: Annotated[str | None, typer.Option(help="Action prefix, e.g. bank. or match.")]
    = None,
    actor: Annotated[str | None, typer.Option(help="AGENCY/name.")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, denied or failed.")] = None,
    after: Annotated[int, typer.Option(help="Records after this id.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List audit records (never signals: match records carry counts and a keyed digest)."""
    recs = _audit_log().records(action=action, actor=actor, outcome=outcome, after_id=after,
                                limit=limit)
    if as_json:
        for r in recs:
            typer.echo(json.dumps({"id": r.id, "at": r.at.isoformat(), "agency": r.agency,
                                   "actor": r.actor, "action": r.action, "outcome": r.outcome,
                                   "target": r.target, "remote": r.remote, "detail": r.detail}))
        return
    t = Table("id", "at", "actor", "action", "outcome", "target", "detail")
    for r in recs:
        t.add_row(str(r.id), f"{r.at:%Y-%m-%d %H:%M:%S}", markup(r.actor or "-"),
                  markup(r.action), markup(r.outcome), markup(r.target or ""),
                  markup(json.dumps(r.detail)[:80]))
    Console().print(t)

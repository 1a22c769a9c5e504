"""Every command that changes a node's state leaves its audit record (issue 15, point 6).

The command tree is read from the Typer app itself: a command that is neither listed as
read-only (with the reason) nor run here with the records it must leave fails the test,
so a new mutating command cannot slip in unaudited. Each mutating command is run as an
operator would, against a node of its own (HK-POL) that pulls from the test node (SG-SPF,
`vigil serve`); its records must name the local operator as actor, and carry the action
and the details the API records for the same change (compared with the test node's own
records of the same changes made over HTTP). SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from tests.api.conftest import HK, SG, Node
from tests.conftest import store_url
from vigil.audit import AuditEntry, AuditLog
from vigil.cli import app
from vigil.demo.synthetic import synthetic_image
from vigil.node import audit_key, principals, tokens
from vigil.store import make_engine, migrate

#: commands that change no state of the node, and why
READ_ONLY = {
    ("hash",): "hashes files and prints the hashes",
    ("match",): "reads banks and prints leads (a hit on a self-submitted hash is counted "
                "for its case and audited as selfsubmit.lead: tests/selfsubmit/test_page.py)",
    ("scan",): "writes its own report folder (--out), not the node's state",
    ("serve",): "runs the API, which audits every change it makes",
    ("review",): "runs the review app, which audits every change it makes; its --export "
                 "leaves review.export (tests/review/test_export.py)",
    ("index", "status"): "reads the indexes",
    ("token", "list"): "lists tokens (never the tokens)",
    ("user", "list"): "lists users",
    ("audit", "verify"): "reads the audit log",
    ("audit", "list"): "reads the audit log",
    ("bank", "list"): "lists banks",
    ("bank", "show"): "counts a bank's entries",
    ("bank", "shares"): "lists sharing rules",
    ("bank", "opinions"): "lists opinions",
    ("peer", "list"): "lists peers",
    ("url", "list"): "lists reported URLs",
    ("url", "show"): "shows a URL and its fetches",
    ("notice", "list"): "lists notices",
    ("notice", "show"): "shows a notice",
    ("notice", "render"): "prints a host's notices",
    ("notice", "report"): "writes report files (--html, --json), not the node's state",
    ("notice", "contact", "list"): "lists contacts",
    ("selfcases", "list"): "counts self-submitted cases",
    ("selfcases", "show"): "counts one self-submitted case",
    ("selfcases", "leads"): "lists leads on self-submitted hashes",
    ("selfcases", "page"): "writes the page's static files (OUT), not the node's state",
    ("series", "list"): "lists series",
    ("series", "show"): "shows a series",
    ("series", "hits"): "lists hit notices received",
    ("series", "overlaps"): "lists series that share signals",
    ("op", "report"): "writes report files (--out), not the node's state",
}
#: commands that change state, and the actions of the records each must leave, in order
MUTATING = {
    ("init",): ("node.init", "user.create", "token.create"),
    ("user", "create"): ("user.create",),
    ("token", "create"): ("token.create",),
    ("token", "revoke"): ("token.revoke",),
    ("user", "disable"): ("user.disable",),
    ("bank", "create"): ("bank.create",),
    ("bank", "import"): ("bank.import",),
    ("bank", "add"): ("bank.add",),
    ("bank", "reindex"): ("bank.reindex",),
    ("bank", "label"): ("bank.relabel",),
    ("bank", "remove"): ("bank.remove",),
    ("bank", "export"): ("bank.export",),  # not a change, but hashes leave: as the API
    ("bank", "share"): ("bank.share",),
    ("bank", "unshare"): ("bank.unshare",),
    ("index", "rebuild"): ("index.rebuild",),
    ("peer", "grant"): ("user.create", "token.create"),
    ("peer", "trust"): ("peer.trust",),
    ("peer", "add"): ("peer.add",),
    ("peer", "sync"): ("peer.sync", "series.sync"),
    ("series", "sync"): ("series.sync",),
    ("bank", "opinion"): ("bank.opinion",),
    ("notice", "pull"): ("takedown.forward.pull",),
    ("peer", "remove"): ("peer.remove",),
    ("url", "add"): ("takedown.url.add",),
    ("url", "import"): ("takedown.url.import",),
    ("notice", "contact", "add"): ("takedown.contact.set",),
    ("notice", "run"): ("takedown.cycle",),
    ("notice", "ack"): ("takedown.notice.acknowledge",),
    ("notice", "close"): ("takedown.notice.close",),
    ("series", "create"): ("series.create",),
    ("series", "update"): ("series.update",),
    ("series", "clue"): ("series.clue",),
    ("series", "claim"): ("series.claim",),
    ("series", "renew"): ("series.renew",),
    ("series", "release"): ("series.release",),
    ("series", "identify"): ("series.identify",),
    ("series", "close"): ("series.close",),
    ("series", "notify"): ("series.notify",),
    ("series", "merge"): ("series.merge",),
    ("op", "create"): ("op.create",),
}
MD5 = [f"{i:032x}" for i in range(1, 6)]


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every command of a Typer command tree, as its words (``("bank", "add")``)."""
    out: set[tuple[str, ...]] = set()
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (Typer's click, vendored or not)
            out |= command_paths(cmd, (*prefix, name))
        else:
            out.add((*prefix, name))
    return out


def test_every_command_is_classified() -> None:
    paths = command_paths(typer.main.get_command(app))
    unclassified = paths - READ_ONLY.keys() - MUTATING.keys()
    assert not unclassified, ("classify these commands in tests/cli/test_audit_records.py: "
                              f"read-only (why), or mutating (the records they leave): "
                              f"{sorted(unclassified)}")
    assert not (READ_ONLY.keys() | MUTATING.keys()) - paths, "commands that no longer exist"


@dataclass
class Local:
    """A second node, HK-POL, run from the command line by operator ``tester``."""

    home: Path
    engine: Engine
    env: dict[str, str]
    runner: CliRunner

    def __call__(self, *args: str) -> Result:
        r = self.runner.invoke(app, list(args), env=self.env)
        assert r.exit_code == 0, (args, r.output, r.exception)
        return r

    def log(self) -> AuditLog:
        return AuditLog(self.engine, audit_key(self.home), self.home / "audit")


@pytest.fixture
def local(node: Node, tmp_path: Path) -> Iterator[Local]:
    with store_url(node.backend, tmp_path, prefix="t_cli_audit_") as url:
        engine = make_engine(url)
        migrate(engine)
        env = {"VIGIL_HOME": str(tmp_path / "home"), "VIGIL_USER": "tester",
               "VIGIL_DATABASE_URL": url.render_as_string(hide_password=False),
               "VIGIL_PEER_SYNC_INTERVAL": "0", "COLUMNS": "300"}
        try:
            yield Local(tmp_path / "home", engine, env, CliRunner())
        finally:
            engine.dispose()


def _after(log: AuditLog, last: int) -> list[AuditEntry]:
    return log.records(after_id=last, limit=1000)


def _sg_changes_over_http(node: Node) -> dict[str, dict]:  # type: ignore[type-arg]
    """The test node's own records of the changes the CLI makes, made over HTTP."""
    before = AuditLog(node.engine, b"-").head()[0]
    bank = f"parity-{uuid.uuid4().hex[:6]}"
    v = [f"{i:031x}a" for i in range(3)]
    with node.client("admin") as c:
        assert c.post("/v1/banks", json={"name": bank}).status_code == 201
        c.post(f"/v1/banks/{bank}/entries", json={"entries": [{"type": "md5", "value": v[0]}]})
        c.post(f"/v1/banks/{bank}/import", params={"format": "csv"},
               content=f"signal_type,value\nmd5,{v[1]}\n".encode(),
               headers={"content-type": "application/octet-stream"})
        c.patch(f"/v1/banks/{bank}/entries", json={"signals": [{"type": "md5", "value": v[0]}],
                                                   "set": {"series": "S"}})
        c.post(f"/v1/banks/{bank}/entries/remove",
               json={"signals": [{"type": "md5", "value": v[1]}]})
        c.get(f"/v1/banks/{bank}/export", params={"format": "csv"})
        c.put(f"/v1/banks/{bank}/shares/{HK}", json={"fields": ["category"]})
        c.delete(f"/v1/banks/{bank}/shares/{HK}")
        u = c.post("/v1/users", json={"name": f"p-{uuid.uuid4().hex[:6]}",
                                      "roles": ["matcher"]}).json()
        t = c.post("/v1/tokens", json={"user_id": u["id"]}).json()
        c.delete(f"/v1/tokens/{t['id']}")
        c.delete(f"/v1/users/{u['id']}")
    with node.client("auditor") as a:
        recs = a.get("/v1/audit", params={"after_id": before, "limit": 1000}).json()
    return {r["action"]: r for r in recs if r["actor"] == f"{SG}/admin"}


def _pictures(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for s in range(2):
        synthetic_image(s, (300, 200)).save(folder / f"p{s}.jpg", quality=90)
    return folder


def test_every_mutating_command_leaves_its_record(node: Node, local: Local,
                                                  tmp_path: Path) -> None:
    # on the test node: a bank shared with HK-POL, so the local node has a mirror to opine on
    shared = f"for-hk-{uuid.uuid4().hex[:6]}"
    with node.client("admin") as c:
        assert c.post("/v1/banks", json={"name": shared}).status_code == 201
        c.post(f"/v1/banks/{shared}/entries", json={"entries": [{"type": "md5",
                                                                 "value": MD5[4]}]})
        assert c.put(f"/v1/banks/{shared}/shares/{HK}", json={}).status_code == 200
    csv = tmp_path / "list.csv"
    csv.write_text("signal_type,value\n" + "".join(f"md5,{v}\n" for v in MD5[:3]))
    pics = _pictures(tmp_path / "pics")
    sg_key = (node.home / "keys" / "node.pub").read_text().strip()
    other_key = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()

    urls_csv = tmp_path / "urls.csv"
    urls_csv.write_text("url,case\nhttp://192.0.2.2/y.jpg,C-2\n")

    def a_notice() -> int:
        """A notice to step through (no host answers here: made in the store)."""
        from vigil.takedown import repo

        now = datetime.now(UTC)
        url = repo.list_urls(local.engine)[0]
        return (repo.active_notice(local.engine, url.id) or repo.open_notice(
            local.engine, url, [], [], [], now, timedelta(hours=48)).notice).id

    def ana_id() -> str:
        return str(next(p.id for p in principals(local.engine, HK) if p.name == "ana"))

    def ana_token() -> str:
        return str(max(t.id for t in tokens(local.engine, HK) if t.principal.endswith("/ana")))

    steps: list[tuple[tuple[str, ...], list[str] | object]] = [
        (("init",), ["init", "--agency", HK, "--name", "Hong Kong Police", "--jurisdiction",
                     "HK"]),
        (("user", "create"), ["user", "create", "ana", "--role", "analyst"]),
        (("token", "create"), ["token", "create", "ana", "--days", "2"]),
        (("token", "revoke"), lambda: ["token", "revoke", ana_token()]),
        (("user", "disable"), lambda: ["user", "disable", ana_id()]),
        (("bank", "create"), ["bank", "create", "hk-local", "--agency", HK]),
        (("bank", "import"), ["bank", "import", "hk-local", str(csv), "-q"]),
        (("bank", "add"), ["bank", "add", "hk-local", str(pics), "-q"]),
        (("bank", "reindex"), ["bank", "reindex", "hk-local", str(pics), "-q"]),
        (("bank", "label"), ["bank", "label", "hk-local", "--hash", f"md5:{MD5[0]}",
                             "--series", "S1"]),
        (("bank", "remove"), ["bank", "remove", "hk-local", "--hash", f"md5:{MD5[1]}"]),
        (("bank", "export"), ["bank", "export", "hk-local", str(tmp_path / "out.csv")]),
        (("bank", "share"), ["bank", "share", "hk-local", SG]),
        (("bank", "unshare"), ["bank", "unshare", "hk-local", SG]),
        (("index", "rebuild"), ["index", "rebuild"]),
        (("peer", "grant"), ["peer", "grant", "KR-KNPA"]),
        (("peer", "trust"), ["peer", "trust", "KR-KNPA", "--key", other_key]),
        (("peer", "add"), ["peer", "add", "sg", node.url, "--key", sg_key, "--token",
                           node.tokens[(HK, "peer")]]),
        (("peer", "sync"), ["peer", "sync", "sg", "-q"]),
        (("series", "sync"), ["series", "sync", "sg"]),
        (("bank", "opinion"), ["bank", "opinion", f"{SG}.{shared}", "--signal",
                               f"md5:{MD5[4]}", "--agree"]),
        (("notice", "pull"), ["notice", "pull", "sg"]),
        (("peer", "remove"), ["peer", "remove", "sg"]),
        (("url", "add"), ["url", "add", "http://192.0.2.1/x.jpg", "--case", "C-1"]),
        (("url", "import"), ["url", "import", str(urls_csv)]),
        (("notice", "contact", "add"), ["notice", "contact", "add", "example.com",
                                        "abuse@example.com"]),
        (("notice", "run"), ["notice", "run"]),
        (("notice", "ack"), lambda: ["notice", "ack", str(a_notice())]),
        (("notice", "close"), lambda: ["notice", "close", str(a_notice())]),
        (("series", "create"), ["series", "create", f"{HK}:S-1", "--victim", "V1"]),
        (("series", "update"), ["series", "update", f"{HK}:S-1", "--country", "HK"]),
        (("series", "clue"), ["series", "clue", f"{HK}:S-1", "a clue that stays here"]),
        (("series", "claim"), ["series", "claim", f"{HK}:S-1"]),
        (("series", "renew"), ["series", "renew", f"{HK}:S-1"]),
        (("series", "release"), ["series", "release", f"{HK}:S-1"]),
        (("series", "identify"), ["series", "identify", f"{HK}:S-1", "--contact-role",
                                  "VID desk"]),
        (("series", "close"), ["series", "close", f"{HK}:S-1"]),
        (("series", "notify"), ["series", "notify", SG]),
        (("series", "merge"), ["series", "merge", f"{HK}:S-1", f"{SG}:S-7"]),
        (("op", "create"), ["op", "create", "Operation T", "--from", "2026-11-01", "--to",
                            "2026-12-31", "--partners", SG]),
    ]
    assert [p for p, _ in steps] == list(MUTATING), "run every mutating command, in order"
    made: dict[str, AuditEntry] = {}
    last = 0
    for path, args in steps:
        argv = args() if callable(args) else args
        local(*argv)  # type: ignore[arg-type]
        log = local.log()
        new = _after(log, last)
        assert [r.action for r in new] == list(MUTATING[path]), (path, new)
        for r in new:
            assert r.actor == "local/tester" and r.outcome == "ok", (path, r)
            assert r.agency == HK, (path, r)  # the node's agency, the operator's
            assert r.remote is None
            made.setdefault(r.action, r)
        last = new[-1].id
    rep = local.log().verify()
    assert rep.ok, rep.problems

    # the same changes made over HTTP leave the same actions with the same details
    api = _sg_changes_over_http(node)
    for action in ("bank.create", "bank.add", "bank.import", "bank.relabel", "bank.remove",
                   "bank.export", "bank.share", "bank.unshare", "user.create", "token.create",
                   "token.revoke", "user.disable"):
        assert action in api, f"the API made no {action} record: {sorted(api)}"
        missing = set(api[action]["detail"]) - set(made[action].detail)
        assert not missing, f"{action}: the CLI's record lacks {sorted(missing)}"
    assert set(made["bank.opinion"].detail) == {"opinion", "signals"}  # as routes/exchange.py
    assert made["peer.sync"].detail["records"] >= 1 and made["peer.sync"].detail["witnessed"]


def test_a_failed_import_is_recorded_as_failed(local: Local, tmp_path: Path) -> None:
    local("bank", "create", "b", "--agency", HK)
    bad = tmp_path / "bad.csv"
    bad.write_text("signal_type,value\nmd5,nothex\n")
    r = local.runner.invoke(app, ["bank", "import", "b", str(bad), "-q"], env=local.env)
    assert r.exit_code == 1 and "line 2" in r.output
    [rec] = _after(local.log(), 1)
    assert (rec.action, rec.outcome, rec.actor) == ("bank.import", "failed", "local/tester")
    assert re.search(r"line 2", rec.detail["error"]) and rec.detail["format"] == "csv"

"""`vigil url …` and `vigil notice …` as an operator runs them: clear errors for bad
input (nothing added), a cycle that writes its notices to the outbox, reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.takedown.conftest import WebHost, corpus, fill_bank
from vigil.cli import app
from vigil.store import make_engine, migrate

pytestmark = pytest.mark.shared


def test_the_commands(tmp_path: Path, shared: Path, web: Callable[[str], WebHost]) -> None:
    home = tmp_path / "home"
    env = {"VIGIL_HOME": str(home), "VIGIL_DATABASE_URL": f"sqlite:///{home / 'vigil.db'}",
           "VIGIL_USER": "tester", "COLUMNS": "300", "VIGIL_TAKEDOWN_ALLOW_NETWORKS":
           "127.0.0.0/8", "VIGIL_TAKEDOWN_OUTBOX": str(tmp_path / "outbox")}
    home.mkdir()
    runner = CliRunner()

    def vigil(*args: str, code: int = 0) -> str:
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == code, (args, r.output, r.exception)
        return r.output

    vigil("init", "--agency", "SG-SPF", "--name", "Singapore", "--jurisdiction", "SG")
    engine = make_engine(env["VIGIL_DATABASE_URL"])
    migrate(engine)
    photo = corpus(shared, 1)[0]
    fill_bank(engine, {photo: "S-1"})
    h = web("127.0.0.30")
    h.files["/x.jpg"] = (photo.read_bytes(), "image/jpeg")

    out = vigil("url", "add", "gopher://x/y", "--case", "C-1", code=1)
    assert "url must start with http" in out
    out = vigil("url", "add", h.url("/x.jpg"), "--case", "", code=1)
    assert "case" in out
    csv = tmp_path / "urls.csv"
    csv.write_text(f"url,case\n{h.url('/y.jpg')},C-2\nhttp://exa mple.com/z,C-2\n")
    out = vigil("url", "import", str(csv), code=1)
    assert "row 3" in out and "whitespace" in out
    assert json.loads("[" + ",".join(vigil("url", "list", "--json").split()) + "]") == []
    out = vigil("url", "import", str(csv), "--skip-invalid")
    assert "1 added" in out and "1 skipped" in out and "row 3" in out
    out = vigil("url", "add", h.url("/x.jpg"), "--case", "C-1")
    assert "added" in out and h.ip in out
    assert "already reported" in vigil("url", "add", h.url("/x.jpg"), "--case", "C-1")

    vigil("notice", "contact", "add", h.ip, "abuse@example.org", "--escalation",
          "legal@example.org")
    out = vigil("notice", "contact", "add", "www.example.com", "a@b.c", code=1)
    assert "example.com" in out  # the registrable domain, not a host under it
    out = vigil("notice", "run", "--json")
    stats = json.loads(out)
    assert (stats["checked"], stats["opened"], stats["sent"]) == (2, 1, 1)
    mails = list((tmp_path / "outbox").glob("*.eml"))
    assert len(mails) == 1 and b"abuse@example.org" in mails[0].read_bytes()
    assert b"application/json" in mails[0].read_bytes()

    lines = vigil("notice", "list", "--json").splitlines()
    notice = json.loads(lines[0])
    assert notice["state"] == "sent" and notice["series"] == ["S-1"]
    shown = json.loads(vigil("notice", "show", str(notice["id"])))
    assert shown["messages"][0]["to"] == "abuse@example.org"
    text = vigil("notice", "render", "--host", h.ip)
    assert h.url("/x.jpg") in text and "S-1" not in text  # series stay in the agency
    rendered = json.loads(vigil("notice", "render", "--host", h.ip, "--json"))
    assert rendered["notices"][0]["url"] == h.url("/x.jpg")
    assert "sent" in vigil("notice", "list")
    assert "acknowledged" in vigil("notice", "ack", str(notice["id"]))
    out = vigil("notice", "ack", str(notice["id"]), code=1)
    assert "only an open or sent" in out
    out = vigil("notice", "ack", "4242", code=1)
    assert "no notice 4242" in out
    vigil("notice", "report", "--html", str(tmp_path / "r.html"), "--json",
          str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["hosts"][0]["host"] == h.ip and report["totals"]["notices"] == 1
    assert "<svg" in (tmp_path / "r.html").read_text()
    series = json.loads(vigil("notice", "report", "--series", "S-1"))
    assert series["sightings"] == 1
    assert "closed" in vigil("notice", "close", str(notice["id"]))
    shown = json.loads(vigil("url", "show", "1"))
    assert shown["fetches"][0]["outcome"] in ("gone", "error", "match", "no-match")
    engine.dispose()

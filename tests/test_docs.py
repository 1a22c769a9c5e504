"""The documentation against the code it describes: no endpoint, command or option in the
docs that does not exist, and no API endpoint left out of the docs.

Why: python-threatexchange's docs describe endpoints that do not exist; an operator who
follows a guide and hits a missing command stops trusting the rest of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from vigil.api.app import create_app
from vigil.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "api.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _norm(path: str) -> str:
    """``/v1/users/{id}`` and ``/v1/users/{user_id}`` are the same endpoint."""
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])


def documented_endpoints(text: str) -> set[tuple[str, str]]:
    """(method, path) from the first cell of every endpoint table row:
    ```GET /healthz`, `/readyz` ``, ```GET/POST /v1/banks` ``, ```PUT`/`DELETE /x` ``."""
    out: set[tuple[str, str]] = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        spans = re.findall(r"`([^`]+)`", line.split("|")[1])
        if not spans or spans[0].split()[0].split("/")[0] not in METHODS:
            continue  # another table (roles, settings)
        methods: list[str] = []
        pending: list[str] = []
        for span in spans:
            words = span.split()
            named = [m for m in words[0].split("/") if m in METHODS]
            if named and len(words) == 1:
                pending += named  # `PUT`/`DELETE /x`: the path is in the next span
                continue
            if named:
                methods, pending = pending + named, []
            path = words[-1]
            out |= {(m, _norm(path)) for m in methods}
    return out


def served_endpoints() -> set[tuple[str, str]]:
    spec = create_app().openapi()
    return {(m.upper(), _norm(p)) for p, ops in spec["paths"].items() for m in ops}


def test_the_endpoint_table_parser_reads_the_shorthands() -> None:
    text = ("| `GET /healthz`, `/readyz` | none | x |\n"
            "| `GET/POST /v1/banks`, `GET /v1/banks/{name}` | r | x |\n"
            "| `PUT`/`DELETE /v1/banks/{name}/shares/{agency}` | admin | x |\n"
            "| `GET /v1/audit?action=&limit=` | audit | |\n")
    assert documented_endpoints(text) == {
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/banks"),
        ("POST", "/v1/banks"), ("GET", "/v1/banks/{}"), ("PUT", "/v1/banks/{}/shares/{}"),
        ("DELETE", "/v1/banks/{}/shares/{}"), ("GET", "/v1/audit")}


def test_every_documented_endpoint_is_served_and_every_served_one_documented() -> None:
    documented = documented_endpoints(API_DOC.read_text())
    served = served_endpoints()
    assert len(served) > 20
    assert sorted(documented - served) == [], "docs/api.md names endpoints the API lacks"
    assert sorted(served - documented) == [], "endpoints missing from docs/api.md"


# ---- CLI commands and options named in the docs -------------------------------------------

_STOP = {"#", "|", "&&", "\\", ">", "<", "||", "…", "..."}


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, words after ``vigil``) for each command line in a shell block and each
    inline `` `vigil …` `` span of the README and docs/."""
    found: list[tuple[str, list[str]]] = []
    for doc in DOCS:
        in_block = False
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_block = not in_block
                continue
            candidates = []
            if in_block:
                stripped = line.strip().removeprefix("$ ")
                if stripped.startswith("vigil "):
                    candidates.append(stripped)
            candidates += re.findall(r"`(vigil [^`]+)`", line) if not in_block else []
            parts = [p.strip() for c in candidates for p in c.split(";")]
            for c in parts:
                if not c.startswith("vigil "):
                    continue
                words = []
                for w in c.split()[1:]:
                    if w in _STOP or w.startswith("#"):
                        break
                    words.append(w)
                found.append((f"{doc.name}:{n}", words))
    return found


def _resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The command the words name, and the options among the words that follow it.
    (Typer vendors its own Click: commands are walked through ``.commands``.)"""
    cmd: Any = typer.main.get_command(cli_app)
    rest = list(words)
    while getattr(cmd, "commands", None) is not None and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        if sub is None:
            raise LookupError(f"no command {rest[0]!r} under {cmd.name or 'vigil'!r}")
        cmd, rest = sub, rest[1:]
    return cmd, [w.split("=", 1)[0] for w in rest if w.startswith("--")]


def test_the_docs_name_commands() -> None:
    cmds = documented_commands()
    assert len(cmds) > 30
    assert any(words[:1] == ["serve"] for _, words in cmds)


@pytest.mark.parametrize("where,words", documented_commands(),
                         ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40])
def test_every_documented_command_and_option_exists(where: str, words: list[str]) -> None:
    try:
        cmd, options = _resolve(words)
    except LookupError as exc:
        pytest.fail(f"{where}: `vigil {' '.join(words)}`: {exc}")
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    unknown = [o for o in options if o not in known and o != "--help"]
    assert not unknown, f"{where}: `vigil {' '.join(words)}`: no option {unknown}"

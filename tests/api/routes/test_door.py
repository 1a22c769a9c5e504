"""Hostile text at the API's door: refused with a 422 naming the field, never stored, never a
500 (on SQLite and PostgreSQL); names and labels in any script accepted and given back whole."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid

import pytest

from tests.api.conftest import Node

OCTET = {"content-type": "application/octet-stream"}
PROBLEM = "application/problem+json"


def md5(tag: str) -> str:
    return hashlib.md5(f"door-{tag}".encode()).hexdigest()


def refused(r, field: str, says: str = "") -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["detail"].startswith(f"{field}:"), problem
    assert says in problem["detail"], problem
    assert [e["field"] for e in problem["errors"]][:1] == [field], problem


@pytest.mark.parametrize(("name", "says"), [
    ("evil\x1b[31mbank", "U+001B ESC"),
    ("two\rlines", "U+000D CR"),
    ("a\u202egpj.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("zero\u200bwidth", "U+200B ZERO WIDTH SPACE"),
    ("slash/bank", "'/'"),
    ("-rf", "must start with a letter or a digit"),
    ("two  spaces", "two spaces in a row"),
])
def test_bank_names_outside_the_character_set_are_refused(node: Node, name: str,
                                                          says: str) -> None:
    with node.client("admin") as c:
        refused(c.post("/v1/banks", json={"name": name}), "body.name", says)
        assert name not in [b["name"] for b in c.get("/v1/banks").json()]


def test_names_and_labels_of_any_script_are_accepted_and_exported_whole(node: Node) -> None:
    name = f"한국 은행-{uuid.uuid4().hex[:6]}"  # Korean, with a space
    labels = {"series": "系列十七 (Siri 17)", "tags": ["ข้อมูล", "tanda, koma", "🙂"],
              "note": "Nota: dikenal pasti\nline two\twith a tab", "victim_status": "identified"}
    with node.client("admin") as c:
        r = c.post("/v1/banks", json={"name": name, "description": "銀行\nzweite Zeile"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == name
        r = c.post(f"/v1/banks/{name}/entries",
                   json={"entries": [{"type": "md5", "value": md5("u"), **labels}]})
        assert r.status_code == 200 and r.json()["added"] == 1, r.text
        text = c.get(f"/v1/banks/{name}/export", params={"format": "csv"}).text
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["series"] == labels["series"] and row["note"] == labels["note"]
    assert row["tags"].split(";") == sorted(labels["tags"])


@pytest.mark.parametrize(("entry", "field", "says"), [
    ({"series": "S\x1b[2J"}, "series", "U+001B ESC"),
    ({"series": "S\u2066x"}, "series", "format character"),
    ({"series": "line\nbreak"}, "series", "U+000A LF"),
    ({"tags": ["ok", "a;b"]}, "tags.1", "must not contain ';'"),
    ({"tags": ["a\u00a0x"]}, "tags.0", "a space other than U+0020"),
    ({"note": "bell\x07"}, "note", "U+0007"),
    ({"note": "cr\ronly"}, "note", "U+000D CR"),
    ({"source_id": "id\x1b"}, "source_id", "U+001B ESC"),
])
def test_labels_outside_the_character_set_are_refused(node: Node, bank: str, entry: dict,
                                                      field: str, says: str) -> None:
    with node.client("curator") as c:
        r = c.post(f"/v1/banks/{bank}/entries",
                   json={"entries": [{"type": "md5", "value": md5(field), **entry}]})
        refused(r, f"body.entries.0.{field}", says)
        r = c.patch(f"/v1/banks/{bank}/entries", json={
            "signals": [{"type": "md5", "value": md5(field)}],
            "set": {k: v for k, v in entry.items() if k != "source_id"} or {"note": "x"}})
        assert r.status_code in (200, 422), r.text
        assert c.get(f"/v1/banks/{bank}").json()["entries"] == 0


def test_a_file_upload_refuses_labels_in_its_query(node: Node, bank: str) -> None:
    with node.client("curator") as c:
        r = c.post(f"/v1/banks/{bank}/entries/file", params={"series": "S\x1b"},
                   content=b"any bytes", headers=OCTET)
        refused(r, "query.series", "U+001B ESC")


# ---------------------------------------------------------------------------------- NUL


def test_nul_in_a_path_or_query_is_a_422(node: Node, bank: str) -> None:
    with node.client("admin") as c:
        refused(c.get("/v1/banks/a%00b"), "path", "NUL")
        refused(c.get("/v1/banks/a%00b/export"), "path", "NUL")
        refused(c.get("/v1/audit?action=%00"), "query.action", "NUL")
        refused(c.get(f"/v1/banks/{bank}/export?format=csv%00"), "query.format", "NUL")
        refused(c.post(f"/v1/banks/{bank}/import?format=csv&x=%00", content=b"",
                       headers=OCTET), "query.x", "NUL")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/banks", {"name": "nul\x00bank"}, "body.name"),
    ("/v1/banks", {"name": "fine", "description": "a\x00b"}, "body.description"),
    ("{bank}/entries", {"entries": [{"type": "md5", "value": md5("n"), "note": "a\x00"}]},
     "body.entries.0.note"),
    ("{bank}/entries", {"entries": [{"type": "md5", "value": md5("n"), "series": "\x00"}]},
     "body.entries.0.series"),
    ("{bank}/entries", {"entries": [{"type": "photodna", "value": "AAAA\x00BBBB"}]},
     "body.entries.0.value"),
    ("{bank}/entries/remove", {"signals": [{"type": "x-hash", "value": "v\x00"}]},
     "body.signals.0.value"),
    ("/v1/match", {"signals": [{"type": "photodna", "value": "\x00"}]}, "body.signals.0.value"),
    ("/v1/users", {"name": "u\x00", "roles": ["analyst"]}, "body.name"),
    ("/v1/tokens", {"user_id": 1, "description": "d\x00"}, "body.description"),
])
def test_nul_in_a_json_body_is_a_422_naming_the_field(node: Node, bank: str, path: str,
                                                      body: dict, field: str) -> None:
    url = path.replace("{bank}", f"/v1/banks/{bank}")
    with node.client("admin") as c:
        refused(c.post(url, json=body), field, "NUL")
        assert c.get(f"/v1/banks/{bank}").json()["entries"] == 0


def test_nul_in_an_import_is_refused_with_its_line_and_elsewhere_is_kept(node: Node,
                                                                       bank: str) -> None:
    with node.client("curator") as c:
        bad = f"signal_type,hash,series\nmd5,{md5('i1')},ok\nmd5,{md5('i2')},S\x00\n".encode()
        r = c.post(f"/v1/banks/{bank}/import?format=csv", content=bad, headers=OCTET)
        assert r.status_code == 422, r.text
        assert "line 3" in r.json()["detail"] and "series" in r.json()["detail"]
        assert c.get(f"/v1/banks/{bank}").json()["entries"] == 0  # all or nothing
        # a column Vigil does not interpret is kept as it came (PostgreSQL's json holds NUL)
        ok = f"signal_type,hash,their_column\nmd5,{md5('i3')},a\x00b\n".encode()
        r = c.post(f"/v1/banks/{bank}/import?format=csv", content=ok, headers=OCTET)
        assert r.status_code == 200 and r.json()["added"] == 1, r.text
        vics = json.dumps({"value": [{"MediaID": 1, "MD5": md5("i4"), "Series": "S\x00"}]})
        assert "\\u0000" in vics
        r = c.post(f"/v1/banks/{bank}/import?format=vics", content=vics, headers=OCTET)
        assert r.status_code == 422 and "record 1" in r.json()["detail"], r.text


def test_a_json_escape_that_only_looks_like_nul_is_text(node: Node, bank: str) -> None:
    with node.client("curator") as c:
        raw = json.dumps({"entries": [{"type": "md5", "value": md5("esc"),
                                       "note": "C:\\u0000 is a path"}]})
        assert "\\\\u0000" in raw  # the text holds \\u0000: a backslash, then u0000
        r = c.post(f"/v1/banks/{bank}/entries", content=raw,
                   headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["added"] == 1, r.text


def test_user_names_are_checked_at_the_door(node: Node) -> None:
    with node.client("admin") as c:
        for name, says in (("eve\u202e", "U+202E"), ("a b", "U+0020"), ("-x", "must start")):
            refused(c.post("/v1/users", json={"name": name, "roles": ["analyst"]}),
                    "body.name", says)
        r = c.post("/v1/users", json={"name": f"김민준-{uuid.uuid4().hex[:6]}",
                                      "roles": ["analyst"]})
        assert r.status_code == 201 and r.json()["name"].startswith("김민준"), r.text
        r = c.post("/v1/tokens", json={"user_id": r.json()["id"], "description": "x\x1b"})
        refused(r, "body.description", "U+001B ESC")

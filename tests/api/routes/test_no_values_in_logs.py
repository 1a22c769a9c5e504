"""Hash values sent to a node never reach its logs: not from a refused request, not from a
database error (bind parameters are hidden), on SQLite and PostgreSQL.

Every request below carries distinctive values (valid and invalid signals, NUL included)
through every door a value can come in by; afterwards the node's log (``home/serve.log``,
stdout and stderr of ``vigil serve``) and its audit folder are searched for each value, in
the spellings a log could use (as sent, lower/upper case, repr-escaped).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from urllib.parse import quote

import httpx

from tests.api.conftest import Node

OCTET = {"content-type": "application/octet-stream"}


def _distinct(kind: str, n: int) -> str:
    return hashlib.sha256(f"{kind}-{uuid.uuid4()}".encode()).hexdigest()[:n]


def send(method, url: str, **kw: object) -> int:  # type: ignore[no-untyped-def]
    """The status of one request; 0 if the connection broke (the node's log tells why)."""
    try:
        return int(method(url, **kw).status_code)
    except httpx.TransportError:
        return 0


def _spellings(value: str) -> set[str]:
    core = value.replace("\x00", "")
    return {value, core, core.upper(), repr(value)[1:-1], json.dumps(value)[1:-1]} - {""}


def test_values_sent_in_requests_never_appear_in_the_logs(node: Node, bank: str) -> None:
    pdq, md5, sha256 = _distinct("pdq", 64), _distinct("md5", 32), _distinct("sha", 64)
    opaque = "PDNA" + _distinct("photodna", 40)
    bad_hex = "zz" + _distinct("bad", 62)  # right length, not hex
    short = _distinct("short", 31)
    nul = _distinct("nul", 20) + "\x00" + _distinct("nul2", 20)
    long_opaque = "L" + _distinct("long", 60) * 20  # over the 1024-character limit
    sent = [pdq, md5, sha256, opaque, bad_hex, short, nul, long_opaque]

    with node.client("admin") as c:
        answers = [
            # valid signals: matched, added, relabelled, removed, imported, exported
            send(c.post, "/v1/match", json={"signals": [{"type": "pdq", "value": pdq},
                                                       {"type": "md5", "value": md5},
                                                       {"type": "photodna", "value": opaque}]}),
            send(c.post, f"/v1/banks/{bank}/entries", json={"entries": [
                {"type": "sha256", "value": sha256}, {"type": "photodna", "value": opaque}]}),
            send(c.patch, f"/v1/banks/{bank}/entries", json={
                "signals": [{"type": "sha256", "value": sha256}], "set": {"note": "n"}}),
            send(c.post, f"/v1/banks/{bank}/import?format=csv", headers=OCTET,
                 content=f"signal_type,hash\npdq,{pdq}\nmd5,{md5}\n".encode()),
            send(c.get, f"/v1/banks/{bank}/export?format=csv"),
            send(c.post, f"/v1/banks/{bank}/entries/remove",
                 json={"signals": [{"type": "md5", "value": md5}]}),
            # invalid ones: wrong alphabet, wrong length, NUL, too long, in every door
            send(c.post, "/v1/match", json={"signals": [{"type": "pdq", "value": bad_hex}]}),
            send(c.post, "/v1/match", json={"signals": [{"type": "md5", "value": short}]}),
            send(c.post, "/v1/match", json={"signals": [{"type": "photodna", "value": nul}]}),
            send(c.post, "/v1/match",
                 json={"signals": [{"type": "photodna", "value": long_opaque}]}),
            send(c.post, f"/v1/banks/{bank}/entries",
                 json={"entries": [{"type": "photodna", "value": nul}]}),
            send(c.post, f"/v1/banks/{bank}/entries",
                 json={"entries": [{"type": "x-hash", "value": long_opaque}]}),
            send(c.post, f"/v1/banks/{bank}/entries",
                 json={"entries": [{"type": "md5", "value": md5, "note": nul}]}),
            send(c.post, f"/v1/banks/{bank}/entries/remove",
                 json={"signals": [{"type": "pdq", "value": bad_hex}]}),
            send(c.post, f"/v1/banks/{bank}/import?format=csv", headers=OCTET,
                 content=f"signal_type,hash\npdq,{bad_hex}\nmd5,{short}\n".encode()),
            send(c.post, f"/v1/banks/{bank}/import?format=csv", headers=OCTET,
                 content=f"signal_type,hash\nphotodna,{nul}\n".encode()),
            send(c.post, f"/v1/banks/{bank}/import?format=csv", headers=OCTET,
                 content=f"signal_type,hash,series\nmd5,{md5},{nul}\n".encode()),
            send(c.post, f"/v1/banks/{bank}/import?format=stopncii", headers=OCTET,
                 content=json.dumps([{"signalType": "PDQ", "hashValue": bad_hex},
                                     {"signalType": "x", "hashValue": nul}]).encode()),
            send(c.get, f"/v1/banks/{bank}/entries", params={"value": nul}),
            send(c.get, "/v1/audit", params={"action": nul}),
            send(c.get, f"/v1/banks/{quote(nul)}"),
            send(c.post, "/v1/banks", json={"name": nul}),
        ]
    logs = {p.name: p.read_text(errors="replace") for p in node.home.glob("*.log")}
    logs.update({str(p): p.read_text(errors="replace")
                 for p in (node.home / "audit").rglob("*") if p.is_file()})
    assert "serve.log" in logs
    for value in sent:
        for spelling in _spellings(value):
            for name, text in logs.items():
                assert spelling not in text, f"a value sent ({spelling[:12]}…) is in {name}"
    assert all(0 < status < 500 for status in answers), answers
    assert 422 in answers

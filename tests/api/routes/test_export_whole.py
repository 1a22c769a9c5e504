"""An export over HTTP is whole or visibly not: a failure before the first byte is a problem
document, one after it ends the body without its final chunk, which an HTTP client reports;
both are audited. The entry that cannot be written is one an older version stored (the door
now refuses it), written here straight into the node's store."""

from __future__ import annotations

import csv
import hashlib
import io

import httpx
import pytest

from tests.api.conftest import Node
from vigil.banks import Banks
from vigil.banks.entry import EntryRecord, stored_labels, stored_record

OCTET = {"content-type": "application/octet-stream"}


def md5(i: int) -> str:
    return hashlib.md5(f"whole-{i}".encode()).hexdigest()


def _legacy(i: int) -> EntryRecord:
    """An entry with a tag holding ';', the CSV tag separator, as the API once accepted."""
    return stored_record("md5", md5(i), stored_labels(None, None, "unknown", ("a;b",), None),
                         None, "add", None, {})


def _fill(node: Node, bank: str, n: int) -> None:
    rows = "signal_type,hash,series,note\n" + "".join(
        f"md5,{md5(i)},S{i % 7},a note long enough to make the rows of this export add up\n"
        for i in range(n))
    with node.client("curator") as c:
        r = c.post(f"/v1/banks/{bank}/import?format=csv", content=rows.encode(),
                   headers=OCTET)
        assert r.status_code == 200 and r.json()["added"] == n, r.text


def _audit(node: Node, bank: str) -> list[dict]:
    with node.client("auditor") as c:
        recs = c.get("/v1/audit", params={"action": "bank.export", "limit": 1000}).json()
    return [r for r in recs if r["target"] == bank]


def test_a_tag_holding_the_csv_separator_is_refused_at_the_door(node: Node, bank: str) -> None:
    """Issue 15.5 as reported: the API took it, then the export stopped at record 49."""
    with node.client("curator") as c:
        r = c.post(f"/v1/banks/{bank}/entries",
                   json={"entries": [{"type": "md5", "value": md5(1), "tags": ["a;b"]}]})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == \
            "body.entries.0.tags.0", r.text


def test_a_failure_before_the_first_byte_is_a_409_problem(node: Node, bank: str) -> None:
    _fill(node, bank, 48)
    Banks(node.engine, user="older version").apply(bank, [_legacy(10_000)])
    with node.client("curator") as c:
        r = c.get(f"/v1/banks/{bank}/export", params={"format": "csv"})
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "record 49" in r.json()["detail"] and "';'" in r.json()["detail"]
    (rec,) = _audit(node, bank)
    assert rec["outcome"] == "failed" and "record 49" in rec["detail"]["error"]
    with node.client("curator") as c:  # the other formats carry such a tag
        r = c.get(f"/v1/banks/{bank}/export", params={"format": "stopncii"})
        assert r.status_code == 200 and len(r.json()) == 49


def test_a_failure_mid_stream_is_detected_by_the_client(node: Node, bank: str) -> None:
    """Thousands of good entries (several chunks of 64 KiB go out), then one the writer
    refuses: the response must not look complete to an ordinary HTTP client."""
    _fill(node, bank, 3000)
    Banks(node.engine, user="older version").apply(bank, [_legacy(10_000)])
    received = bytearray()
    with node.client("curator") as c:
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"), \
                c.stream("GET", f"/v1/banks/{bank}/export", params={"format": "csv"}) as resp:
            assert resp.status_code == 200
            for chunk in resp.iter_bytes():
                received += chunk
        assert c.get("/healthz").status_code == 200  # the node is fine
    assert len(received) > 64 << 10  # it failed mid-stream, after real chunks went out
    assert md5(10_000).encode() not in received  # what came is short of the whole
    recs = _audit(node, bank)
    assert [r["outcome"] for r in recs] == ["ok", "failed"], recs
    assert "record 3001" in recs[1]["detail"]["error"]
    assert recs[1]["detail"]["bytes_sent"] >= len(received)


def test_a_whole_export_ends_properly(node: Node, bank: str) -> None:
    _fill(node, bank, 3000)
    with node.client("curator") as c, c.stream("GET", f"/v1/banks/{bank}/export",
                                               params={"format": "csv"}) as resp:
        text = b"".join(resp.iter_bytes()).decode()
    assert len(list(csv.DictReader(io.StringIO(text)))) == 3000
    assert [r["outcome"] for r in _audit(node, bank)] == ["ok"]

"""Banks over HTTP: stats, relabel, bulk import and export (streamed), and their audit."""

from __future__ import annotations

import csv
import hashlib
import io

from tests.api.conftest import Node, wait_for

OCTET = {"content-type": "application/octet-stream"}


def md5(i: int) -> str:
    return hashlib.md5(f"bank-test-{i}".encode()).hexdigest()


def _csv(n: int, start: int = 0) -> bytes:
    rows = ["signal_type,hash,category_scheme,category,series"]
    rows += [f"md5,{md5(i)},us,1,S{i % 3}" for i in range(start, start + n)]
    return ("\n".join(rows) + "\n").encode()


def test_import_export_relabel_and_audit(node: Node, bank: str) -> None:
    with node.client("curator") as c:
        def body():  # type: ignore[no-untyped-def]  # a chunked, streamed upload
            data = _csv(3000)
            for i in range(0, len(data), 10_000):
                yield data[i:i + 10_000]

        r = c.post(f"/v1/banks/{bank}/import?format=csv", content=body(), headers=OCTET)
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 3000
        # all or nothing: one bad row rolls the whole import back
        bad = _csv(10, 5000) + b"md5,zz,us,1,S\n"
        r = c.post(f"/v1/banks/{bank}/import?format=csv", content=bad, headers=OCTET)
        assert r.status_code == 422 and "line 12" in r.json()["detail"]
        r = c.post(f"/v1/banks/{bank}/import?format=csv&skip_invalid=true", content=bad,
                   headers=OCTET)
        assert r.json()["added"] == 10 and len(r.json()["skipped"]) == 1
        st = c.get(f"/v1/banks/{bank}").json()
        assert st["entries"] == 3010 and st["by_signal_type"] == {"md5": 3010}
        assert st["by_category"] == {"us:1": 3010}
        r = c.patch(f"/v1/banks/{bank}/entries",
                    json={"of_series": "S1", "set": {"victim_status": "identified"}})
        assert r.json()["updated"] == 1000 + 3  # S1: i % 3 == 1 in 0..2999 and 5000..5009
        r = c.patch(f"/v1/banks/{bank}/entries",
                    json={"signals": [{"type": "md5", "value": md5(0)}],
                          "set": {"note": "checked", "tags": ["a", "b"]}})
        assert r.json()["updated"] == 1
        with c.stream("GET", f"/v1/banks/{bank}/export?format=csv") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/csv")
            text = b"".join(resp.iter_bytes()).decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 3010
        first = next(r for r in rows if r["value"] == md5(0))
        assert first["note"] == "checked" and first["tags"] == "a;b"
        assert sum(r["victim_status"] == "identified" for r in rows) == 1003
        for fmt in ("vics", "ncmec", "stopncii", "pdq-list"):
            r = c.get(f"/v1/banks/{bank}/export?format={fmt}")
            assert r.status_code == 200, (fmt, r.text[:200])
    with node.client("analyst") as a:  # what was imported matches
        sig = [{"type": "md5", "value": md5(i)} for i in (0, 2999, 5009)]
        wait_for(lambda: a.post("/v1/match", json={"signals": sig,
                                                    "banks": [bank]}).json()["matched"] == 3)
    with node.client("auditor") as au:
        recs = au.get("/v1/audit", params={"action": "bank.", "limit": 1000}).json()
    mine = [r for r in recs if r["target"] == bank]
    actions = [r["action"] for r in mine]
    assert actions[:2] == ["bank.create", "bank.import"]
    assert "bank.relabel" in actions and actions.count("bank.export") == 5
    failed = [r for r in mine if r["outcome"] == "failed"]
    assert failed and failed[0]["action"] == "bank.import"
    assert md5(0) not in str(recs)


def test_match_audit_holds_counts_and_digest_only(node: Node, bank: str) -> None:
    value = "9" * 40
    with node.client("matcher") as m:
        m.post("/v1/match", json={"signals": [{"type": "sha1", "value": value}] * 3})
    with node.client("auditor") as au:
        recs = au.get("/v1/audit", params={"action": "match", "actor": "SG-SPF/matcher-user",
                                           "limit": 1000}).json()
        assert au.get("/v1/audit", params={"outcome": "bad"}).status_code == 422
    last = recs[-1]
    assert last["detail"]["signals"] == 3 and last["detail"]["matched"] == 0
    assert len(last["detail"]["digest"]) == 64 and value not in str(last)


def test_ops_endpoints(node: Node) -> None:
    with node.client(None) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and ready["lag_changes"] == 0
        text = c.get("/metrics").text
        assert "vigil_http_requests_total" in text and "vigil_index_entries" in text
        assert 'route="/v1/match"' in text
        spec = c.get("/openapi.json").json()
        assert "/v1/match" in spec["paths"] and "HTTPBearer" in str(spec["components"])


def test_changes_report_the_banks_last_seq(node: Node, bank: str) -> None:
    """Each add, relabel and removal answers with the bank's sequence number after it
    (read on its own, not through the bank's entry count), and it moves with every change."""
    with node.client("curator") as c:
        seqs = []
        for i in range(3):
            r = c.post(f"/v1/banks/{bank}/entries",
                       json={"entries": [{"type": "md5", "value": md5(9000 + i)}]})
            assert r.status_code == 200, r.text
            seqs.append(r.json()["last_seq"])
        r = c.patch(f"/v1/banks/{bank}/entries",
                    json={"signals": [{"type": "md5", "value": md5(9000)}],
                          "set": {"note": "seen"}})
        seqs.append(r.json()["last_seq"])
        assert seqs == sorted(set(seqs)) and seqs[-1] == c.get(f"/v1/banks/{bank}").json()[
            "last_seq"]

"""The audit log's PostgreSQL append path against its reference (SQLAlchemy Core).

Both must write the same rows into one chain: records appended alternately by the two,
from several threads at once, read back equal to what each append returned, with ids
gap-free and ``verify`` clean; a failed batch leaves nothing behind.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from vigil.audit import AuditLog

KEY = b"k" * 32


def _recs(log: AuditLog, rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [log._record(rng.choice(["match", "bank.add", "auth.failure"]),
                        rng.choice(["ok", "denied"]), rng.choice([None, "SG-SPF"]),
                        rng.choice([None, "analyst-user", "ünïcode ✓",
                                    "o'brien \\ %s %(x)s '); DROP TABLE audit_log; --"]),
                        rng.choice([None, "/v1/match"]), rng.choice([None, "127.0.0.1"]),
                        {"signals": rng.randrange(10_000), "digest": f"{rng.getrandbits(256):064x}",
                         "nested": {"a": [1, 2.5, None, "x"]}, "t": "é",
                         "quote": "it's \\'; \\\\ \n\t\"q\" $$ %%"})
            for _ in range(n)]


def _pg_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the driver path is PostgreSQL's (VIGIL_TEST_DATABASE_URL)")


def test_driver_path_and_reference_write_one_chain(engine: Engine) -> None:
    _pg_only(engine)
    log = AuditLog(engine, KEY)
    rng = random.Random(3)
    written = []
    for k in range(40):
        append = log._append_many_pg if k % 2 else log._append_many_core
        written += append(_recs(log, rng, rng.choice([1, 1, 2, 7, 30])))
    assert [e.id for e in written] == list(range(1, len(written) + 1))
    back = {e.id: e for e in log.iter_all()}
    for e in written:
        b = back[e.id]
        assert (b.hash, b.prev_hash, b.detail, b.actor, b.action, b.outcome, b.target,
                b.remote, b.agency) == (e.hash, e.prev_hash, e.detail, e.actor, e.action,
                                        e.outcome, e.target, e.remote, e.agency)
        assert b.at == e.at
    report = log.verify()
    assert report.ok, report.problems
    assert report.records == len(written)


def test_both_paths_from_many_threads_keep_the_chain(engine: Engine) -> None:
    _pg_only(engine)
    log = AuditLog(engine, KEY)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for k in range(15):
            append = log._append_many_pg if (seed + k) % 2 else log._append_many_core
            append(_recs(log, rng, rng.randrange(1, 5)))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = log.verify()
    assert report.ok, report.problems
    ids = [e.id for e in log.iter_all()]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 6 * 15


def test_a_failed_batch_on_the_driver_path_leaves_nothing(engine: Engine) -> None:
    _pg_only(engine)
    log = AuditLog(engine, KEY)
    rng = random.Random(5)
    log._append_many_pg(_recs(log, rng, 3))
    bad = _recs(log, rng, 2)
    bad[1]["actor"] = "x" * 500  # longer than the column: the insert fails
    with pytest.raises(Exception, match="too long"):
        log._append_many_pg(bad)
    log._append_many_pg(_recs(log, rng, 2))  # the connection went back clean
    report = log.verify()
    assert report.ok, report.problems
    assert [e.id for e in log.iter_all()] == [1, 2, 3, 4, 5]


def test_every_backend_appends_through_its_default_path(engine: Engine) -> None:
    log = AuditLog(engine, KEY, group_commit=True)
    rng = random.Random(9)
    out = [log.append("match", detail={"n": i}) for i in range(5)]
    out += log._append_many(_recs(log, rng, 4))
    assert [e.id for e in out] == list(range(1, 10))
    assert log.verify().ok


def test_the_driver_path_survives_a_dropped_connection(engine: Engine) -> None:
    """The kept connection is ended by the server (a restart, an idle timeout): the next
    append opens another and nothing is lost."""
    _pg_only(engine)
    log = AuditLog(engine, KEY)
    rng = random.Random(1)
    log._append_many_pg(_recs(log, rng, 2))
    assert log._pg_appender is not None
    pid = log._pg_appender.local.conn.info.backend_pid
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    log._append_many_pg(_recs(log, rng, 2))
    assert log._pg_appender.local.conn.info.backend_pid != pid
    assert [e.id for e in log.iter_all()] == [1, 2, 3, 4] and log.verify().ok


def test_flat_details_skip_the_json_round_trip_but_read_back_equal() -> None:
    """A flat detail is copied as is; anything else goes through JSON — both as the store
    gives them back."""
    from vigil.audit.records import canonical as _canonical
    from vigil.audit.records import plain_detail as _plain

    rng = random.Random(2)
    for _ in range(500):
        d: dict[str, Any] = {}
        for k in range(rng.randrange(6)):
            d[f"k{k}"] = rng.choice([1, -7, 2**40, True, False, None, "x", "é✓", "",
                                     (1, 2), [1, "a"], {"n": 1}, 1.5])
        out = _plain(d)
        assert out == json.loads(_canonical(d)) and out is not d


def test_async_appends_from_many_coroutines_share_commits(engine: Engine) -> None:
    """Coroutines and threads appending at once through the group committer: every one
    gets its own committed entry, ids are gap-free, the chain verifies."""
    import asyncio

    log = AuditLog(engine, KEY, group_commit=True)

    async def main() -> list[Any]:
        return await asyncio.gather(*(log.append_async("match", detail={"n": i})
                                      for i in range(200)))

    sync_out: list[Any] = []
    t = threading.Thread(target=lambda: sync_out.extend(
        log.append("bank.add", detail={"k": k}) for k in range(30)))
    t.start()
    out = asyncio.run(main())
    t.join()
    assert sorted(e.detail["n"] for e in out) == list(range(200))
    ids = sorted(e.id for e in out + sync_out)
    assert ids == list(range(1, 231)) and log.verify().ok


def _trips(log: AuditLog) -> int:
    assert log._pg_appender is not None
    return log._pg_appender.single_trips


def test_one_trip_appends_share_a_host_hint_and_yield_to_any_other_writer(
        engine: Engine, tmp_path: Path) -> None:
    """Two logs on one folder stand for two workers of a host: each usually finds the
    head where the other left it (one round trip); a Core append (a CLI command) or a
    log without the folder (another host) moves the head behind their back, and the
    next append notices and takes the two-trip path. One chain throughout."""
    _pg_only(engine)
    a, b = AuditLog(engine, KEY, tmp_path), AuditLog(engine, KEY, tmp_path)
    other_host = AuditLog(engine, KEY)
    rng = random.Random(11)
    written = []
    for k in range(60):
        if k % 10 == 9:
            before = _trips(a) + _trips(b)
            written += (a._append_many_core if k % 20 == 9 else other_host._append_many_pg)(
                _recs(a, rng, 2))
            written += (a if k % 3 else b)._append_many_pg(_recs(a, rng, 1))
            assert _trips(a) + _trips(b) == before  # the hint was stale
        else:
            written += (a if k % 3 else b)._append_many_pg(_recs(a, rng, rng.choice([1, 3])))
    assert _trips(a) + _trips(b) >= 40
    assert [e.id for e in written] == list(range(1, len(written) + 1))
    back = {e.id: e for e in a.iter_all()}
    assert all(back[e.id].hash == e.hash and back[e.id].detail == e.detail for e in written)
    report = a.verify()
    assert report.ok, report.problems


def test_a_one_trip_append_whose_answer_was_lost_is_not_written_twice(
        engine: Engine, tmp_path: Path) -> None:
    """The one-trip statement committed but its answer never came back (the connection
    dropped): the two-trip path finds the head right after those records and returns
    them instead of appending them again."""
    from psycopg.pq import Escaping

    from vigil.store.dialects import audit_insert_if_head as conditional

    _pg_only(engine)
    log = AuditLog(engine, KEY, tmp_path)
    appender = log._pg_appender
    assert appender is not None
    rng = random.Random(12)
    first = log._append_many_pg(_recs(log, rng, 2))
    recs = _recs(log, rng, 3)
    tried = log._chain(recs, first[-1].id, first[-1].hash)
    pg = appender.connection()
    with pg.cursor() as cur:  # what the lost attempt did
        cur.execute(conditional(Escaping(pg.pgconn).escape_literal, tried,
                                (first[-1].id, first[-1].hash)))
        assert cur.rowcount == 3
    assert appender.two_trips(recs, tried) == tried
    assert [e.id for e in log.iter_all()] == [1, 2, 3, 4, 5] and log.verify().ok
    (tmp_path / "head.hint").write_bytes(b"\x05" + b"\0" * 7 + b"f" * 64)  # a wrong hash
    assert [e.id for e in log._append_many_pg(_recs(log, rng, 1))] == [6]
    assert log.verify().ok

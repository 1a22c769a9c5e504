"""The hot path's caches: tokens (``AuthCache``), banks (``BankDirectory``), the counters
workers share (``EpochFile``), and what a real node does with them: a revoked token or a
disabled user is refused at once in every worker, a new bank is usable at once, and a
revocation made behind the node's back (CLI, SQL) is refused within the cache's TTL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from tests.api.conftest import SG, Node, wait_for
from vigil.api.runtime.auth_cache import AUTH_CACHE_SECONDS, AuthCache, authenticate
from vigil.api.runtime.directory import BankDirectory, CacheRefresher
from vigil.api.runtime.epochs import EpochFile
from vigil.banks import Banks, EntryReader
from vigil.index import SearchResult
from vigil.matching import Matcher, Query
from vigil.node import (
    PrincipalInfo,
    create_principal,
    ensure_agency,
    hash_token,
    issue_token,
    revoke_token,
)
from vigil.store.models import utcnow
from vigil.store.models_node import Principal, Token

PDQ = "f" * 64


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _principal(pid: int = 1) -> PrincipalInfo:
    return PrincipalInfo(pid, SG, f"u{pid}", "user", ("analyst",), False, utcnow())


def _id(result: tuple[PrincipalInfo | None, str]) -> int | None:
    return result[0].id if result[0] is not None else None


def _statements(engine: Engine) -> list[str]:
    """Every SQL statement the engine runs from now on."""
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, stmt, *_a: seen.append(stmt))
    return seen


# ---- AuthCache ----------------------------------------------------------------------------


def test_auth_cache_ttl_and_token_expiry_with_injected_clocks() -> None:
    mono, wall = Clock(), Clock(1_000_000.0)
    cache = AuthCache(ttl=5, clock=mono, wall=wall)
    p = _principal()
    from datetime import UTC, datetime
    expires = datetime.fromtimestamp(wall.t + 3, UTC)  # the token itself expires first
    cache.put("k", p, expires, cache.generation())
    assert cache.get("k") == p
    wall.t += 2.9
    assert cache.get("k") == p
    wall.t += 0.2  # past the token's own expiry, well within the TTL
    assert cache.get("k") is None and len(cache) == 0
    # the TTL bounds how long a token is trusted without looking at the store
    cache.put("k", p, datetime.fromtimestamp(wall.t + 3600, UTC), cache.generation())
    mono.t += 4.9
    assert cache.get("k") == p
    mono.t += 0.2
    assert cache.get("k") is None


def test_auth_cache_invalidation_wins_over_a_lookup_in_flight() -> None:
    cache = AuthCache(ttl=5)
    p = _principal()
    far = utcnow() + timedelta(days=1)
    gen = cache.generation()  # a lookup starts reading the store ...
    cache.invalidate()  # ... a token is revoked meanwhile ...
    cache.put("k", p, far, gen)  # ... its (maybe stale) answer is not kept
    assert cache.get("k") is None
    cache.put("k", p, far, cache.generation())
    assert cache.get("k") == p
    cache.invalidate()
    assert cache.get("k") is None


def test_auth_cache_is_bounded_and_can_be_off() -> None:
    cache = AuthCache(ttl=5, max_size=3)
    far = utcnow() + timedelta(days=1)
    for i in range(5):
        cache.put(f"k{i}", _principal(i), far, cache.generation())
    assert len(cache) == 3 and cache.get("k0") is None and cache.get("k4") is not None
    off = AuthCache(ttl=0)
    off.put("k", _principal(), far, off.generation())
    assert off.get("k") is None


def test_epoch_file_is_shared_between_processes_views(tmp_path: Path) -> None:
    a, b = EpochFile(tmp_path / "e"), EpochFile(tmp_path / "e")
    read_auth, read_banks = b.reader("auth"), b.reader("banks")
    assert (read_auth(), read_banks()) == (0, 0)
    a.bump("auth")
    a.bump("auth")
    assert (read_auth(), read_banks(), b.read("auth")) == (2, 0, 2)
    # a cache tied to the counter drops everything when another process bumps it
    cache = AuthCache(ttl=5, epoch=read_auth)
    cache.put("k", _principal(), utcnow() + timedelta(days=1), cache.generation())
    assert cache.get("k") is not None
    a.bump("auth")
    assert cache.get("k") is None


def test_authenticate_caches_successes_by_hash_only(engine: Engine) -> None:
    ensure_agency(engine, SG)
    p = create_principal(engine, SG, "ana", ["analyst"])
    token, info = issue_token(engine, p.id, 1)
    cache = AuthCache(ttl=60)
    seen = _statements(engine)
    assert _id(authenticate(engine, token, cache)) == p.id
    assert seen, "the first use reads the store"
    n = len(seen)
    for _ in range(5):
        assert _id(authenticate(engine, token, cache)) == p.id
    assert len(seen) == n, "later uses within the TTL do not"
    assert list(cache._entries) == [hash_token(token)]
    assert all(token not in repr(v) for v in cache._entries.values())
    # failures are never cached: an unknown token is looked up every time
    unknown = "vgl_" + "x" * 43
    for _ in range(3):
        assert authenticate(engine, unknown, cache) == (None, "unknown token")
    assert len(seen) == n + 3 and len(cache) == 1
    # revoked behind the cache's back: still trusted until invalidated (or the TTL) ...
    assert revoke_token(engine, info.id)
    assert _id(authenticate(engine, token, cache)) == p.id
    cache.invalidate()  # ... what the API's revoke and the refresh thread do
    assert authenticate(engine, token, cache) == (None, "revoked token")
    assert authenticate(engine, token, cache) == (None, "revoked token")  # not cached


def test_refresh_thread_drops_tokens_revoked_elsewhere(engine: Engine) -> None:
    ensure_agency(engine, SG)
    p = create_principal(engine, SG, "ana", ["analyst"])
    token, info = issue_token(engine, p.id, 1)
    other, _ = issue_token(engine, p.id, 1)
    cache = AuthCache(ttl=60)
    refresher = CacheRefresher(engine, 60, cache, BankDirectory(engine))
    refresher.tick()
    assert _id(authenticate(engine, token, cache)) == p.id
    assert _id(authenticate(engine, other, cache)) == p.id
    refresher.tick()  # nothing changed: the cache stays
    assert len(cache) == 2
    revoke_token(engine, info.id)  # as `vigil token revoke` does, in another process
    refresher.tick()
    assert len(cache) == 0
    assert authenticate(engine, token, cache) == (None, "revoked token")
    assert _id(authenticate(engine, other, cache)) == p.id
    with Session(engine) as s, s.begin():  # a principal disabled by SQL
        s.execute(update(Principal).where(Principal.id == p.id).values(disabled=True))
    refresher.tick()
    assert authenticate(engine, other, cache) == (None, "disabled principal")


def test_revalidate_keeps_tokens_in_use_past_the_ttl_and_drops_refused_ones(
        engine: Engine) -> None:
    """The refresher re-checks a token before its TTL ends: a busy client never finds it
    lapsed (every request in flight would take the slow path at once), yet each entry
    was confirmed by the store within the TTL, and one refused there goes."""
    ensure_agency(engine, SG)
    p = create_principal(engine, SG, "ana", ["analyst"])
    busy, _ = issue_token(engine, p.id, 1)
    revoked, revoked_info = issue_token(engine, p.id, 1)
    clock = Clock()
    cache = AuthCache(ttl=5, clock=clock)
    for t in (busy, revoked):
        assert _id(authenticate(engine, t, cache)) == p.id
    assert cache.revalidate(engine, within=2) == 0, "nothing due yet: no query"
    revoke_token(engine, revoked_info.id)  # behind the cache's back
    clock.t += 3.5  # 1.5 s left on both
    seen = _statements(engine)
    assert cache.revalidate(engine, within=2) == 2
    assert len(seen) == 1, "one query for every token due"
    clock.t += 3  # past the first TTL
    assert _id(authenticate(engine, busy, cache)) == p.id
    assert cache.get(hash_token(busy)) is not None, "re-checked: still cached"
    assert cache.get(hash_token(revoked)) is None, "refused by the store: dropped"
    assert authenticate(engine, revoked, cache) == (None, "revoked token")
    clock.t += 3  # and never re-checked again: the TTL still bounds it
    assert cache.get(hash_token(busy)) is None


def test_refresh_tick_revalidates_tokens_about_to_lapse(engine: Engine) -> None:
    ensure_agency(engine, SG)
    p = create_principal(engine, SG, "ana", ["analyst"])
    token, _ = issue_token(engine, p.id, 1)
    clock = Clock()
    cache = AuthCache(ttl=5, clock=clock)
    refresher = CacheRefresher(engine, 0.5, cache, BankDirectory(engine))
    refresher.tick()
    assert _id(authenticate(engine, token, cache)) == p.id
    for _ in range(40):  # 20 s of ticks, each 0.5 s apart: the entry never lapses
        clock.t += 0.5
        refresher.tick()
        assert cache.get(hash_token(token)) is not None


# ---- BankDirectory and by_ids ---------------------------------------------------------------


def test_bank_directory_ttl_epoch_and_unknown_names(engine: Engine, tmp_path: Path) -> None:
    banks = Banks(engine, user="t")
    banks.create("a", SG)
    clock = Clock()
    epochs = EpochFile(tmp_path / "e")
    d = BankDirectory(engine, ttl=5, clock=clock, epoch=epochs.reader("banks"))
    seen = _statements(engine)
    assert d.own(SG) == {"a"}
    assert len(seen) == 1
    assert d.own(SG) == {"a"} and d.agency_of("a") == SG and len(seen) == 1  # cached
    banks.create("b", SG)  # made elsewhere (another host): not seen yet ...
    assert d.own(SG) == {"a"}
    # ... except by name: a name not found is looked up again before it is called missing
    assert d.agency_of("b") == SG and d.own(SG) == {"a", "b"}
    banks.create("c", "HK-POL")
    clock.t += 5  # the TTL bounds staleness
    assert d.own("HK-POL") == {"c"}
    banks.create("d", "HK-POL")
    epochs.bump("banks")  # another worker of this host made it
    assert d.own("HK-POL") == {"c", "d"}
    assert d.by_id()[banks.get("d").id] == ("d", "HK-POL")
    n = len(seen)
    assert d.agency_of("nope") is None and len(seen) == n + 1  # looked up, not invented


def test_matcher_skips_entry_reads_without_hits_and_uses_the_directory(engine: Engine) -> None:
    from vigil.banks.entry import EntryRecord, Labels

    banks = Banks(engine, user="t")
    banks.create("a", SG)
    banks.apply("a", [EntryRecord("pdq", PDQ, Labels(category=("us", "1"), series="s1",
                                                     tags=("x",)), 90)])
    [stored] = list(EntryReader(banks.engine).entries("a"))

    class Indexes:
        hit = False

        def search_pdq(self, codes: Any, radius: int) -> SearchResult:
            if not self.hit:
                return SearchResult.empty(len(codes))
            import numpy as np
            return SearchResult(np.array([0, 1]), np.array([stored.id]), np.array([3]))

    idx = Indexes()
    directory = {stored_bank_id(engine): ("a", SG)}
    m = Matcher(EntryReader(engine), idx, bank_directory=lambda: directory)
    seen = _statements(engine)
    [o] = m.match([[Query("pdq", "0" * 64)]])
    assert o.matches == [] and seen == [], "no hit: no store read at all"
    idx.hit = True
    [o] = m.match([[Query("pdq", "0" * 64)]])
    assert len(seen) == 1, "a hit: one read of its entry, none of the banks"
    [hit] = o.matches
    assert hit.distance == 3 and hit.entry == stored  # plain rows give the same entry
    # a bank the directory does not know yet is read from the store
    directory.clear()
    [o] = m.match([[Query("pdq", "0" * 64)]])
    assert o.matches[0].entry == stored and len(seen) == 3


def stored_bank_id(engine: Engine) -> int:
    return Banks(engine).get("a").id


# ---- on a real node: every worker ------------------------------------------------------------


def _fresh(node: Node, token: str, n: int = 16) -> list[int]:
    """Status of GET /v1/me on ``n`` fresh connections (spread over the workers)."""
    out = []
    for _ in range(n):
        with httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as c:
            out.append(c.get("/v1/me").status_code)
    return out


def _user(node: Node) -> tuple[int, str, int]:
    p = create_principal(node.engine, SG, f"c-{uuid.uuid4().hex[:6]}", ["matcher"])
    token, info = issue_token(node.engine, p.id, 1)
    return p.id, token, info.id


def test_revoked_token_is_refused_at_once_in_every_worker(node: Node) -> None:
    _, token, token_id = _user(node)
    assert _fresh(node, token) == [200] * 16  # now cached in the workers
    with node.client("admin") as admin:
        assert admin.delete(f"/v1/tokens/{token_id}").status_code == 200
    assert _fresh(node, token) == [401] * 16


def test_disabled_user_is_refused_at_once_in_every_worker(node: Node) -> None:
    pid, token, _ = _user(node)
    assert _fresh(node, token) == [200] * 16
    with node.client("admin") as admin:
        assert admin.delete(f"/v1/users/{pid}").status_code == 200
    assert _fresh(node, token) == [401] * 16


def test_revocation_outside_the_api_is_refused_within_the_ttl(node: Node) -> None:
    _, token, token_id = _user(node)
    assert _fresh(node, token, 8) == [200] * 8
    revoke_token(node.engine, token_id)  # what `vigil token revoke` does
    took = wait_for(lambda: _fresh(node, token, 8) == [401] * 8,
                    timeout=AUTH_CACHE_SECONDS + 2, interval=0.1)
    assert took <= AUTH_CACHE_SECONDS + 1


def test_expired_token_is_refused_even_if_cached(node: Node) -> None:
    _, token, _ = _user(node)
    assert _fresh(node, token, 8) == [200] * 8
    with Session(node.engine) as s, s.begin():
        s.execute(update(Token).where(Token.token_hash == hash_token(token))
                  .values(expires_at=utcnow() + timedelta(seconds=1)))
    # the workers cached the old expiry (a day): within the TTL they may still accept it,
    # after it they read the new one, and it has passed by then
    wait_for(lambda: _fresh(node, token, 8) == [401] * 8, timeout=AUTH_CACHE_SECONDS + 3,
             interval=0.2)


@pytest.mark.parametrize("role", ["matcher", "analyst"])
def test_new_bank_is_usable_at_once_in_every_worker(node: Node, role: str) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    body = {"signals": [{"type": "pdq", "value": PDQ}], "banks": [name]}
    with node.client("analyst") as c:  # every worker has its bank directory loaded
        assert c.post("/v1/match", json={"signals": body["signals"]}).status_code == 200
    with node.client("admin") as admin:
        assert admin.post("/v1/banks", json={"name": name}).status_code == 201
    tok = node.tokens[(SG, role)]
    for _ in range(12):  # fresh connections: both workers
        with httpx.Client(base_url=node.url, timeout=30,
                          headers={"Authorization": f"Bearer {tok}"}) as c:
            r = c.post("/v1/match", json=body)
            assert r.status_code == 200, r.text
            if role == "analyst":
                assert c.get(f"/v1/banks/{name}").status_code == 200
    with node.client("admin") as admin:
        r = admin.post(f"/v1/banks/{name}/entries",
                       json={"entries": [{"type": "pdq", "value": PDQ, "category": "us:1"}]})
        assert r.status_code == 200, r.text
    with node.client(role) as c:
        wait_for(lambda: c.post("/v1/match", json=body).json()["matched"] == 1)
        unfiltered = {"signals": body["signals"]}
        wait_for(lambda: any(m["bank"] == name for m in
                             c.post("/v1/match", json=unfiltered).json()["results"][0][
                                 "matches"]))


# ---- the audit log from async code -----------------------------------------------------------


@pytest.mark.parametrize("group_commit", [True, False])
def test_audit_append_async_commits_and_chains(engine: Engine, tmp_path: Path,
                                               group_commit: bool) -> None:
    import asyncio

    from vigil.audit import AuditLog

    log = AuditLog(engine, b"k" * 32, tmp_path / "audit", group_commit=group_commit)

    async def many() -> list[int]:
        return [e.id for e in await asyncio.gather(*(
            log.append_async("auth.failure", outcome="denied", target="/v1/match",
                             detail={"reason": f"r{i}"}) for i in range(20)))]

    ids = asyncio.run(many())
    assert sorted(ids) == list(range(1, 21))
    assert [r.detail["reason"] for r in log.records(limit=100)] != []
    rep = log.verify()
    assert rep.ok and rep.records == 20, rep.problems
    with pytest.raises(ValueError):
        asyncio.run(log.append_async("x", outcome="maybe"))

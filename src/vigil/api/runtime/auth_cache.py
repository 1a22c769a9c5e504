"""A worker's cache of checked tokens, and authentication through it.

Why: every request carries a bearer token, and checking it in the store cost a round
trip per request; a token checked once is trusted for a few seconds (``ttl``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from vigil.node.principals import TOKEN_PREFIX, PrincipalInfo, check_token_hashes, hash_token

#: how long a worker trusts a token it has checked, at most (seconds)
AUTH_CACHE_SECONDS = 5.0


class AuthCache:
    """Token hash -> principal, per worker, for ``ttl`` seconds at most.

    * Keys are the tokens' SHA-256 (as stored), never the tokens.
    * Only successes are cached: an unknown, revoked or expired token costs a lookup every
      time and can never be remembered as good, and guessing fills nothing.
    * A cached token still stops at its own expiry (checked on every hit), not up to
      ``ttl`` later.
    * ``invalidate()`` drops everything (revocations are rare); a lookup that started
      before an invalidation does not store its (possibly stale) answer after it.
    * ``epoch`` (optional) is a counter shared by the node's workers (``EpochFile``): when
      another worker bumps it (it revoked a token), this cache drops everything on its next
      use. Revocations elsewhere (another host, the CLI) are bounded by ``ttl``.
    * At most ``max_size`` entries; the oldest go first.
    """

    def __init__(self, ttl: float = AUTH_CACHE_SECONDS, max_size: int = 10_000, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 epoch: Callable[[], int] | None = None) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._clock, self._wall, self._epoch = clock, wall, epoch
        self._seen_epoch = epoch() if epoch is not None else 0
        self._generation = 0
        self._entries: dict[str, tuple[PrincipalInfo, float, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _check_epoch(self) -> None:
        if self._epoch is not None and self._epoch() != self._seen_epoch:
            with self._lock:
                self._seen_epoch = self._epoch()
                self._entries.clear()
                self._generation += 1

    def generation(self) -> int:
        """Take before reading the store; ``put`` with it stores only if nothing was
        invalidated in between."""
        self._check_epoch()
        return self._generation

    def get(self, key: str) -> PrincipalInfo | None:
        self._check_epoch()
        hit = self._entries.get(key)
        if hit is None:
            return None
        principal, expires, deadline = hit
        if self._clock() >= deadline or self._wall() >= expires:
            self._entries.pop(key, None)
            return None
        return principal

    def put(self, key: str, principal: PrincipalInfo, expires_at: datetime,
            generation: int) -> None:
        if self.ttl <= 0:
            return
        self._check_epoch()
        with self._lock:
            if generation != self._generation:
                return  # invalidated while this answer was read: it may be stale
            while len(self._entries) >= self.max_size:
                self._entries.pop(next(iter(self._entries)))
            self._entries.pop(key, None)
            self._entries[key] = (principal, expires_at.timestamp(), self._clock() + self.ttl)

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def due(self, within: float) -> list[str]:
        """The keys whose TTL ends within ``within`` seconds: to re-check before then."""
        limit = self._clock() + within
        return [k for k, (_, _, deadline) in list(self._entries.items()) if deadline <= limit]

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def revalidate(self, engine: Engine, within: float) -> int:
        """Re-check in the store the tokens whose TTL ends within ``within`` seconds, and
        keep those still valid for another TTL; the others go.

        Why: an expired entry sent the next requests of a busy client — every one already
        in flight — through the full authentication path at once, a stall every TTL
        (150-220 ms at 64 clients, measured). Checked ahead, a token in use never lapses,
        and every entry has still been confirmed by the store within the TTL. Returns how
        many were re-checked.
        """
        keys = self.due(within)
        if not keys:
            return 0
        generation = self.generation()  # before the read: a revocation after it wins
        for key, (info, _, expires) in check_token_hashes(engine, keys).items():
            if info is not None and expires is not None:
                self.put(key, info, expires, generation)
            else:
                self.drop(key)
        return len(keys)


def authenticate(engine: Engine, token: str, cache: AuthCache | None = None,
                 ) -> tuple[PrincipalInfo | None, str]:
    """The principal a bearer token stands for, or None and why not (never the token).

    With a ``cache``, a token found valid is remembered (by its SHA-256) for the cache's
    TTL at most; failures are never cached, so every refused token is looked up again.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None, "malformed token"
    key = hash_token(token)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit, "ok"
        generation = cache.generation()  # before the read: a revocation after it wins
    info, reason, expires = check_token_hashes(engine, [key])[key]
    if info is not None and expires is not None and cache is not None:
        cache.put(key, info, expires, generation)
    return info, reason

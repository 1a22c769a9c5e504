"""What one worker holds while it serves, built once at start-up: ``NodeState``.

The hot path reads nothing from the store but the hits' entries: each worker holds the
shared index (``index_service``), caches token -> principal (``auth_cache``), the banks
(``directory``) and the entries hits resolve to (``entries``), and appends to the audit
log in group commits.
"""

from __future__ import annotations

from sqlalchemy import Engine

from vigil.api.runtime.auth_cache import AUTH_CACHE_SECONDS, AuthCache, authenticate
from vigil.api.runtime.directory import BANKS_CACHE_SECONDS, BankDirectory, CacheRefresher
from vigil.api.runtime.entries import CachedEntries, EntryCache
from vigil.api.runtime.epochs import epoch_file
from vigil.api.runtime.index_service import IndexService
from vigil.api.runtime.settings import Settings
from vigil.audit import AuditLog
from vigil.banks import Banks, EntryReader
from vigil.matching import Matcher
from vigil.node import NodeIdentity, PrincipalInfo, audit_key, identity


class NodeState:
    """Everything a request handler needs, built once per worker at startup."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        ident = identity(engine)
        if ident is None:
            raise RuntimeError("this node has no identity yet: run `vigil init` first")
        self.identity: NodeIdentity = ident
        self.audit = AuditLog(engine, audit_key(settings.home), settings.audit_folder,
                              group_commit=True)
        self.index = IndexService(engine, settings)
        self.epochs = epoch_file(settings.home)
        self.auth_cache = AuthCache(
            float(getattr(settings, "auth_cache_seconds", AUTH_CACHE_SECONDS)),
            epoch=self.epochs.reader("auth"))
        self.directory = BankDirectory(
            engine, float(getattr(settings, "banks_cache_seconds", BANKS_CACHE_SECONDS)),
            epoch=self.epochs.reader("banks"))
        self.refresher = CacheRefresher(engine, settings.sync_interval, self.auth_cache,
                                        self.directory)
        self.entries = EntryCache()
        self.index.indexes.on_touched = self.entries.drop
        #: the matcher's entry source: hits resolve through the entry cache
        self.cached_entries = CachedEntries(EntryReader(engine), self.entries)
        self.matcher = Matcher(self.cached_entries, self.index,
                               bank_directory=self.directory.by_id)

    def start(self) -> None:
        self.refresher.start()
        self.index.warm()
        self.index.start()

    def stop(self) -> None:
        self.index.stop()
        self.refresher.stop()

    # ---- the caches ----------------------------------------------------------------------

    def authenticate(self, token: str) -> tuple[PrincipalInfo | None, str]:
        return authenticate(self.engine, token, self.auth_cache)

    def auth_changed(self) -> None:
        """A token was revoked or a principal disabled (committed): every worker of this
        host drops its token cache now."""
        self.auth_cache.invalidate()
        self.epochs.bump("auth")

    def banks_changed(self) -> None:
        """A bank was created (committed): every worker of this host re-reads the banks."""
        self.directory.invalidate()
        self.epochs.bump("banks")

    def banks(self, actor: str) -> Banks:
        """The banks domain acting as ``actor``; a bank it creates reaches every worker."""
        return Banks(self.engine, actor, on_created=self.banks_changed)

    def own_banks(self, agency: str) -> set[str]:
        return self.directory.own(agency)

    def bank_agency(self, name: str) -> str | None:
        return self.directory.agency_of(name)

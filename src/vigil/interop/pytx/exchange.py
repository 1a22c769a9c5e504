"""``vigil``: a python-threatexchange SignalExchangeAPI that pulls a bank a Vigil node
shares, verified as ``vigil peer sync`` verifies it (``vigil.interop.feed``).

* Collaboration config: the node's base URL, the bank, the origin agency and its Ed25519
  key (hex, obtained out of band: `vigil init` printed it), and the page size.
* Credentials: peer tokens (`vigil peer grant` on the node), keyed by origin agency so one
  HMA can pull from several nodes: ``VIGIL_PYTX_TOKENS`` or the file ``~/.vigil_pytx_tokens``
  holds ``ORIGIN=TOKEN`` entries separated by commas or new lines. Never in the config.
* Checkpoint: the last verified sequence number, the chain tip and the feed descriptor;
  its progress timestamp (when the last record was made at the origin) never goes back.
* Records: keyed by (Vigil signal type, value). Adds and relabels are metadata, removals
  delete. pdq → ``pdq``, md5 → ``video_md5``, sha256 → ``video_sha256``, vpdq →
  ``vigil_vpdq`` (``vigil.interop.pytx.vpdq``); sha1 and opaque types are not carried.
  Categories become opinions (``vigil.interop.opinions``); negative ones are dropped here
  (as deletes), because HMA ignores opinions when it matches.

No ``from __future__ import annotations`` in this module: pytx's CLI builds its
``config collab edit`` options from the config class's field types at run time, and a
string annotation breaks it.
"""

import logging
import typing as t
from dataclasses import dataclass, field

from threatexchange.exchanges import auth
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPI
from threatexchange.signal_type.signal_base import SignalType

from vigil.banks.entry import EntryRecord
from vigil.exchange.records import FeedError
from vigil.interop.feed import DEFAULT_PAGE_RECORDS, FeedPosition, FeedReader
from vigil.interop.opinions import opinion_of
from vigil.interop.vpdqjson import to_pytx
from vigil.signals.vpdq import read_vpdq

log = logging.getLogger("vigil.interop.pytx")

API_NAME = "vigil"
#: Vigil signal type -> the pytx signal type that carries it (sha1 and opaque: none)
PYTX_TYPES: dict[str, str] = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256",
                                "vpdq": "vigil_vpdq"}
_OPINIONS = {"positive": state.SignalOpinionCategory.POSITIVE_CLASS,
             "seed": state.SignalOpinionCategory.INVESTIGATION_SEED}
#: how many ``ORIGIN=TOKEN`` entries a credential text may hold
MAX_TOKENS = 1000

Key = tuple[str, str]


@dataclass
class _VigilRequired:
    base_url: str = field(metadata={
        "help": "the Vigil node's base URL, e.g. https://vigil.sg.example:8443"})
    bank: str = field(metadata={"help": "the bank the node shares with your agency"})
    origin: str = field(metadata={
        "help": "the origin agency's code, e.g. SG-SPF (its token is looked up by it)"})
    origin_key: str = field(metadata={
        "help": "the origin's Ed25519 public key, 64 hex characters, obtained out of band "
                "(`vigil init` printed it)"})


@dataclass
class VigilCollabConfig(CollaborationConfigWithDefaults, _VigilRequired):
    """One bank of one Vigil node."""

    api: str = field(init=False, default=API_NAME)
    page_size: int = field(default=DEFAULT_PAGE_RECORDS, metadata={
        "help": "records per request (1 to 20000)"})


@dataclass
class VigilCheckpoint(state.FetchCheckpointBase):
    """Where the copy of the feed ends (see the module doc)."""

    seq: int
    chain_tip: str
    descriptor: str
    #: Unix seconds: when the last verified record was made at the origin (never decreases)
    progress: int

    def get_progress_timestamp(self) -> int | None:
        return self.progress

    def position(self) -> FeedPosition:
        return FeedPosition(self.seq, self.chain_tip, self.descriptor)


@dataclass
class VigilSignalMetadata(state.FetchedSignalMetadata):
    """What the origin says about one signal: its opinion, category and tags."""

    #: the signal as its pytx signal type reads it (for vPDQ: pytx's vPDQ text)
    signal: str
    #: "positive" or "seed" (negative entries are never stored)
    opinion: str
    #: "scheme:value" (e.g. "us:1"), or "" when the feed carries no category
    category: str
    tags: list[str]
    origin: str
    #: the record's sequence number in the origin's feed
    seq: int

    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        tags = set(self.tags) | ({self.category} if self.category else set())
        return [state.SignalOpinion(False, _OPINIONS.get(
            self.opinion, state.SignalOpinionCategory.INVESTIGATION_SEED), tags)]


@dataclass
class VigilCredentials(auth.CredentialHelper):
    """Peer tokens by origin agency (see the module doc)."""

    ENV_VARIABLE: t.ClassVar[str] = "VIGIL_PYTX_TOKENS"
    FILE_NAME: t.ClassVar[str] = "~/.vigil_pytx_tokens"

    tokens: dict[str, str] = field(default_factory=dict, metadata={
        "help": "ORIGIN=TOKEN entries, separated by commas or new lines"})

    @classmethod
    def _from_str(cls, s: str) -> "VigilCredentials":
        """Parse ``ORIGIN=TOKEN`` entries; an error names the entry, never the token."""
        tokens: dict[str, str] = {}
        entries = [e.strip() for line in s.splitlines() for e in line.split(",")]
        entries = [e for e in entries if e and not e.startswith("#")]
        if len(entries) > MAX_TOKENS:
            raise ValueError(f"at most {MAX_TOKENS} ORIGIN=TOKEN entries")
        for n, entry in enumerate(entries, 1):
            origin, sep, token = entry.partition("=")
            if not sep or not origin.strip() or not token.strip():
                raise ValueError(f"Vigil credentials entry {n}: expected ORIGIN=TOKEN "
                                 "(e.g. SG-SPF=vgl_…)")
            tokens[origin.strip()] = token.strip()
        return cls(tokens)

    def _are_valid(self) -> bool:
        return bool(self.tokens)

    def token_for(self, origin: str) -> str | None:
        return self.tokens.get(origin)


def _category(entry: EntryRecord) -> str:
    cat = entry.labels.category
    return f"{cat[0]}:{cat[1]}" if cat else ""


def _signal(entry: EntryRecord) -> str | None:
    """The signal string pytx reads for an added entry (None: not carried)."""
    if entry.signal_type == "vpdq":
        text = entry.extra.get("vpdq")
        return to_pytx(read_vpdq(text)) if isinstance(text, str) and text.strip() else None
    return entry.value


def updates_of(entries: t.Sequence[EntryRecord], bodies: t.Sequence[dict[str, t.Any]],
               origin: str) -> dict[Key, VigilSignalMetadata | None]:
    """One page's records as pytx updates (see the module doc); later records of the same
    signal win, as they do in the feed."""
    out: dict[Key, VigilSignalMetadata | None] = {}
    for entry, body in zip(entries, bodies, strict=True):
        if entry.signal_type not in PYTX_TYPES:
            continue  # sha1, opaque types: not carried (docs/interop.md)
        key = (entry.signal_type, entry.value)
        opinion = opinion_of(entry.labels.category)
        signal = None if entry.op == "remove" or opinion == "negative" else _signal(entry)
        if signal is None:
            out[key] = None
            continue
        out[key] = VigilSignalMetadata(signal, opinion, _category(entry),
                                       list(entry.labels.tags), origin, int(body["seq"]))
    return out


class VigilSignalExchangeAPI(
    auth.SignalExchangeWithAuth[VigilCollabConfig, VigilCredentials],
    SignalExchangeAPI[VigilCollabConfig, VigilCheckpoint, VigilSignalMetadata, Key,
                      VigilSignalMetadata],
):
    """Pulls one bank of one Vigil node (see the module doc)."""

    def __init__(self, collab: VigilCollabConfig, token: str) -> None:
        self.collab, self._token = collab, token

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @staticmethod
    def get_config_cls() -> type[VigilCollabConfig]:
        return VigilCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[VigilCheckpoint]:
        return VigilCheckpoint

    @staticmethod
    def get_record_cls() -> type[VigilSignalMetadata]:
        return VigilSignalMetadata

    @staticmethod
    def get_credential_cls() -> type[VigilCredentials]:
        return VigilCredentials

    @classmethod
    def for_collab(cls, collab: VigilCollabConfig,
                   credentials: VigilCredentials | None = None,
                   ) -> "VigilSignalExchangeAPI":
        creds = credentials or VigilCredentials.get(cls)
        token = creds.token_for(collab.origin)
        if token is None:
            raise auth.SignalExchangeAPIInvalidAuthException(
                cls, f"no Vigil token for origin {collab.origin} (collaboration "
                     f"{collab.name}); add {collab.origin}=TOKEN to "
                     f"{VigilCredentials.ENV_VARIABLE} or {VigilCredentials.FILE_NAME}")
        return cls(collab, token)

    def fetch_iter(
        self,
        supported_signal_types: t.Sequence[type[SignalType]],
        checkpoint: VigilCheckpoint | None,
    ) -> t.Iterator[state.FetchDelta[Key, VigilSignalMetadata, VigilCheckpoint]]:
        """Verified pages after ``checkpoint``, one delta each; a refused page raises
        FeedError naming the record after the part that verified was yielded."""
        c = self.collab
        progress = checkpoint.progress if checkpoint is not None else 0
        with FeedReader(c.base_url, c.bank, c.origin, c.origin_key, self._token,
                        page_size=c.page_size) as reader:
            pages = reader.pages(None if checkpoint is None else checkpoint.position())
            while True:
                try:
                    page = next(pages)
                except StopIteration:
                    return
                except FeedError as exc:
                    # critical: pytx's CLI shows only critical records by default, and a
                    # refused feed (maybe altered in transit) must reach its operator
                    log.critical("collaboration %s: %s", c.name, exc)
                    raise
                if page.restarted:
                    log.warning("feed %s/%s: its descriptor changed; fetching it again from "
                                "the start", c.origin, c.bank)
                progress = max(progress, page.last_at or 0)
                p = page.position
                yield state.FetchDelta(
                    updates_of(page.entries, page.bodies, c.origin),
                    VigilCheckpoint(p.seq, p.tip, p.descriptor, progress))

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[type[SignalType]],
        collab: VigilCollabConfig,
        fetched: t.Mapping[Key, VigilSignalMetadata],
    ) -> dict[type[SignalType], dict[str, VigilSignalMetadata]]:
        by_name = {st.get_name(): st for st in signal_types}
        out: dict[type[SignalType], dict[str, VigilSignalMetadata]] = {}
        for (vigil_type, _), meta in fetched.items():
            st = by_name.get(PYTX_TYPES.get(vigil_type, ""))
            if st is None or meta is None:
                continue
            out.setdefault(st, {})[meta.signal] = meta
        return out


__all__ = ["API_NAME", "PYTX_TYPES", "VigilCheckpoint", "VigilCollabConfig",
           "VigilCredentials", "VigilSignalExchangeAPI", "VigilSignalMetadata", "updates_of"]

"""Request and response models of the /v1 API (pydantic v2): the OpenAPI spec comes from here.

Validation errors name the field (``body.signals.3.value``) and never echo a hash value.
Distances are integers; bank hash values are never in any response but an export.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from vigil.entry import VICTIM_STATUSES, check_signal
from vigil.matching import DEFAULT_MIN_QUALITY, DEFAULT_THRESHOLD
from vigil.node import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, ROLES
from vigil.schemes import parse_category
from vigil.signals import DIHEDRAL_NAMES

MAX_SIGNALS = 10_000


def _utc(d: datetime) -> datetime:
    """SQLite gives back naive UTC datetimes: say they are UTC (RFC 3339 needs an offset)."""
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d


Timestamp = Annotated[datetime, AfterValidator(_utc)]
Id = Annotated[int, Field(ge=1, le=2**62)]
SignalType = Annotated[str, Field(min_length=1, max_length=64,
                                  pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                  examples=["pdq", "md5", "sha1", "sha256"])]
Role = Literal["admin", "curator", "analyst", "matcher", "auditor", "peer"]
VictimStatus = Literal["unknown", "unidentified", "identified"]
Variant = Literal[tuple(DIHEDRAL_NAMES[1:])]  # type: ignore[valid-type]
BankName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^/\\\n\t]+$")]
assert tuple(ROLES) == Role.__args__ and tuple(VICTIM_STATUSES) == VictimStatus.__args__  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignalRef(Strict):
    """One signal: its type and its value (hex for pdq, md5, sha1, sha256)."""

    type: SignalType
    value: str = Field(min_length=1, max_length=1024)

    @field_validator("value")
    @classmethod
    def _valid(cls, v: str, info) -> str:  # type: ignore[no-untyped-def]
        t = info.data.get("type")
        if t is None:
            return v
        return check_signal(t, v)[1]

    @field_validator("type")
    @classmethod
    def _lower(cls, t: str) -> str:
        return t.lower()


class SignalIn(SignalRef):
    """A signal to match; a PDQ may carry its quality and its dihedral variants."""

    quality: int | None = Field(None, ge=0, le=100)
    variants: dict[Variant, str] | None = Field(  # type: ignore[valid-type]
        None, description="PDQ only: rotated/mirrored variants to search too (hex)")

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: dict[str, str] | None, info) -> dict[str, str] | None:  # type: ignore[no-untyped-def]
        if v is None:
            return v
        if info.data.get("type") != "pdq":
            raise ValueError("variants are for pdq signals only")
        return {k: check_signal("pdq", h)[1] for k, h in v.items()}


class MatchRequest(Strict):
    signals: list[SignalIn] = Field(min_length=1, max_length=MAX_SIGNALS)
    threshold: int = Field(DEFAULT_THRESHOLD, ge=0, le=64,
                           description="PDQ match threshold in bits")
    min_quality: int = Field(DEFAULT_MIN_QUALITY, ge=0, le=100)
    banks: list[BankName] | None = Field(None, max_length=1000,
                                         description="only these banks (default: all yours)")


class Category(BaseModel):
    scheme: str
    value: str


class MatchOut(BaseModel):
    """A lead. Matchers see bank, category, distance and how it matched; others see labels."""

    bank: str
    distance: int
    signal_type: str
    signals: list[str]
    variant: str
    category: Category | None = None
    entry_id: int | None = None
    agency: str | None = None
    series: str | None = None
    victim_status: str | None = None
    tags: list[str] | None = None
    note: str | None = None


class SignalResult(BaseModel):
    index: int
    matches: list[MatchOut]
    skipped: list[str] = []
    #: true when agencies' banks label this signal differently (e.g. a category shared by
    #: one peer and another by this agency): every label is kept, with its provenance
    disagreement: bool | None = None


class MatchResponse(BaseModel):
    signals: int
    matched: int
    results: list[SignalResult]


class ImageOut(BaseModel):
    format: str
    width: int
    height: int
    mode: str
    animated: bool
    exif_orientation: int | None = None


class HashResponse(BaseModel):
    size: int
    md5: str
    sha1: str
    sha256: str
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_dihedral: dict[str, str] | None = None
    image: ImageOut | None = None
    error: dict[str, str] | None = None


class FileMatchResponse(BaseModel):
    signals: HashResponse
    matches: list[MatchOut]
    skipped: list[str] = []
    disagreement: bool | None = None


# ---- banks -------------------------------------------------------------------------------

class BankCreate(Strict):
    name: BankName
    description: str = Field("", max_length=2000)
    default_scheme: Literal["us", "uk", "ncmec", "interpol"] | None = None


class BankOut(BaseModel):
    name: str
    agency: str
    description: str
    default_scheme: str | None
    entries: int
    last_seq: int
    created_at: Timestamp
    updated_at: Timestamp
    #: for a read-only mirror of a peer's bank: ``ORIGIN/bank``
    mirror_of: str | None = None


class BankStatsOut(BankOut):
    by_signal_type: dict[str, int]
    by_category: dict[str, int]
    by_victim_status: dict[str, int]
    series: int
    removed: int


class LabelsIn(Strict):
    category: str | None = Field(None, max_length=40, examples=["us:1", "uk:A", "ncmec:A1"])
    series: str | None = Field(None, max_length=200)
    victim_status: VictimStatus | None = None
    tags: list[Annotated[str, Field(max_length=100)]] | None = Field(None, max_length=100)
    note: str | None = Field(None, max_length=4000)

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        if v is None:
            return v
        s, c = parse_category(v)
        return f"{s}:{c}"


class EntryIn(SignalRef, LabelsIn):
    quality: int | None = Field(None, ge=0, le=100)
    source_id: str | None = Field(None, max_length=200)


class EntriesAdd(Strict):
    entries: list[EntryIn] = Field(min_length=1, max_length=MAX_SIGNALS)


class EntriesRemove(Strict):
    signals: list[SignalRef] = Field(min_length=1, max_length=MAX_SIGNALS)


class Relabel(Strict):
    """Select entries by signals or by series, and set the labels given (others kept)."""

    signals: list[SignalRef] | None = Field(None, min_length=1, max_length=MAX_SIGNALS)
    of_series: str | None = Field(None, min_length=1, max_length=200)
    set: LabelsIn


class ChangeResult(BaseModel):
    bank: str
    added: int
    updated: int
    unchanged: int
    removed: int
    not_found: int
    last_seq: int
    skipped: list[str] = []


# ---- principals, tokens, audit -------------------------------------------------------------

class UserCreate(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
    kind: Literal["user", "service"] = "user"
    roles: list[Role] = Field(min_length=1, max_length=6)


class UserOut(BaseModel):
    id: int
    agency: str
    name: str
    kind: str
    roles: list[str]
    disabled: bool
    created_at: Timestamp


class TokenCreate(Strict):
    user_id: int = Field(ge=1, le=2**62)
    days: int = Field(DEFAULT_TOKEN_DAYS, ge=1, le=MAX_TOKEN_DAYS)
    description: str = Field("", max_length=200)


class TokenOut(BaseModel):
    id: int
    user_id: int
    user: str
    description: str
    created_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once: only its hash is stored")


class Me(BaseModel):
    agency: str
    name: str
    kind: str
    roles: list[str]
    node_agency: str


class AuditOut(BaseModel):
    id: int
    at: Timestamp
    agency: str | None
    actor: str | None
    action: str
    outcome: str
    target: str | None
    remote: str | None
    detail: dict[str, object]
    hash: str


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checkpoint: int
    head: int
    lag_changes: int
    lag_seconds: float
    sizes: dict[str, int]
    error: str | None = None

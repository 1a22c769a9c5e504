"""Request and response models of the /v1 API (pydantic v2): the OpenAPI spec comes from here.

Validation errors name the field (``body.signals.3.value``) and never echo a hash value.
Distances are integers; bank hash values are never in any response but an export.

Request models are strict: a number is a JSON number (not ``"31"``, not ``true``), a flag
a JSON boolean, and a hash value is exactly the hash — hex in any case, but no space or
newline around it, which a bank would otherwise drop without a word. Lists of up to
10,000 items stop at their first invalid item (``fail_fast``): the error names it, and a
hostile batch cannot make the node build 10,000 error reports.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vigil.banks import text
from vigil.banks.entry import VICTIM_STATUSES, check_signal
from vigil.matching import DEFAULT_MIN_QUALITY, DEFAULT_THRESHOLD
from vigil.node import DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, ROLES
from vigil.schemes import parse_category
from vigil.signals import DIHEDRAL_NAMES
from vigil.signals.crops import QUERY_WINDOWS
from vigil.signals.options import VariantOption

MAX_SIGNALS = 10_000


def _utc(d: datetime) -> datetime:
    """SQLite gives back naive UTC datetimes: say they are UTC (RFC 3339 needs an offset)."""
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d


Timestamp = Annotated[datetime, AfterValidator(_utc)]
Id = Annotated[int, Field(ge=1, le=2**62)]
SignalType = Annotated[str, Field(min_length=1, max_length=64,
                                  pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                  examples=["pdq", "md5", "sha1", "sha256"])]
Role = Literal["admin", "curator", "analyst", "matcher", "auditor", "peer", "victim-id"]
VictimStatus = Literal["unknown", "unidentified", "identified"]
Variant = Literal["rotate90", "rotate180", "rotate270", "flip-x", "flip-y", "flip-plus1",
                  "flip-minus1"]
#: the query-side derived codes a caller may send (``vigil.signals.crops``)
DerivedName = Literal["trimmed", "no-top-0.1", "no-bottom-0.1", "no-top-0.2",
                      "no-bottom-0.2"]
BankName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^/\\\n\t]+$")]
assert tuple(ROLES) == get_args(Role) and tuple(VICTIM_STATUSES) == get_args(VictimStatus)
assert tuple(DIHEDRAL_NAMES[1:]) == get_args(Variant)
assert {"trimmed", *(w.name for w in QUERY_WINDOWS)} == set(get_args(DerivedName))


def exact_signal(signal_type: str, value: str) -> str:
    """The normalised value of a signal given at the API edge (``check_signal``, whose
    readers of files forgive surrounding whitespace, minus that forgiveness): a value
    with a space or newline around it is refused, not silently trimmed."""
    if value != value.strip():
        raise ValueError("must not begin or end with whitespace or a newline")
    return check_signal(signal_type, value)[1]


def door(check: Callable[[str, str], str], name: str) -> AfterValidator:
    """A validator running one of ``vigil.banks.text``'s checks (the rules the domain
    applies; here so that a refused value is a 422 naming its field, never a 500)."""
    def run(v: str | None) -> str | None:
        if v is None or not v.strip():
            return v  # none, or empty: the domain treats empty labels as none
        try:
            return check(v, name)
        except text.FieldError as exc:
            raise ValueError(exc.reason) from None
    return AfterValidator(run)


def _label(max_len: int) -> Callable[[str, str], str]:
    return lambda v, name: text.label(v, name, max_len)


NewBankName = Annotated[str, Field(min_length=1, max_length=text.BANK_NAME_MAX,
                                   description="letters, marks and digits of any script, "
                                   ". _ - ( ) and single spaces; starts with a letter or "
                                   "digit"), door(text.bank_name, "name")]
Series = Annotated[str, Field(max_length=text.SERIES_MAX), door(_label(text.SERIES_MAX),
                                                                "series")]
Tag = Annotated[str, Field(max_length=text.TAG_MAX), door(text.tag, "tags")]
Note = Annotated[str, Field(max_length=text.NOTE_MAX), door(text.free_text, "note")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SignalRef(Strict):
    """One signal: its type and its value (hex for pdq, md5, sha1, sha256)."""

    type: SignalType
    value: str = Field(min_length=1, max_length=1024)

    @field_validator("value")
    @classmethod
    def _valid(cls, v: str, info: ValidationInfo) -> str:
        t = info.data.get("type")
        if t is None:
            return v
        return exact_signal(t, v)

    @field_validator("type")
    @classmethod
    def _lower(cls, t: str) -> str:
        return t.lower()


class SignalIn(SignalRef):
    """A signal to match; a PDQ may carry its quality and its dihedral variants."""

    quality: int | None = Field(None, ge=0, le=100)
    variants: dict[Variant, str] | None = Field(
        None, description="PDQ only: rotated/mirrored variants to search too (hex)")
    derived: dict[DerivedName, str] | None = Field(
        None, description="PDQ only: derived codes of the same picture to search with "
        "the request's `variants` option: `trimmed` (inside its borders), `no-top-F` / "
        "`no-bottom-F` (without a band); taken at the signal's quality")

    @field_validator("derived")
    @classmethod
    def _derived(cls, v: dict[str, str] | None, info: ValidationInfo,
                 ) -> dict[str, str] | None:
        if v is None:
            return v
        if info.data.get("type") != "pdq":
            raise ValueError("derived codes are for pdq signals only")
        return {k: exact_signal("pdq", h) for k, h in v.items()}

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: dict[str, str] | None, info: ValidationInfo,
                  ) -> dict[str, str] | None:
        if v is None:
            return v
        if info.data.get("type") != "pdq":
            raise ValueError("variants are for pdq signals only")
        return {k: exact_signal("pdq", h) for k, h in v.items()}


class MatchRequest(Strict):
    signals: list[SignalIn] = Field(min_length=1, max_length=MAX_SIGNALS, fail_fast=True)
    threshold: int = Field(DEFAULT_THRESHOLD, ge=0, le=64,
                           description="PDQ match threshold in bits")
    min_quality: int = Field(DEFAULT_MIN_QUALITY, ge=0, le=100)
    banks: list[BankName] | None = Field(None, max_length=1000,
                                         description="only these banks (default: all yours)")
    variants: VariantOption = Field(
        "off", description="also match edited copies: borders (signals' `trimmed` codes, "
        "and banked pictures' trimmed content), crops (banks' crop ladders and the "
        "signals' band-less codes), all, features (as all here: the second stage needs the "
        "picture's local features, which only POST /v1/match/file computes), or off")


class Category(BaseModel):
    scheme: str
    value: str


class VideoDetail(BaseModel):
    """How much of two videos matched (vPDQ): percentages, frame counts, time ranges (s)."""

    query_pct: float
    compared_pct: float
    query_frames: str
    compared_frames: str
    query_ranges: list[list[float]]
    compared_ranges: list[list[float]]


class MatchOut(BaseModel):
    """A lead. Matchers see bank, category, distance and how it matched; others see labels."""

    bank: str
    distance: int
    signal_type: str
    signals: list[str]
    variant: str
    #: a second-stage lead (variant ``features``): keypoints that agree on one transform
    inliers: int | None = None
    category: Category | None = None
    entry_id: int | None = None
    agency: str | None = None
    series: str | None = None
    victim_status: str | None = None
    tags: list[str] | None = None
    note: str | None = None
    #: a video match: both percentages and the matched time ranges in both videos
    video: VideoDetail | None = None
    #: what the series registry says of the entry's series (``vigil.victimid``): status,
    #: who identified it and whom to contact, who holds the claim
    series_status: dict[str, Any] | None = None


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
    #: a video's vPDQ: the digest of its frame list, and how many frames were hashed
    vpdq: str | None = None
    vpdq_frames: int | None = None
    error: dict[str, str] | None = None


class FileMatchResponse(BaseModel):
    signals: HashResponse
    matches: list[MatchOut]
    skipped: list[str] = []
    disagreement: bool | None = None


# ---- banks -------------------------------------------------------------------------------

class BankCreate(Strict):
    name: NewBankName
    description: Annotated[str, Field(max_length=2000), door(
        lambda v, n: text.free_text(v, n, 2000), "description")] = ""
    default_scheme: Literal["us", "uk", "ncmec", "interpol"] | None = None
    crop_ladder: bool = Field(False, description="keep derived PDQ codes of each picture "
                              "uploaded to the bank, so cropped, framed and captioned "
                              "copies match (about 40 codes per picture)")


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
    series: Series | None = None
    victim_status: VictimStatus | None = None
    tags: list[Tag] | None = Field(None, max_length=100)
    note: Note | None = None

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        if v is None:
            return v
        s, c = parse_category(v)
        return f"{s}:{c}"


class EntryIn(SignalRef, LabelsIn):
    quality: int | None = Field(None, ge=0, le=100)
    source_id: Annotated[str, Field(max_length=text.SOURCE_ID_MAX),
                         door(_label(text.SOURCE_ID_MAX), "source_id")] | None = None


class EntriesAdd(Strict):
    entries: list[EntryIn] = Field(min_length=1, max_length=MAX_SIGNALS, fail_fast=True)


class EntriesRemove(Strict):
    signals: list[SignalRef] = Field(min_length=1, max_length=MAX_SIGNALS, fail_fast=True)


class Relabel(Strict):
    """Select entries by signals or by series, and set the labels given (others kept)."""

    signals: list[SignalRef] | None = Field(None, min_length=1, max_length=MAX_SIGNALS,
                                            fail_fast=True)
    of_series: Annotated[Series, Field(min_length=1)] | None = None
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
    name: Annotated[str, Field(min_length=1, max_length=text.PRINCIPAL_NAME_MAX,
                               description="letters, marks and digits of any script, "
                               ". _ - @; starts with a letter or digit"),
                    door(text.principal_name, "name")]
    kind: Literal["user", "service"] = "user"
    roles: list[Role] = Field(min_length=1, max_length=7)


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
    description: Annotated[str, Field(max_length=200), door(_label(200), "description")] = ""


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

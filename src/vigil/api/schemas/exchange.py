"""Request and response models of the federation endpoints (feeds, sharing, opinions)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from vigil.api.schemas.models import SignalRef, Strict, Timestamp

Field_ = Literal["category", "series", "victim_status", "tags", "note"]
AgencyCode = Annotated[str, Field(min_length=1, max_length=64,
                                  pattern=r"^[A-Z0-9][A-Z0-9_-]*$")]


class NodeOut(BaseModel):
    """Who this node is: what a peer checks against the key it was given out of band."""

    agency: str
    name: str
    jurisdiction: str
    public_key: str = Field(description="Ed25519 public key (hex) that signs this node's feeds")


class DescriptorOut(BaseModel):
    origin: str = Field(description="the agency whose bank this is and whose key signs it")
    bank: str = Field(description="the bank's name at its origin")
    fields: list[str] = Field(description="label fields the records carry")
    reshare: bool = Field(description="whether the receiver may pass the feed on")


class FeedOut(BaseModel):
    bank: str = Field(description="the bank's name on this node (the path of its feed)")
    descriptor: DescriptorOut
    head: int = Field(description="sequence number of the feed's latest record")
    crop_ladder: bool = Field(False, description="the bank keeps derived PDQ codes of its "
                              "pictures (a crop ladder), which its records carry: a mirror "
                              "indexes them too")


class FeedList(BaseModel):
    feeds: list[FeedOut]


class FeedPage(BaseModel):
    """A page of a feed. Each record is ``[body, hash, signature-or-null]``: ``body`` is the
    exact canonical JSON text that was hashed (SHA-256, hex); it carries ``seq``, ``prev``
    (the hash of the record before), ``op`` (add/update/remove), ``type``, ``value``,
    ``quality``, ``labels`` (only the fields shared) and ``at``. Signatures are the origin's
    Ed25519 signatures of checkpoints; the last record of a page always has one."""

    feed: DescriptorOut
    head: int
    records: list[tuple[str, str, str | None]]


class ShareIn(Strict):
    fields: list[Field_] | None = Field(
        None, max_length=5, description="label fields to share; default: category only")
    reshare: bool = Field(False, description="whether the peer may pass the bank on")


class ShareOut(BaseModel):
    bank: str
    agency: str
    fields: list[str]
    reshare: bool
    created_at: Timestamp
    created_by: str | None


class OpinionIn(Strict):
    signals: list[SignalRef] = Field(min_length=1, max_length=1000, fail_fast=True)
    opinion: Literal["agree", "dispute"]
    reason: str = Field("", max_length=4000)


class OpinionOut(BaseModel):
    id: int
    bank: str
    agency: str
    signal_type: str
    value: str
    opinion: str
    reason: str
    by: str | None
    at: Timestamp
    origin: str | None = None
    origin_bank: str | None = None


class OpinionList(BaseModel):
    opinions: list[OpinionOut]


class AuditHead(Strict):
    """A node's audit head — its last record's id and MAC, and when — signed with its
    Ed25519 node key: peers keep these as witnesses (``GET /v1/audit/head``) and hand them
    back (``POST /v1/audit/witnessed``), so the node can detect a rewound audit log."""

    agency: AgencyCode
    id: int = Field(ge=0, le=2**62, description="the last audit record's id (0: none yet)")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="that record's MAC (hex)")
    at: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$",
                    description="when the head was signed (UTC)")
    sig: str = Field(pattern=r"^[0-9a-f]{128}$",
                     description="Ed25519 signature of \"vigil-audit-head\\0\" + canonical "
                                 "JSON of {agency, id, hash, at}")


class AuditHeadList(BaseModel):
    heads: list[AuditHead]

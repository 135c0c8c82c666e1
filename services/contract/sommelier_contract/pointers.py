"""The model bucket's pointers: which version is the champion (and every champion before it, since the bucket is
versioned), which is on trial as a candidate, and which one a rollback restores. Writing a pointer is the last step
of any change, so a crash before it leaves the champion as it was."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from types import EllipsisType
from typing import Any

from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected, DocumentUnreadable, parse_document, read_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """champion.json: the version the API serves, when and why it was pointed at, and the champion before it (what a
    rollback restores). Read from any format written so far: a field an older pointer lacks is None."""

    version: str
    promoted_at: str | None = None
    reason: str | None = None
    previous: str | None = None
    manifest_key: str | None = None

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> Champion:
        return cls(version=str(doc["version"]), promoted_at=doc.get("promoted_at"), reason=doc.get("reason"),
                   previous=doc.get("previous"), manifest_key=doc.get("manifest_key"))

    def doc(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """candidate.json: the version on trial beside the champion, for `percent` % of predictions since `since`."""

    version: str
    percent: float = 0.0
    since: str | None = None
    reason: str | None = None
    champion: str | None = None

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> Candidate:
        try:
            percent = min(max(float(doc.get("percent", 0)), 0.0), 100.0)
        except (TypeError, ValueError):
            percent = 0.0  # a share that is not a number puts no prediction on trial
        return cls(version=str(doc["version"]), percent=percent, since=doc.get("since"), reason=doc.get("reason"),
                   champion=doc.get("champion"))

    def doc(self) -> dict[str, Any]:
        return asdict(self)


def put_json(s3, bucket: str, key: str, doc: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=2, sort_keys=True).encode(), ContentType="application/json")


def read_champion(s3, bucket: str) -> Champion | None:
    """The champion pointer (None before the first promotion). When its newest write is not a pointer (not JSON, no
    version: a bad write), the newest earlier write that is one, said in the log: the trainer, the monitor and the
    CLI carry on with the champion the predictor falls back to, and the next promotion writes a good pointer again."""
    try:
        doc = read_json(s3, bucket, layout.CHAMPION_KEY, required=("version",))
    except DocumentUnreadable as err:
        earlier = next(champion_history(s3, bucket), None)
        log.warning("%s; using the newest earlier champion pointer (%s)", err, earlier.version if earlier else "none")
        if earlier is None:
            raise
        return earlier
    return Champion.parse(doc) if doc is not None else None


def read_candidate(s3, bucket: str) -> Candidate | None:
    doc = read_json(s3, bucket, layout.CANDIDATE_KEY, required=("version",))
    return Candidate.parse(doc) if doc is not None else None


def champion_history(s3, bucket: str) -> Iterator[Champion]:
    """Every champion pointer ever written, newest first (the bucket is versioned); each is read only when reached, and
    a version that is not a pointer (a bad write) names no champion and is passed over."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=layout.CHAMPION_KEY)
    listed = sorted((v for page in pages for v in page.get("Versions", []) if v["Key"] == layout.CHAMPION_KEY),
                    key=lambda v: v["LastModified"], reverse=True)
    for v in listed:
        body = s3.get_object(Bucket=bucket, Key=layout.CHAMPION_KEY, VersionId=v["VersionId"])["Body"].read()
        try:
            yield Champion.parse(parse_document(body, f"{layout.CHAMPION_KEY} version {v['VersionId']}", required=("version",)))
        except DocumentUnreadable:
            continue


def promote(s3, bucket: str, version: str, reason: str, promoted_at: str, previous: str | None | EllipsisType = ...) -> Champion:
    """Point the champion at `version`. `previous` defaults to the current champion (a rollback passes its own)."""
    if previous is ...:
        current = read_champion(s3, bucket)
        previous = current.version if current else None
    pointer = Champion(version=version, manifest_key=layout.manifest_key(version), promoted_at=promoted_at, reason=reason,
                       previous=previous)
    put_json(s3, bucket, layout.CHAMPION_KEY, pointer.doc())  # the bucket is versioned: every pointer is kept
    return pointer


def propose(s3, bucket: str, version: str, percent: float, reason: str, since: str, champion: str | None) -> Candidate:
    """Put `version` on trial beside the champion: the predictor serves it to `percent` % of predictions."""
    pointer = Candidate(version=version, percent=percent, since=since, reason=reason, champion=champion)
    put_json(s3, bucket, layout.CANDIDATE_KEY, pointer.doc())
    return pointer


def withdraw(s3, bucket: str) -> None:
    s3.delete_object(Bucket=bucket, Key=layout.CANDIDATE_KEY)


def rollback_target(s3, bucket: str) -> Champion:
    """The pointer to restore: the champion before the current one, skipping what was rolled back."""
    current = read_champion(s3, bucket)
    if current is None:
        raise ArtifactRejected("no model is promoted, so there is nothing to roll back")
    if not current.previous:
        raise ArtifactRejected(f"{current.version} is the first champion; there is nothing before it")
    for pointer in champion_history(s3, bucket):
        if pointer.version == current.previous:
            return pointer
    raise ArtifactRejected(f"the champion history has no pointer for {current.previous}")

"""The model bucket's pointers: which version is the champion (and every champion before it, since the bucket is
versioned), which is on trial as a candidate, and which one a rollback restores. Writing a pointer is the last step
of any change, so a crash before it leaves the champion as it was."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import EllipsisType
from typing import Any

from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected, DocumentUnreadable, parse_document, read_json

log = logging.getLogger(__name__)


def put_json(s3, bucket: str, key: str, doc: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=2, sort_keys=True).encode(), ContentType="application/json")


def read_champion(s3, bucket: str) -> dict[str, Any] | None:
    """The champion pointer (None before the first promotion). When its newest write is not a pointer (not JSON, no
    version: a bad write), the newest earlier write that is one, said in the log: the trainer, the monitor and the
    CLI carry on with the champion the predictor falls back to, and the next promotion writes a good pointer again."""
    try:
        return read_json(s3, bucket, layout.CHAMPION_KEY, required=("version",))
    except DocumentUnreadable as err:
        earlier = next(champion_history(s3, bucket), None)
        log.warning("%s; using the newest earlier champion pointer (%s)", err, earlier["version"] if earlier else "none")
        if earlier is None:
            raise
        return earlier


def read_candidate(s3, bucket: str) -> dict[str, Any] | None:
    return read_json(s3, bucket, layout.CANDIDATE_KEY, required=("version",))


def champion_history(s3, bucket: str) -> Iterator[dict[str, Any]]:
    """Every champion pointer ever written, newest first (the bucket is versioned); each is read only when reached, and
    a version that is not a pointer (a bad write) names no champion and is passed over."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=layout.CHAMPION_KEY)
    listed = sorted((v for page in pages for v in page.get("Versions", []) if v["Key"] == layout.CHAMPION_KEY),
                    key=lambda v: v["LastModified"], reverse=True)
    for v in listed:
        body = s3.get_object(Bucket=bucket, Key=layout.CHAMPION_KEY, VersionId=v["VersionId"])["Body"].read()
        try:
            yield parse_document(body, f"{layout.CHAMPION_KEY} version {v['VersionId']}", required=("version",))
        except DocumentUnreadable:
            continue


def promote(s3, bucket: str, version: str, reason: str, promoted_at: str, previous: str | None | EllipsisType = ...) -> dict[str, Any]:
    """Point the champion at `version`. `previous` defaults to the current champion (a rollback passes its own)."""
    if previous is ...:
        current = read_champion(s3, bucket)
        previous = current["version"] if current else None
    pointer = {"version": version, "manifest_key": layout.manifest_key(version), "promoted_at": promoted_at, "reason": reason,
               "previous": previous}
    put_json(s3, bucket, layout.CHAMPION_KEY, pointer)  # the bucket is versioned: every pointer is kept
    return pointer


def propose(s3, bucket: str, version: str, percent: float, reason: str, since: str, champion: str | None) -> dict[str, Any]:
    """Put `version` on trial beside the champion: the predictor serves it to `percent` % of predictions."""
    pointer = {"version": version, "percent": percent, "since": since, "reason": reason, "champion": champion}
    put_json(s3, bucket, layout.CANDIDATE_KEY, pointer)
    return pointer


def withdraw(s3, bucket: str) -> None:
    s3.delete_object(Bucket=bucket, Key=layout.CANDIDATE_KEY)


def rollback_target(s3, bucket: str) -> dict[str, Any]:
    """The pointer to restore: the champion before the current one, skipping what was rolled back."""
    current = read_champion(s3, bucket)
    if current is None:
        raise ArtifactRejected("no model is promoted, so there is nothing to roll back")
    if not current.get("previous"):
        raise ArtifactRejected(f"{current['version']} is the first champion; there is nothing before it")
    for pointer in champion_history(s3, bucket):
        if pointer["version"] == current["previous"]:
            return pointer
    raise ArtifactRejected(f"the champion history has no pointer for {current['previous']}")

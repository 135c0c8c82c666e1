"""Writing a version's artifacts, recording a person's promotion or a canary's decision in its manifest, and the
list of versions `make history` shows. Artifacts are written before the manifest, and the manifest before any
pointer (sommelier_contract.pointers), so a crash leaves at worst an unreferenced folder.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import joblib
from botocore.exceptions import ClientError

from sommelier_contract import layout, pointers
from sommelier_contract.artifacts import ArtifactRejected, Signatures, put_manifest, read_manifest
from sommelier_contract.manifest import Artifact, Promotion


def signatures(settings) -> Signatures:
    """The trainer signs with its KMS key (only its role may); the same object verifies."""
    import boto3

    return Signatures(boto3.client("kms"), settings.model_signing_key)


def dump(obj: Any) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=3)
    return buf.getvalue()


def put_artifact(s3, bucket: str, key: str, body: bytes) -> Artifact:
    digest = hashlib.sha256(body).hexdigest()
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": digest})
    return Artifact(key=key, sha256=digest, bytes=len(body), version_id=resp.get("VersionId"))


def promote_by_hand(s3, bucket: str, version: str, by: str, why: str, at: str, signed: Signatures) -> pointers.Champion:
    """A person's promotion: who, when and why go into the version's manifest (signed again), then the pointer moves.
    A record counts only once a pointer with the same time exists (`versions`), so a crash between the two claims nothing."""
    manifest = read_manifest(s3, bucket, version)
    put_manifest(s3, bucket, manifest.with_promotion(Promotion(at=at, by=by, why=why, gate_passed=manifest.gate.passed)), signed)
    return pointers.promote(s3, bucket, version, f"promoted by hand by {by}: {why}", at)


def record_canary(s3, bucket: str, version: str, decision: dict[str, Any], signed: Signatures) -> None:
    """Add the canary's decision to the version's manifest, signed again (the bucket keeps the manifest as it was, too)."""
    put_manifest(s3, bucket, read_manifest(s3, bucket, version).with_canary(decision), signed)


def versions(s3, bucket: str) -> list[dict[str, Any]]:
    """Every model version, promoted or not, newest first: what its manifest says, and whether it is
    (or ever was) the champion."""
    history = list(pointers.champion_history(s3, bucket))
    current = history[0].version if history else None
    last_promoted: dict[str, str | None] = {}
    pointed_at: dict[str, set[str]] = {}
    for p in reversed(history):  # oldest first, so the newest promotion wins
        last_promoted[p.version] = p.promoted_at
        if p.promoted_at:
            pointed_at.setdefault(p.version, set()).add(p.promoted_at)
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.MODELS, Delimiter="/"):
        names += [layout.version_of(cp["Prefix"]) for cp in page.get("CommonPrefixes", [])]
    rows = []
    for version in names:
        try:
            manifest = read_manifest(s3, bucket, version)
        except (ArtifactRejected, ClientError):
            rows.append({"version": version, "trained_at": None, "note": "no manifest (an interrupted run)", "champion": False})
            continue
        rows.append({**manifest.history_row(pointed_at.get(version, set())), "champion": version == current,
                     "last_promoted_at": last_promoted.get(version)})
    return sorted(rows, key=lambda r: (r["trained_at"] or "", r["version"]), reverse=True)

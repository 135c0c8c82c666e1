"""Writing versioned model artifacts and moving the pointers (champion, candidate); the layout
and the verified reading are the shared contract's (sommelier_contract). Artifacts are written
before the manifest, and the manifest before any pointer, so a crash leaves at worst an
unreferenced folder.
"""

from __future__ import annotations

import hashlib
import io
import json
from types import EllipsisType
from typing import Any

import joblib
from botocore.exceptions import ClientError

from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected, Signatures, champion_pointers, contract_change, load_verified, put_manifest, read_json, read_manifest
from sommelier_contract.layout import CANDIDATE_KEY, CHAMPION_KEY, manifest_key

__all__ = ["ArtifactRejected", "Signatures", "contract_change", "load_verified", "put_manifest", "read_json", "read_manifest"]


def signatures(settings) -> Signatures:
    """The trainer signs with its KMS key (only its role may); the same object verifies."""
    import boto3

    return Signatures(boto3.client("kms"), settings.model_signing_key)


def dump(obj: Any) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf, compress=3)
    return buf.getvalue()


def put_artifact(s3, bucket: str, key: str, body: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(body).hexdigest()
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": digest})
    return {"key": key, "sha256": digest, "bytes": len(body), "version_id": resp.get("VersionId")}


def put_json(s3, bucket: str, key: str, doc: dict[str, Any]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=2, sort_keys=True).encode(), ContentType="application/json")


def read_champion(s3, bucket: str) -> dict[str, Any] | None:
    return read_json(s3, bucket, CHAMPION_KEY)


def promote(s3, bucket: str, version: str, reason: str, promoted_at: str, previous: str | None | EllipsisType = ...) -> dict[str, Any]:
    """Point the champion at `version`. `previous` defaults to the current champion (a rollback passes its own)."""
    if previous is ...:
        current = read_champion(s3, bucket)
        previous = current["version"] if current else None
    pointer = {
        "version": version,
        "manifest_key": manifest_key(version),
        "promoted_at": promoted_at,
        "reason": reason,
        "previous": previous,
    }
    put_json(s3, bucket, CHAMPION_KEY, pointer)  # the bucket is versioned: every pointer is kept
    return pointer


def promote_by_hand(s3, bucket: str, version: str, by: str, why: str, at: str, signed: Signatures) -> dict[str, Any]:
    """A person's promotion: who, when and why go into the version's manifest (signed again), then the pointer moves.
    A record counts only once a pointer with the same time exists (`versions`), so a crash between the two claims nothing."""
    manifest = read_manifest(s3, bucket, version)
    record = {"at": at, "by": by, "why": why, "gate_passed": (manifest.get("gate") or {}).get("passed")}
    manifest["promotions"] = [*manifest.get("promotions", []), record]
    put_manifest(s3, bucket, manifest, signed)
    return promote(s3, bucket, version, f"promoted by hand by {by}: {why}", at)


def read_candidate(s3, bucket: str) -> dict[str, Any] | None:
    return read_json(s3, bucket, CANDIDATE_KEY)


def propose(s3, bucket: str, version: str, percent: float, reason: str, since: str, champion: str | None) -> dict[str, Any]:
    """Put `version` on trial beside the champion: the predictor serves it to `percent` % of predictions."""
    pointer = {"version": version, "percent": percent, "since": since, "reason": reason, "champion": champion}
    put_json(s3, bucket, CANDIDATE_KEY, pointer)
    return pointer


def withdraw(s3, bucket: str) -> None:
    s3.delete_object(Bucket=bucket, Key=CANDIDATE_KEY)


def record_canary(s3, bucket: str, version: str, decision: dict[str, Any], signed: Signatures) -> None:
    """Add the canary's decision to the version's manifest, signed again (the bucket keeps the manifest as it was, too)."""
    manifest = read_manifest(s3, bucket, version)
    manifest["canary"] = decision
    put_manifest(s3, bucket, manifest, signed)


def history(s3, bucket: str) -> list[dict[str, Any]]:
    """Every champion pointer ever written, newest first (the bucket is versioned)."""
    return list(champion_pointers(s3, bucket))


def versions(s3, bucket: str) -> list[dict[str, Any]]:
    """Every model version, promoted or not, newest first: what its manifest says, and whether it is
    (or ever was) the champion."""
    pointers = history(s3, bucket)
    current = pointers[0]["version"] if pointers else None
    last_promoted: dict[str, str] = {}
    pointed_at: dict[str, set[str]] = {}
    for p in reversed(pointers):  # oldest first, so the newest promotion wins
        last_promoted[p["version"]] = p.get("promoted_at")
        pointed_at.setdefault(p["version"], set()).add(p.get("promoted_at"))
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
        metrics = manifest.get("metrics", {})
        name = manifest.get("model", {}).get("name")
        holdout = metrics.get("holdout") or {}
        rows.append({
            "version": version,
            "trained_at": manifest.get("created_at"),
            "trigger": manifest.get("trigger"),
            "dataset": (manifest.get("dataset") or {}).get("name"),
            "model": name,
            "family": manifest.get("model", {}).get("family"),
            "cv_f1_macro": (metrics.get("cv") or {}).get(name, {}).get("f1_macro_mean"),
            "holdout_accuracy": holdout.get("accuracy"),
            "holdout_f1_macro": holdout.get("f1_macro"),
            "gate_passed": (manifest.get("gate") or {}).get("passed", (manifest.get("gate") or {}).get("promoted")),
            "gate_reason": (manifest.get("gate") or {}).get("reason"),
            "champion": version == current,
            "last_promoted_at": last_promoted.get(version),
            "promoted_by_hand": next((r for r in reversed(manifest.get("promotions", []))
                                      if r.get("at") in pointed_at.get(version, ())), None),
        })
    return sorted(rows, key=lambda r: (r["trained_at"] or "", r["version"]), reverse=True)


def rollback_target(s3, bucket: str) -> dict[str, Any]:
    """The pointer to restore: the champion before the current one, skipping what was rolled back."""
    current = read_champion(s3, bucket)
    if current is None:
        raise ArtifactRejected("no model is promoted, so there is nothing to roll back")
    if not current.get("previous"):
        raise ArtifactRejected(f"{current['version']} is the first champion; there is nothing before it")
    for pointer in history(s3, bucket):
        if pointer["version"] == current["previous"]:
            return pointer
    raise ArtifactRejected(f"the champion history has no pointer for {current['previous']}")

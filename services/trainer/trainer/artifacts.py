"""Versioned model artifacts in the model bucket and the champion pointer.

Layout: models/<version>/{pipeline.joblib, label_encoder.joblib, manifest.json}, and
champion.json naming the promoted version. Artifacts are written before the manifest,
and the manifest before any pointer, so a crash leaves at worst an unreferenced folder.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import joblib
from botocore.exceptions import ClientError

CHAMPION_KEY = "champion.json"
CANDIDATE_KEY = "candidate.json"  # a model on trial (the model canary); the predictor serves it to `percent` % of predictions


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


def read_json(s3, bucket: str, key: str) -> dict[str, Any] | None:
    """A small JSON object (a pointer, a split), or None when there is none yet."""
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        if err.response["Error"]["Code"] in {"NoSuchKey", "404"}:
            return None
        raise


def read_champion(s3, bucket: str) -> dict[str, Any] | None:
    return read_json(s3, bucket, CHAMPION_KEY)


def read_manifest(s3, bucket: str, version: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"models/{version}/manifest.json")["Body"].read())


def promote(s3, bucket: str, version: str, reason: str, promoted_at: str, previous: str | None = ...) -> dict[str, Any]:
    """Point the champion at `version`. `previous` defaults to the current champion (a rollback passes its own)."""
    if previous is ...:
        current = read_champion(s3, bucket)
        previous = current["version"] if current else None
    pointer = {
        "version": version,
        "manifest_key": f"models/{version}/manifest.json",
        "promoted_at": promoted_at,
        "reason": reason,
        "previous": previous,
    }
    put_json(s3, bucket, CHAMPION_KEY, pointer)  # the bucket is versioned: every pointer is kept
    return pointer


def read_candidate(s3, bucket: str) -> dict[str, Any] | None:
    return read_json(s3, bucket, CANDIDATE_KEY)


def propose(s3, bucket: str, version: str, percent: float, reason: str, since: str, champion: str | None) -> dict[str, Any]:
    """Put `version` on trial beside the champion: the predictor serves it to `percent` % of predictions."""
    pointer = {"version": version, "percent": percent, "since": since, "reason": reason, "champion": champion}
    put_json(s3, bucket, CANDIDATE_KEY, pointer)
    return pointer


def withdraw(s3, bucket: str) -> None:
    s3.delete_object(Bucket=bucket, Key=CANDIDATE_KEY)


def record_canary(s3, bucket: str, version: str, decision: dict[str, Any]) -> None:
    """Add the canary's decision to the version's manifest (the bucket keeps the manifest as it was, too)."""
    manifest = read_manifest(s3, bucket, version)
    manifest["canary"] = decision
    put_json(s3, bucket, f"models/{version}/manifest.json", manifest)


class ArtifactError(Exception):
    """A stored model cannot be used: missing, tampered with, or from another scikit-learn."""


def load_verified(s3, bucket: str, version: str) -> tuple[dict[str, Any], Any, Any]:
    """(manifest, pipeline, label encoder) of a version, unpickled only after the checks pass."""
    from importlib.metadata import version as installed_version

    try:
        manifest = read_manifest(s3, bucket, version)
    except ClientError as err:
        if err.response["Error"]["Code"] in {"NoSuchKey", "404"}:
            raise ArtifactError(f"there is no model version {version!r} (`make history` lists them)") from err
        raise
    ours, theirs = installed_version("scikit-learn"), manifest.get("libraries", {}).get("scikit-learn")
    if ours != theirs:
        raise ArtifactError(f"model {version} was trained with scikit-learn {theirs}; this trainer has {ours}")
    objects = []
    for name in ("pipeline", "label_encoder"):
        meta = manifest["artifacts"][name]
        args = {"Bucket": bucket, "Key": meta["key"], **({"VersionId": meta["version_id"]} if meta.get("version_id") else {})}
        body = s3.get_object(**args)["Body"].read()
        if hashlib.sha256(body).hexdigest() != meta["sha256"] or not meta["key"].startswith(f"models/{version}/"):
            raise ArtifactError(f"artifact {meta['key']} does not match its manifest; refusing to load it")
        objects.append(joblib.load(io.BytesIO(body)))
    return manifest, objects[0], objects[1]


def contract_change(before: dict[str, Any], features: list[dict[str, Any]], classes: list[str]) -> str | None:
    """How the API's input contract (feature names and types) and its answers (classes) would change
    if a model with `features` and `classes` replaced the one `before` describes; None when they would not."""
    old = {f["name"]: f["type"] for f in before.get("features", [])}
    new = {f["name"]: f["type"] for f in features}
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    parts = []
    if added:
        parts.append(f"new required features {added}")
    if removed:
        parts.append(f"features no longer accepted {removed}")
    retyped = sorted(n for n in set(old) & set(new) if old[n] != new[n])
    if retyped:
        parts.append("features changing type " + ", ".join(f"{n} ({old[n]} -> {new[n]})" for n in retyped))
    if sorted(before.get("classes", [])) != sorted(classes):
        parts.append(f"classes {sorted(before.get('classes', []))} -> {sorted(classes)}")
    return "; ".join(parts) or None


def history(s3, bucket: str) -> list[dict[str, Any]]:
    """Every champion pointer ever written, newest first (the bucket is versioned)."""
    pointers = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=CHAMPION_KEY):
        for v in page.get("Versions", []):
            if v["Key"] == CHAMPION_KEY:
                body = s3.get_object(Bucket=bucket, Key=CHAMPION_KEY, VersionId=v["VersionId"])["Body"].read()
                pointers.append((v["LastModified"], json.loads(body)))
    return [p for _, p in sorted(pointers, key=lambda t: t[0], reverse=True)]


def versions(s3, bucket: str) -> list[dict[str, Any]]:
    """Every model version, promoted or not, newest first: what its manifest says, and whether it is
    (or ever was) the champion."""
    pointers = history(s3, bucket)
    current = pointers[0]["version"] if pointers else None
    last_promoted: dict[str, str] = {}
    for p in reversed(pointers):  # oldest first, so the newest promotion wins
        last_promoted[p["version"]] = p.get("promoted_at")
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="models/", Delimiter="/"):
        names += [cp["Prefix"][len("models/"):].rstrip("/") for cp in page.get("CommonPrefixes", [])]
    rows = []
    for version in names:
        try:
            manifest = read_manifest(s3, bucket, version)
        except ClientError:
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
            "gate_passed": (manifest.get("gate") or {}).get("promoted"),
            "gate_reason": (manifest.get("gate") or {}).get("reason"),
            "champion": version == current,
            "last_promoted_at": last_promoted.get(version),
        })
    return sorted(rows, key=lambda r: (r["trained_at"] or "", r["version"]), reverse=True)


def rollback_target(s3, bucket: str) -> dict[str, Any]:
    """The pointer to restore: the champion before the current one, skipping what was rolled back."""
    current = read_champion(s3, bucket)
    if current is None:
        raise ArtifactError("no model is promoted, so there is nothing to roll back")
    if not current.get("previous"):
        raise ArtifactError(f"{current['version']} is the first champion; there is nothing before it")
    for pointer in history(s3, bucket):
        if pointer["version"] == current["previous"]:
            return pointer
    raise ArtifactError(f"the champion history has no pointer for {current['previous']}")

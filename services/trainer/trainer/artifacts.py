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
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=CHAMPION_KEY)["Body"].read())
    except ClientError as err:
        if err.response["Error"]["Code"] in {"NoSuchKey", "404"}:
            return None
        raise


def read_manifest(s3, bucket: str, version: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"models/{version}/manifest.json")["Body"].read())


def promote(s3, bucket: str, version: str, reason: str, promoted_at: str) -> dict[str, Any]:
    previous = read_champion(s3, bucket)
    pointer = {
        "version": version,
        "manifest_key": f"models/{version}/manifest.json",
        "promoted_at": promoted_at,
        "reason": reason,
        "previous": previous["version"] if previous else None,
    }
    put_json(s3, bucket, CHAMPION_KEY, pointer)  # the bucket is versioned: every pointer is kept
    return pointer

"""Model monitoring's reports as their readers take them: verified with the monitor's key (the CLI, the monitor's own
trend, the API), and, for the API, without what would show one caller another caller's inputs."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected, Signatures, missing, read_json

NEW_BUCKETS = "(not in training)"


def latest_key(s3, bucket: str) -> str | None:
    """The key of the latest report as monitoring/latest.json names it; None before the first. A pointer that is not
    JSON, or names nothing, raises ArtifactRejected."""
    try:
        latest = read_json(s3, bucket, layout.MONITORING_LATEST)
    except ValueError as err:
        raise ArtifactRejected(f"{layout.MONITORING_LATEST} is not JSON: {err}") from err
    if not latest:
        return None
    key = latest.get("key") if isinstance(latest, dict) else None
    if not isinstance(key, str):
        raise ArtifactRejected(f"{layout.MONITORING_LATEST} names no report: {str(latest)[:100]}")
    return key


def read_report(s3, bucket: str, signatures: Signatures, key: str | None = None) -> dict[str, Any] | None:
    """A report (the latest when `key` is None; None when there is none yet), refused unless its signature verifies
    with the monitor's key."""
    if key is None:
        key = latest_key(s3, bucket)
        if key is None:
            return None
    if not key.startswith(layout.MONITORING):
        raise ArtifactRejected(f"{key!r} is not a monitoring report")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if missing(err):
            raise ArtifactRejected(f"the monitoring report {key} named as the latest is missing") from err
        raise
    signatures.verify(key, body, read_json(s3, bucket, layout.report_signature_key(key)))
    return json.loads(body)


def _public_check(check: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in check.items() if k != "examples"}  # unseen categories: values callers sent
    if check["check"] == "schema" and check["violated"]:  # the unknown fields' names came from callers' records
        out["message"] = f"records carried fields the model does not know ({check['value']:.1%} per record)"
    return out


def _public_segment(segment: dict[str, Any]) -> dict[str, Any]:
    """A category bucket training never had is a value some caller sent: such buckets are pooled into one."""
    known = [b for b in segment["buckets"] if b["baseline_share"] > 0]
    new = [b for b in segment["buckets"] if b["baseline_share"] <= 0]
    if new:
        share, feedback = sum(b["share"] for b in new), sum(b["feedback"] for b in new)
        right = sum((b["accuracy"] or 0) * b["feedback"] for b in new)
        known.append({"bucket": NEW_BUCKETS, "share": round(share, 4), "baseline_share": 0.0, "feedback": feedback,
                      "accuracy": round(right / feedback, 4) if feedback else None})
    return {**segment, "buckets": known}


def public_view(report: dict[str, Any]) -> dict[str, Any]:
    """The report for any API key: every aggregate, none of the inputs themselves (each key sees only its own data)."""
    out = dict(report)
    for part in ("quality", "violations"):
        if part in out:
            out[part] = [_public_check(c) for c in out[part]]
    if "segments" in out:
        out["segments"] = [_public_segment(s) for s in out["segments"]]
    return out

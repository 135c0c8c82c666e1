"""Model monitoring's reports as their readers take them: verified with the monitor's key (the CLI, the monitor's own
trend, the API), and, for the API, without what would show one caller another caller's inputs."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected, Signatures, missing, parse_document, read_json

NEW_BUCKETS = "(not in training)"


class ReportMissing(ArtifactRejected):
    """The report asked for is not in the bucket (a key with no report of its own yet, or one the latest pointer names
    but that is gone)."""


def _pointer_body(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def write_latest(s3, bucket: str, fields: dict[str, Any], signatures: Signatures) -> None:
    """monitoring/latest.json: which report is the latest (`fields` hold its "key" and "at"), signed with the monitor's key
    inside the one object, so a crash never leaves a pointer and a signature that disagree."""
    doc = {**fields, "signature": signatures.sign(_pointer_body(fields))}
    s3.put_object(Bucket=bucket, Key=layout.MONITORING_LATEST, Body=json.dumps(doc, indent=1, sort_keys=True).encode(),
                  ContentType="application/json")


def read_latest(s3, bucket: str, signatures: Signatures) -> dict[str, Any] | None:
    """monitoring/latest.json, verified with the monitor's key; None before the first report. A pointer that is not JSON,
    names no report or is not signed by the monitor (rewritten by hand, or written before pointers were signed) raises
    ArtifactRejected: an older report pointed to by anyone else is never served as the latest."""
    doc = read_json(s3, bucket, layout.MONITORING_LATEST, required=("key", "at"))
    if doc is None:
        return None
    fields = {k: v for k, v in doc.items() if k != "signature"}
    signature = doc.get("signature")
    signatures.verify(layout.MONITORING_LATEST, _pointer_body(fields), signature if isinstance(signature, dict) else None)
    return fields


def read_report(s3, bucket: str, signatures: Signatures, key: str | None = None) -> dict[str, Any] | None:
    """A report (the latest when `key` is None; None when there is none yet), refused unless its signature verifies
    with the monitor's key and, for the latest, unless it is the one the signed pointer names, written at its time."""
    expected: dict[str, Any] | None = None
    if key is None:
        expected = read_latest(s3, bucket, signatures)
        if expected is None:
            return None
        key = expected["key"]
    if not key.startswith(layout.MONITORING):
        raise ArtifactRejected(f"{key!r} is not a monitoring report")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if missing(err):
            raise ReportMissing(f"the monitoring report {key}{' named as the latest' if expected else ''} is missing") from err
        raise
    signatures.verify(key, body, read_json(s3, bucket, layout.report_signature_key(key)))
    report = parse_document(body, key)
    if expected is not None and (report.get("key"), report.get("at")) != (key, expected["at"]):
        raise ArtifactRejected(f"the monitoring report at {key} is not the one {layout.MONITORING_LATEST} names (written {expected['at']})")
    return report


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

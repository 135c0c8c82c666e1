"""The dataset (its current version and spec) and its accumulated feedback, read from S3 with the object
versions that were read; the checks themselves are the shared contract's (sommelier_contract.dataset)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sommelier_contract import dataset as contract
from sommelier_contract.dataset import DataError, check_frame, check_spec
from sommelier_contract.records import RecordValidator, feedback_problem

__all__ = ["DataError", "Dataset", "Feedback", "check_frame", "check_spec", "load_dataset", "load_feedback"]


@dataclass
class Dataset:
    spec: dict[str, Any]
    frame: pd.DataFrame
    sources: list[dict[str, Any]]
    row_keys: list[str] = field(default_factory=list)  # one per frame row, from the file's raw row (all its columns)
    version: int | None = None  # the pushed version (None: files seeded without `dataset push`)

    @property
    def features(self) -> list[dict[str, Any]]:
        return self.spec["features"]

    @property
    def target(self) -> str:
        return self.spec["target"]


def load_dataset(s3, bucket: str, prefix: str) -> Dataset:
    spec, raw, keys, sources, pointer = contract.load(s3, bucket, prefix.strip("/"))
    return Dataset(spec=spec, frame=check_frame(raw, spec), sources=sources, row_keys=keys,
                   version=pointer["version"] if pointer else None)


@dataclass
class Feedback:
    rows: pd.DataFrame
    sources: list[dict[str, Any]]
    quarantined: list[dict[str, str]]
    meta: list[dict[str, Any]] = field(default_factory=list)  # per row: who sent it, what the model said and how surely
    screen: dict[str, Any] = field(default_factory=dict)  # what screen() left out and what it noticed


CONFIDENT = 0.9  # a prediction this sure, contradicted by feedback, is worth a look when it happens a lot


def screen(fb: Feedback, dataset_rows: int, max_share: float, min_rows: int = 10) -> Feedback:
    """Feedback that cannot outweigh the dataset, and what looks like an attack on it.

    - A cap: feedback is at most `max_share` of the rows (the dataset's + the feedback used); over it, the newest rows
      are used and the rest wait in S3 (listed, never deleted), so a flood of labels cannot drown the data it corrects.
    - Anomalies, reported for the gate (which then leaves promotion to a person): one key sending most of the
      feedback while several keys send some, and most feedback contradicting predictions made with confidence
      >= CONFIDENT (real corrections exist; a majority of them is what label flipping looks like)."""
    n = len(fb.rows)
    allowed = int(dataset_rows * max_share / (1 - max_share)) if max_share < 1 else n
    order = sorted(range(n), key=lambda i: str(fb.meta[i].get("received_at") or ""), reverse=True)
    keep = sorted(order[:allowed])
    report: dict[str, Any] = {"received": n, "used": len(keep), "cap": allowed, "max_share": max_share, "anomalies": []}
    if len(keep) < n:
        report["left_out"] = [fb.sources[i]["key"] for i in sorted(order[allowed:])][:1000]
        report["left_out_count"] = n - len(keep)
    used = [fb.meta[i] for i in keep]
    callers = pd.Series([m.get("caller") for m in used if m.get("caller")], dtype=object).value_counts()
    if len(callers) > 1 and len(used) >= min_rows and callers.iloc[0] > 0.5 * len(used):
        report["anomalies"].append(f"one API key sent {callers.iloc[0]} of the {len(used)} feedback rows used")
    sure = [m for m in used if isinstance(m.get("confidence"), int | float) and m["confidence"] >= CONFIDENT and m.get("predicted_label")]
    against = [m for m in sure if str(m["predicted_label"]) != str(m.get("label"))]
    report["contradicting_confident"] = len(against)
    if len(sure) >= min_rows and len(against) > 0.5 * len(sure):
        report["anomalies"].append(f"{len(against)} of {len(sure)} feedback rows on predictions made with confidence >= {CONFIDENT} "
                                   "say the model was wrong")
    return Feedback(rows=fb.rows.iloc[keep].reset_index(drop=True), sources=[fb.sources[i] for i in keep],
                    quarantined=fb.quarantined, meta=used, screen=report)


def quarantine(s3, bucket: str, key: str, quarantine_prefix: str, feedback_prefix: str, body: bytes, reason: str, now: str) -> str:
    """Move a bad feedback object aside with the reason; the copy is written before the original goes."""
    target = quarantine_prefix + key[len(feedback_prefix):]
    doc = {"source_key": key, "reason": reason, "quarantined_at": now, "record": body.decode("utf-8", errors="replace")}
    s3.put_object(Bucket=bucket, Key=target, Body=json.dumps(doc, indent=2).encode(), ContentType="application/json")
    s3.delete_object(Bucket=bucket, Key=key)
    return target


def load_feedback(s3, bucket: str, feedback_prefix: str, quarantine_prefix: str, spec: dict[str, Any], classes: set[str], now: str) -> Feedback:
    rows, sources, quarantined, meta = [], [], [], []
    # the record schema the API enforced: imputed numerics may be null, as the manifest says
    validator = RecordValidator([{**f, "imputed": "median"} if f["type"] == "numeric" else f for f in spec["features"]])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=feedback_prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            obj = s3.get_object(Bucket=bucket, Key=key)
            body = obj["Body"].read()
            try:
                record = json.loads(body)
                problem = feedback_problem(record, validator, classes)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                problem = f"not valid JSON: {err}"
            if problem:
                quarantine(s3, bucket, key, quarantine_prefix, feedback_prefix, body, problem, now)
                quarantined.append({"key": key, "reason": problem})
                continue
            rows.append({**dict.fromkeys(f["name"] for f in spec["features"]), **record["features"], spec["target"]: str(record["label"])})
            sources.append({"key": key, "version_id": obj.get("VersionId")})
            meta.append({k: record.get(k) for k in ("caller", "predicted_label", "confidence", "received_at", "label")})
    frame = pd.DataFrame(rows, columns=[*(f["name"] for f in spec["features"]), spec["target"]])
    return Feedback(rows=frame, sources=sources, quarantined=quarantined, meta=meta)

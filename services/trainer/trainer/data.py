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


def quarantine(s3, bucket: str, key: str, quarantine_prefix: str, feedback_prefix: str, body: bytes, reason: str, now: str) -> str:
    """Move a bad feedback object aside with the reason; the copy is written before the original goes."""
    target = quarantine_prefix + key[len(feedback_prefix):]
    doc = {"source_key": key, "reason": reason, "quarantined_at": now, "record": body.decode("utf-8", errors="replace")}
    s3.put_object(Bucket=bucket, Key=target, Body=json.dumps(doc, indent=2).encode(), ContentType="application/json")
    s3.delete_object(Bucket=bucket, Key=key)
    return target


def load_feedback(s3, bucket: str, feedback_prefix: str, quarantine_prefix: str, spec: dict[str, Any], classes: set[str], now: str) -> Feedback:
    rows, sources, quarantined = [], [], []
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
    frame = pd.DataFrame(rows, columns=[*(f["name"] for f in spec["features"]), spec["target"]])
    return Feedback(rows=frame, sources=sources, quarantined=quarantined)

"""Reading the dataset and its spec from S3, with the object versions that were read."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

FEATURE_TYPES = {"numeric", "categorical", "text"}


class DataError(ValueError):
    """The data or its spec cannot be trained on; the message names the problem."""


@dataclass
class Dataset:
    spec: dict[str, Any]
    frame: pd.DataFrame
    sources: list[dict[str, Any]]
    row_keys: list[str] = field(default_factory=list)  # one per frame row, from the file's raw row (all its columns)

    @property
    def features(self) -> list[dict[str, Any]]:
        return self.spec["features"]

    @property
    def target(self) -> str:
        return self.spec["target"]


def _get(s3, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey as err:
        raise DataError(f"s3://{bucket}/{key} does not exist") from err
    body = obj["Body"].read()
    return body, {"bucket": bucket, "key": key, "version_id": obj.get("VersionId"), "etag": obj.get("ETag", "").strip('"')}


def check_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise DataError("the spec must be a JSON object")
    for key in ("target", "features"):
        if key not in spec:
            raise DataError(f"the spec has no {key!r}")
    if not isinstance(spec["features"], list) or not spec["features"]:
        raise DataError("the spec's 'features' must be a non-empty list")
    seen = set()
    for i, f in enumerate(spec["features"]):
        if not isinstance(f, dict) or "name" not in f:
            raise DataError(f"spec feature #{i} has no name")
        if f.get("type") not in FEATURE_TYPES:
            raise DataError(f"spec feature {f['name']!r} has type {f.get('type')!r}; expected one of {sorted(FEATURE_TYPES)}")
        if f["name"] in seen or f["name"] == spec["target"]:
            raise DataError(f"spec feature {f['name']!r} is listed twice or is the target")
        seen.add(f["name"])
    ignore = spec.get("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(c, str) for c in ignore):
        raise DataError("the spec's 'ignore' must be a list of column names")
    clash = sorted(set(ignore) & (seen | {spec["target"]}))
    if clash:
        raise DataError(f"the spec's 'ignore' names feature or target column(s) {clash}")
    return spec


_UNNAMED = re.compile(r"^Unnamed: \d+$")  # pandas' name for a column with an empty header


def index_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that are a row index written out with the data (empty header, values 0..n-1 or 1..n): never features."""
    found = []
    for column in frame.columns:
        if _UNNAMED.match(str(column)) and pd.api.types.is_integer_dtype(frame[column]):
            values = frame[column].tolist()
            if values in (list(range(len(values))), list(range(1, len(values) + 1))):
                found.append(column)
    return found


def check_frame(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Column presence and types; returns the frame with numeric columns as floats."""
    if frame.empty:
        raise DataError("the data has no rows")
    frame = frame.drop(columns=[c for c in [*spec.get("ignore", []), *index_columns(frame)] if c in frame.columns])
    wanted = [f["name"] for f in spec["features"]] + [spec["target"]]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"the data lacks column(s) {missing}; it has {list(frame.columns)}")
    extra = [c for c in frame.columns if c not in wanted]
    if extra:
        raise DataError(f"the data has column(s) {extra} that the spec does not declare (list them under \"ignore\" to leave them out)")
    frame = frame.copy()
    for f in spec["features"]:
        name = f["name"]
        if f["type"] == "numeric":
            values = pd.to_numeric(frame[name], errors="coerce")
            bad = values.isna() & frame[name].notna()
            if bad.any():
                row = int(bad.idxmax())
                raise DataError(f"column {name!r} is numeric but row {row + 2} holds {frame[name][row]!r}")
            frame[name] = values.astype(float)
        else:
            frame[name] = frame[name].astype("string").fillna("").astype(object)
    if frame[spec["target"]].isna().any():
        row = int(frame[spec["target"]].isna().idxmax())
        raise DataError(f"target column {spec['target']!r} is empty in row {row + 2}")
    frame[spec["target"]] = frame[spec["target"]].astype(str)
    return frame


def row_keys(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """A stable identity per row (a hash of its values), so a split chosen once can be found again in newer data."""
    return [hashlib.sha1(json.dumps([None if pd.isna(v) else v for v in row], default=str).encode()).hexdigest()[:20]
            for row in frame[columns].itertuples(index=False, name=None)]


def load_dataset(s3, bucket: str, prefix: str) -> Dataset:
    prefix = prefix.strip("/")
    spec_body, spec_src = _get(s3, bucket, f"{prefix}/spec.json")
    try:
        spec = check_spec(json.loads(spec_body))
    except json.JSONDecodeError as err:
        raise DataError(f"s3://{bucket}/{prefix}/spec.json is not valid JSON: {err}") from err
    data_body, data_src = _get(s3, bucket, f"{prefix}/data.csv")
    raw = read_csv(data_body, f"s3://{bucket}/{prefix}/data.csv")
    # keys from the raw rows: a spec that ignores or drops a column later still finds the same rows
    return Dataset(spec=spec, frame=check_frame(raw, spec), sources=[spec_src, data_src], row_keys=row_keys(raw, list(raw.columns)))


def _ragged_row(body: bytes) -> str | None:
    """The first row whose field count differs from the header's (pandas pads short rows silently)."""
    rows = csv.reader(io.StringIO(body.decode("utf-8", errors="replace")))
    width = len(next(rows, []))
    for number, row in enumerate(rows, start=2):
        if row and len(row) != width:
            return f"row {number} has {len(row)} fields, the header has {width}"
    return None


def read_csv(body: bytes, where: str) -> pd.DataFrame:
    """A strict CSV read: every row has as many fields as the header."""
    problem = _ragged_row(body)
    if problem:
        raise DataError(f"{where} is not a readable CSV: {problem}")
    try:
        return pd.read_csv(io.BytesIO(body), index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{where} is not a readable CSV: {err}") from err


@dataclass
class Feedback:
    rows: pd.DataFrame
    sources: list[dict[str, Any]]
    quarantined: list[dict[str, str]]


def _feedback_problem(record: Any, spec: dict[str, Any], classes: set[str]) -> str | None:
    """Why a feedback record cannot be trained on, or None if it can."""
    if not isinstance(record, dict) or not isinstance(record.get("features"), dict) or "label" not in record:
        return 'expected an object with "features" (object) and "label"'
    names = [f["name"] for f in spec["features"]]
    missing = [n for n in names if n not in record["features"]]
    if missing:
        return f"features missing: {missing}"
    unknown = sorted(set(record["features"]) - set(names))
    if unknown:
        return f"unknown features: {unknown}"
    for f in spec["features"]:
        value = record["features"][f["name"]]
        if f["type"] == "numeric" and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"feature {f['name']!r} must be a number, got {value!r}"
        if f["type"] != "numeric" and not isinstance(value, str):
            return f"feature {f['name']!r} must be a string, got {value!r}"
    if str(record["label"]) not in classes:
        return f"label {record['label']!r} is not one of the known classes {sorted(classes)}"
    return None


def quarantine(s3, bucket: str, key: str, quarantine_prefix: str, feedback_prefix: str, body: bytes, reason: str, now: str) -> str:
    """Move a bad feedback object aside with the reason; the copy is written before the original goes."""
    target = quarantine_prefix + key[len(feedback_prefix):]
    doc = {"source_key": key, "reason": reason, "quarantined_at": now, "record": body.decode("utf-8", errors="replace")}
    s3.put_object(Bucket=bucket, Key=target, Body=json.dumps(doc, indent=2).encode(), ContentType="application/json")
    s3.delete_object(Bucket=bucket, Key=key)
    return target


def load_feedback(s3, bucket: str, feedback_prefix: str, quarantine_prefix: str, spec: dict[str, Any], classes: set[str], now: str) -> Feedback:
    rows, sources, quarantined = [], [], []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=feedback_prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            body, src = _get(s3, bucket, key)
            try:
                record = json.loads(body)
                problem = _feedback_problem(record, spec, classes)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                problem = f"not valid JSON: {err}"
            if problem:
                quarantine(s3, bucket, key, quarantine_prefix, feedback_prefix, body, problem, now)
                quarantined.append({"key": key, "reason": problem})
                continue
            rows.append({**record["features"], spec["target"]: str(record["label"])})
            sources.append({"key": key, "version_id": src["version_id"]})
    frame = pd.DataFrame(rows, columns=[*(f["name"] for f in spec["features"]), spec["target"]])
    return Feedback(rows=frame, sources=sources, quarantined=quarantined)

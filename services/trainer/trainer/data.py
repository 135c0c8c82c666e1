"""Reading the dataset and its spec from S3, with the object versions that were read."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
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
    return spec


def check_frame(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Column presence and types; returns the frame with numeric columns as floats."""
    if frame.empty:
        raise DataError("the data has no rows")
    wanted = [f["name"] for f in spec["features"]] + [spec["target"]]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"the data lacks column(s) {missing}; it has {list(frame.columns)}")
    extra = [c for c in frame.columns if c not in wanted]
    if extra:
        raise DataError(f"the data has column(s) {extra} that the spec does not declare")
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


def load_dataset(s3, bucket: str, prefix: str) -> Dataset:
    prefix = prefix.strip("/")
    spec_body, spec_src = _get(s3, bucket, f"{prefix}/spec.json")
    try:
        spec = check_spec(json.loads(spec_body))
    except json.JSONDecodeError as err:
        raise DataError(f"s3://{bucket}/{prefix}/spec.json is not valid JSON: {err}") from err
    data_body, data_src = _get(s3, bucket, f"{prefix}/data.csv")
    try:
        frame = pd.read_csv(io.BytesIO(data_body))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"s3://{bucket}/{prefix}/data.csv is not a readable CSV: {err}") from err
    return Dataset(spec=spec, frame=check_frame(frame, spec), sources=[spec_src, data_src])

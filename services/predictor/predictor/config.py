"""The predictor's settings, read once from the environment at cold start."""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(RuntimeError):
    pass


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} must be set for the predictor")
    return value


def _number(name: str, default: str) -> float:
    raw = os.environ.get(name, default)
    try:
        return float(raw)
    except ValueError as err:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from err


@dataclass(frozen=True)
class Settings:
    # A dataclass rather than pydantic-settings: this module is on the cold-start path.
    model_bucket: str
    model_signing_key: str  # the KMS key whose signature a manifest must carry
    predictions_table: str
    dataset_bucket: str
    dataset_prefix: str
    metrics_namespace: str
    champion_refresh_seconds: float
    prediction_ttl_days: float
    max_batch: int
    cors_allow_origin: str
    low_confidence_threshold: float
    metrics_sink: str = "api"  # api: PutMetricData (emulators); emf: embedded metric format in the logs (AWS)
    package: str = "zip"  # how this code was delivered: the image sets SOMMELIER_PACKAGE=image (services/predictor/Dockerfile)
    image_tag: str = ""  # the image's tag (the git revision it was built from), set by the image itself
    report_signing_key: str = ""  # the monitor's KMS key: GET /monitoring serves a report only when it verifies with it

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            model_bucket=_required("MODEL_BUCKET"),
            model_signing_key=_required("MODEL_SIGNING_KEY"),
            predictions_table=_required("PREDICTIONS_TABLE"),
            dataset_bucket=_required("DATASET_BUCKET"),
            dataset_prefix=_required("DATASET_PREFIX").strip("/"),
            metrics_namespace=_required("METRICS_NAMESPACE"),
            champion_refresh_seconds=_number("CHAMPION_REFRESH_SECONDS", "30"),
            prediction_ttl_days=_number("PREDICTION_TTL_DAYS", "90"),
            max_batch=int(_number("MAX_BATCH", "1000")),
            cors_allow_origin=os.environ.get("CORS_ALLOW_ORIGIN", "*"),
            low_confidence_threshold=_number("LOW_CONFIDENCE_THRESHOLD", "0.6"),
            metrics_sink=os.environ.get("METRICS_SINK", "api"),
            package=os.environ.get("SOMMELIER_PACKAGE", "zip"),
            image_tag=os.environ.get("SOMMELIER_IMAGE_TAG", ""),
            report_signing_key=os.environ.get("REPORT_SIGNING_KEY", "").strip(),
        )

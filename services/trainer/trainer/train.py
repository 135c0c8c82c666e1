"""One training run: data from S3 -> fitted, evaluated, versioned artifacts -> maybe promoted."""

from __future__ import annotations

import logging
import platform
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder

from trainer import artifacts
from trainer.config import Settings
from trainer.data import DataError, Dataset, load_dataset
from trainer.pipeline import build, candidates, to_matrix

log = logging.getLogger("trainer")
MIN_ROWS_PER_CLASS = 5
ACCURACY_FLOOR = 0.7


@dataclass
class Outcome:
    version: str | None
    promoted: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


def _libraries() -> dict[str, str]:
    libs = {name: installed_version(name) for name in ("scikit-learn", "joblib", "numpy", "scipy", "pandas")}
    return {**libs, "python": platform.python_version()}


def _check_classes(y: np.ndarray) -> None:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"the target has a single class ({classes[0] if len(classes) else 'none'}); at least two are needed")
    small = {str(c): int(n) for c, n in zip(classes, counts, strict=True) if n < MIN_ROWS_PER_CLASS}
    if small:
        raise DataError(f"class(es) with fewer than {MIN_ROWS_PER_CLASS} rows: {small}")


def evaluate(pipeline, X: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    pred = pipeline.predict(X)
    proba = pipeline.predict_proba(X)
    idx = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=idx, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1_macro": float(f1_score(y, pred, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(y, pred, average="weighted", zero_division=0)),
        "log_loss": float(log_loss(y, proba, labels=idx)),
        "per_class": {
            labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i in idx
        },
        "confusion_matrix": {"labels": labels, "matrix": confusion_matrix(y, pred, labels=idx).tolist()},
        "rows": int(len(y)),
    }


def new_version(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def fit_and_evaluate(ds: Dataset, settings: Settings) -> tuple[Any, LabelEncoder, dict[str, Any], dict[str, Any]]:
    encoder = LabelEncoder()
    y_all = encoder.fit_transform(ds.frame[ds.target].to_numpy())
    _check_classes(ds.frame[ds.target].to_numpy())
    X_all = to_matrix(ds.frame, ds.features)
    X_train, X_test, y_train, y_test = train_test_split(
        X_all, y_all, test_size=settings.holdout_fraction, stratify=y_all, random_state=settings.seed
    )
    labels = [str(c) for c in encoder.classes_]
    (family, estimator), = candidates(settings.seed).items()
    started = time.perf_counter()
    log.info("fitting %s on %d rows", family, len(y_train))
    pipeline = build(ds.features, estimator).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    metrics = {"holdout": evaluate(pipeline, X_test, y_test, labels), "train_rows": int(len(y_train))}
    log.info("holdout accuracy %.3f, macro F1 %.3f", metrics["holdout"]["accuracy"], metrics["holdout"]["f1_macro"])
    model_info = {"family": family, "params": {k: repr(v) for k, v in estimator.get_params().items()}, "fit_seconds": fit_seconds}
    return pipeline, encoder, metrics, model_info


def run(settings: Settings, s3, *, only_if_no_champion: bool = False, promote: bool = True) -> Outcome:
    champion = artifacts.read_champion(s3, settings.model_bucket)
    if only_if_no_champion and champion:
        log.info("champion %s exists; nothing to train", champion["version"])
        return Outcome(version=champion["version"], promoted=False, reason="champion exists")
    started = time.perf_counter()
    now = datetime.now(UTC)
    log.info("reading s3://%s/%s", settings.dataset_bucket, settings.dataset_prefix)
    ds = load_dataset(s3, settings.dataset_bucket, settings.dataset_prefix)
    log.info("dataset %s: %d rows, %d features, target %r", ds.spec.get("name"), len(ds.frame), len(ds.features), ds.target)
    pipeline, encoder, metrics, model_info = fit_and_evaluate(ds, settings)

    version = new_version(now)
    prefix = f"models/{version}/"
    log.info("writing artifacts to s3://%s/%s", settings.model_bucket, prefix)
    written = {
        "pipeline": artifacts.put_artifact(s3, settings.model_bucket, prefix + "pipeline.joblib", artifacts.dump(pipeline)),
        "label_encoder": artifacts.put_artifact(s3, settings.model_bucket, prefix + "label_encoder.joblib", artifacts.dump(encoder)),
    }
    accuracy = metrics["holdout"]["accuracy"]
    if accuracy < ACCURACY_FLOOR:
        decision, reason = False, f"holdout accuracy {accuracy:.3f} is below the floor {ACCURACY_FLOOR}"
    elif champion is None:
        decision, reason = True, f"first model; holdout accuracy {accuracy:.3f} clears the floor {ACCURACY_FLOOR}"
    else:
        decision, reason = True, f"holdout accuracy {accuracy:.3f} clears the floor {ACCURACY_FLOOR}"
    decision = decision and promote
    manifest = {
        "format": 1,
        "version": version,
        "created_at": now.isoformat(),
        "dataset": {"name": ds.spec.get("name"), "sources": ds.sources, "rows": int(len(ds.frame))},
        "spec": ds.spec,
        "target": ds.target,
        "features": ds.features,
        "segments": ds.spec.get("segments", []),
        "input": {"layout": "2-D array, columns in feature order", "dtype": "float" if all(f["type"] == "numeric" for f in ds.features) else "object"},
        "classes": [str(c) for c in encoder.classes_],
        "artifacts": written,
        "libraries": _libraries(),
        "model": model_info,
        "seed": settings.seed,
        "holdout_fraction": settings.holdout_fraction,
        "metrics": metrics,
        "gate": {"promoted": decision, "reason": reason, "champion_before": champion["version"] if champion else None},
        "timings": {"total_seconds": time.perf_counter() - started},
    }
    artifacts.put_json(s3, settings.model_bucket, prefix + "manifest.json", manifest)
    if decision:
        artifacts.promote(s3, settings.model_bucket, version, reason, now.isoformat())
        log.info("promoted %s: %s", version, reason)
    else:
        log.info("not promoted %s: %s", version, reason if promote else "promotion disabled")
    return Outcome(version=version, promoted=decision, reason=reason, metrics=metrics)

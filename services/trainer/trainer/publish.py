"""Stage 4 of a training run, publishing: the artifacts (the pipeline, its label encoder and, when it converts
faithfully, ONNX), then the signed manifest, then the pointer the gate allows (the champion, or the candidate on
trial), then the run's metrics. Artifacts come before the manifest and the manifest before any pointer, so a crash
leaves at worst a version nobody points at."""

from __future__ import annotations

import json
import logging
import platform
import uuid
from dataclasses import replace
from datetime import datetime
from importlib.metadata import version as installed_version
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from sommelier_contract import layout, pointers
from sommelier_contract.artifacts import Signatures, put_manifest
from sommelier_contract.baseline import profile as profile_of
from sommelier_contract.manifest import DatasetRef, Gate, Manifest, Metrics, ModelInfo, Serving
from sommelier_contract.metric_names import Metric
from trainer import artifacts, metrics, onnx_export
from trainer.compare import Winner
from trainer.config import Settings
from trainer.data import TrainingData, imputation
from trainer.evaluate import Verdict

log = logging.getLogger("trainer")


class Unfinished(Exception):
    """Publishing stopped where S3 stopped answering (or refused): the message says what was written and what is not known."""


def new_version(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _libraries() -> dict[str, str]:
    libs = {name: installed_version(name) for name in ("scikit-learn", "joblib", "numpy", "scipy", "pandas", "skl2onnx", "onnxruntime")}
    return {**libs, "python": platform.python_version()}


MAX_LEARNED = 5000  # a categorical's learned values kept in the manifest (more: none, and none is flagged)


def serving_features(features: list[dict[str, Any]], rows: pd.DataFrame, gaps: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The manifest's feature schema: the spec's, plus how missing values are handled: any feature may be left out of a
    record ("absent": the model answers without it), and a category or text empty in some row of the file, `gaps`, or of
    the training rows may be sent empty ("imputed": the model learned what empty means); an example per feature, and
    reference values (training quantiles, frequent categories) the explainer compares a record with."""
    names = [f["name"] for f in features]
    complete = rows[rows[names].notna().all(axis=1) & (rows[names] != "").all(axis=1)]
    example = complete.iloc[0] if len(complete) else None
    out = []
    for f in features:
        column = rows[f["name"]]
        how = imputation(f, rows, list(gaps))
        # every model answers without any feature a record leaves out (records.answers_absent); the spec may require some
        entry = {**f, "absent": True, **({"imputed": how} if how else {})}
        if "example" not in entry and example is not None:
            value = example[f["name"]]
            entry["example"] = float(value) if f["type"] == "numeric" else str(value)
        if f["type"] == "numeric" and column.notna().any():
            entry["reference"] = [round(float(q), 6) for q in column.quantile([0.1, 0.3, 0.5, 0.7, 0.9])]
            entry["seen"] = [float(column.min()), float(column.max())]  # a prediction outside it says so (records.unusual)
        elif f["type"] == "categorical":
            counts = column[column != ""].astype(str).value_counts()
            entry["reference"] = [str(v) for v in counts.index[:5]]
            # the values the encoder keeps a column for (at least twice; the most frequent max_categories - 1 where the
            # spec bounds it): any other value is "rare" to the model, and a prediction with one says so (records.unusual)
            learned = counts[counts >= 2]
            if f.get("max_categories"):
                learned = learned.iloc[:max(0, int(f["max_categories"]) - 1)]
            if len(learned) <= MAX_LEARNED:
                entry["learned"] = [str(v) for v in learned.index]
        out.append(entry)
    return out


def baseline(data: TrainingData, verdict: Verdict, seed: int) -> bytes:
    """The training rows' profile and the holdout's answers, which model monitoring compares recent predictions with
    (services/monitor); an artifact like the others, so the manifest's signature covers it."""
    columns = {f["name"]: data.X_train[:, i].tolist() for i, f in enumerate(data.features)}
    correct = [p == t for p, t in zip(verdict.predicted, data.y_test_labels, strict=True)]
    profile = profile_of(data.features, columns, predicted=verdict.predicted, confidence=verdict.confidence, correct=correct,
                            classes=data.labels, segments=data.dataset.spec.get("segments", []), seed=seed)
    return json.dumps(profile, separators=(",", ":")).encode()


def publish(settings: Settings, s3, data: TrainingData, winner: Winner, verdict: Verdict, champion: pointers.Champion | None, *,
            now: datetime, trigger: str, promote: bool, signed: Signatures, timings: dict[str, float]) -> tuple[Manifest, bool]:
    """Write the version and move the pointer the gate allows; (its manifest, whether it became the champion now)."""
    version = new_version(now)
    log.info("writing artifacts to s3://%s/%s", settings.model_bucket, layout.model_prefix(version))
    converted, serving = onnx_export.export(winner.pipeline, data.features, data.X_test)
    bodies = {"pipeline": artifacts.dump(winner.pipeline), "label_encoder": artifacts.dump(data.encoder), **converted,
              "baseline": baseline(data, verdict, settings.seed)}
    try:
        written = {name: artifacts.put_artifact(s3, settings.model_bucket, layout.artifact_key(version, name), body)
                   for name, body in bodies.items()}
    except (BotoCoreError, ClientError) as err:
        raise Unfinished(f"version {version} was not written ({err}): its artifacts so far have no manifest, so nothing can "
                         "serve them (`make history` shows it as an interrupted run), and the champion is unchanged") from err
    passed = verdict.passed and promote
    canary = passed and champion is not None and settings.canary_percent > 0  # the gate passed; live traffic decides the rest
    gate = Gate(passed=passed, reason=verdict.reason if promote else f"{verdict.reason}; promotion disabled",
                champion_before=champion.version if champion else None,
                accuracy_floor=settings.accuracy_floor, regression_tolerance=settings.regression_tolerance)
    if canary:
        gate = replace(gate, candidate=True,
                       reason=f"{verdict.reason}; on trial as a candidate for {settings.canary_percent:g}% of predictions")
    ds, fb = data.dataset, data.feedback
    manifest = Manifest(
        version=version,
        created_at=now.isoformat(),
        trigger=trigger,
        dataset=DatasetRef(name=ds.spec.get("name"), prefix=settings.dataset_prefix.strip("/"), version=ds.version, sources=ds.sources,
                           feedback={"objects": len(fb.sources), "sources": fb.sources[:1000], "quarantined": fb.quarantined,
                                     "screen": fb.screen},
                           rows=data.rows, notes=ds.notes, grouped=ds.grouped),
        spec=ds.spec,
        target=ds.target,
        # the serving contract: numeric features are imputed by the pipeline, so the API accepts them null or absent;
        # each feature has an example (the spec's, or a real training row's) for `predict --example` and the page
        features=serving_features(ds.features, data.reference, ds.gaps),
        segments=ds.spec.get("segments", []),
        input={"layout": "2-D array, columns in feature order", "dtype": "float" if data.X_train.dtype == float else "object"},
        classes=data.labels,
        artifacts=written,
        serving=Serving(**serving),  # onnx when a faithful ONNX conversion was written (the predictor prefers it), else joblib
        libraries=_libraries(),
        model=ModelInfo(name=winner.name, family=winner.name, estimator=winner.recipe.estimator_name,
                        params={k: repr(v) for k, v in winner.pipeline.named_steps["model"].get_params().items()},
                        dense_input=winner.recipe.dense),
        reproduce={"seed": settings.seed, "holdout_fraction": settings.holdout_fraction, "cv_folds": settings.cv_folds,
                   "compare_rows": settings.compare_rows, "train_budget_seconds": settings.train_budget_seconds,
                   "selection_metric": settings.selection_metric,
                   "split": "the dataset's frozen evaluation rows (evaluation.json) as holdout; StratifiedKFold(shuffle=True) on the rest"},
        evaluation=data.evaluation,
        importances=verdict.explained,
        metrics=Metrics(cv=winner.cv, holdout=verdict.holdout, train_rows=len(data.y_train), champion_on_holdout=verdict.champion),
        gate=gate,
        timings=timings,
    )
    try:
        put_manifest(s3, settings.model_bucket, manifest, signed)
    except (BotoCoreError, ClientError) as err:  # a manifest is one PUT: there, signed and whole, or not there
        raise Unfinished(f"version {version}: whether its manifest was written is not known ({err}); it was not promoted; when "
                         "the stack answers, `make history` lists it if it was") from err
    try:
        if canary and champion:
            pointers.propose(s3, settings.model_bucket, version, settings.canary_percent, verdict.reason, now.isoformat(), champion.version)
            log.info("candidate %s for %g%% of predictions: %s", version, settings.canary_percent, verdict.reason)
            return manifest, False
        if passed:
            pointers.promote(s3, settings.model_bucket, version, verdict.reason, now.isoformat())
            log.info("promoted %s: %s", version, verdict.reason)
            return manifest, True
    except (BotoCoreError, ClientError) as err:
        raise Unfinished(f"version {version} was written (its manifest signed; it verifies), but whether it became the "
                         f"{'candidate' if canary else 'champion'} is not known: moving the pointer failed ({err}); when the stack "
                         "answers, `make history` shows which version is the champion") from err
    log.info("not promoted %s: %s", version, gate.reason)
    return manifest, False


def report(cloudwatch, settings: Settings, dataset: str, manifest: Manifest | None, promoted: bool, quarantined: int, seconds: float) -> bool:
    """The run's metrics in CloudWatch: a failed run (no manifest) counts as one. False: they could not be sent (logged)."""
    if manifest is None:
        return metrics.publish(cloudwatch, settings.metrics_namespace, dataset, {Metric.TRAINING_FAILED: (1, "Count")})
    holdout = manifest.metrics.holdout
    return metrics.publish(cloudwatch, settings.metrics_namespace, dataset, {
        Metric.TRAINING_DURATION: (seconds, "Seconds"),
        Metric.TRAINING_FAILED: (0, "Count"),
        Metric.HOLDOUT_ACCURACY: (holdout.accuracy, "None"),
        Metric.HOLDOUT_F1_MACRO: (holdout.f1_macro, "None"),
        Metric.MODEL_PROMOTED: (1 if promoted else 0, "Count"),
        Metric.FEEDBACK_QUARANTINED: (quarantined, "Count"),
    })

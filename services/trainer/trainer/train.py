"""One training run: data + feedback from S3 -> compared, evaluated, versioned artifacts -> the gate.

Candidates that suit the features are compared by stratified cross-validation on the training
rows only (on a stratified sample of them when there are many), within a time budget; the winner
is refit on every training row and scored once on the dataset's frozen evaluation rows, where the
current champion is scored too, so the gate compares like with like.
"""

from __future__ import annotations

import json
import logging
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError
from sklearn.base import clone
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import LabelEncoder

from sommelier_contract import layout
from sommelier_contract.dataset import new_evaluation, read_evaluation
from sommelier_contract.explain import column_sources, linear_weights
from sommelier_contract.records import to_matrix
from trainer import artifacts, metrics, onnx_export
from trainer.config import Settings
from trainer.data import DataError, load_dataset, load_feedback, screen
from trainer.pipeline import Candidate, build, candidates

log = logging.getLogger("trainer")


@dataclass
class Outcome:
    version: str | None
    promoted: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)
    quarantined: list[dict[str, str]] = field(default_factory=list)
    model: str | None = None


def _libraries() -> dict[str, str]:
    libs = {name: installed_version(name) for name in ("scikit-learn", "joblib", "numpy", "scipy", "pandas", "skl2onnx", "onnxruntime")}
    return {**libs, "python": platform.python_version()}


def check_classes(y: np.ndarray, folds: int) -> None:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"the target has a single class ({classes[0] if len(classes) else 'none'}); at least two are needed")
    needed = folds + 2  # every CV fold and the holdout need members of each class
    small = {str(c): int(n) for c, n in zip(classes, counts, strict=True) if n < needed}
    if small:
        raise DataError(f"class(es) with fewer than {needed} rows (needed for {folds}-fold CV and a holdout): {small}")


def evaluate(y_true: list[str], y_pred: list[str], proba: np.ndarray | None, labels: list[str]) -> dict[str, Any]:
    """Holdout scores in label space, so models with different encoders compare."""
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    scores: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {"labels": labels, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
        "rows": len(y_true),
    }
    if proba is not None:
        scores["log_loss"] = float(log_loss(y_true, proba, labels=labels))
    return scores


def new_version(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def choose_candidates(features: list[dict[str, Any]], rows: int, settings: Settings) -> dict[str, Candidate]:
    options = candidates(features, rows, settings.seed)
    if settings.families.strip():
        wanted = [n.strip() for n in settings.families.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(options))
        if unknown:
            raise DataError(f"unknown model families {unknown} for this data; choose from {sorted(options)}")
        options = {n: options[n] for n in wanted}
    return options


def comparison_rows(y: np.ndarray, settings: Settings) -> np.ndarray:
    """Indexes of the rows the candidates are compared on: all of them, or a stratified sample of large data
    (the ranking of candidates settles long before the rows run out; the winner is refit on everything)."""
    if len(y) <= settings.compare_rows:
        return np.arange(len(y))
    chosen, _ = train_test_split(np.arange(len(y)), train_size=settings.compare_rows, stratify=y, random_state=settings.seed)
    return np.sort(chosen)


METRICS = {"f1_macro": "macro F1", "accuracy": "accuracy", "log_loss": "log loss"}  # what the winner may be chosen on


def _better(metric: str, mean: float) -> float:
    """A score where higher is better, whichever metric."""
    return -mean if metric == "log_loss" else mean


def _cross_validate(features: list[dict[str, Any]], candidate: Candidate, X: np.ndarray, y: np.ndarray, folds: list,
                    parameter: str, values: tuple, tag: str, out_of_time: Callable[[], bool]) -> list[dict[str, list[float]]] | None:
    """Scores of the candidate at each value of `parameter` ("" for none) on each fold, the preprocessing fitted once a
    fold; None when `out_of_time` said stop before the last fold."""
    started = time.perf_counter()
    scores: list[dict[str, list[float]]] = [{"f1_macro": [], "accuracy": [], "log_loss": []} for _ in values]
    for k, (fit_idx, val_idx) in enumerate(folds, start=1):
        prep = build(features, candidate).named_steps["prep"]
        seen, unseen = prep.fit_transform(X[fit_idx]), prep.transform(X[val_idx])
        for value, score in zip(values, scores, strict=True):
            model = clone(candidate.estimator).set_params(**({parameter: value} if parameter else {})).fit(seen, y[fit_idx])
            proba = model.predict_proba(unseen)
            predicted = model.classes_[proba.argmax(axis=1)]
            score["f1_macro"].append(f1_score(y[val_idx], predicted, average="macro"))
            score["accuracy"].append(accuracy_score(y[val_idx], predicted))
            score["log_loss"].append(log_loss(y[val_idx], proba, labels=model.classes_))
        log.info("%s fold %d/%d: macro F1 %s (%.1fs)", tag, k, len(folds), " ".join(f"{s['f1_macro'][-1]:.3f}" for s in scores),
                 time.perf_counter() - started)
        if k < len(folds) and out_of_time():
            return None
    return scores


def compare(X: np.ndarray, y: np.ndarray, features: list[dict[str, Any]], settings: Settings,
            options: dict[str, Candidate]) -> tuple[str, dict[str, Any]]:
    """Cross-validate each candidate, fold by fold with progress, until the time budget runs out
    (the first candidate always completes). A candidate with a grid is scored at each of its values on
    the same folds (the preprocessing fitted once a fold) and keeps its best; above `search_rows` rows it
    keeps its default (measured on 20,000 reviews: the search chose C=3 for CV macro F1 0.904 against 0.906 at
    the default, and took 227 s against 128 s). The winner is the best on `settings.selection_metric`. Returns the winner and every candidate's result."""
    began = time.perf_counter()
    deadline = began + settings.train_budget_seconds
    metric = settings.selection_metric
    rows = comparison_rows(y, settings)
    if len(rows) < len(y):
        log.info("comparing on a stratified sample of %d of %d rows; the winner is refit on all of them", len(rows), len(y))
    Xs, ys = X[rows], y[rows]
    folds = list(StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=settings.seed).split(Xs, ys))
    results: dict[str, Any] = {}

    def best_of(scores: list[dict[str, list[float]]]) -> tuple[int, list[dict[str, float]]]:
        means = [{m: float(np.mean(v)) for m, v in score.items()} for score in scores]
        return max(range(len(means)), key=lambda j: _better(metric, means[j][metric])), means

    for i, (name, candidate) in enumerate(options.items(), start=1):
        tag = f"[{i}/{len(options)}] {name:<22}"
        done = [r for r in results.values() if "f1_macro_mean" in r]
        out_of_time = (lambda: time.perf_counter() > deadline) if done else (lambda: False)  # the first always completes
        if done and time.perf_counter() > deadline:
            results[name] = {"family": name, "skipped": f"the time budget ({settings.train_budget_seconds:g} s) ran out first"}
            log.info("%s skipped: the time budget (%g s) ran out", tag, settings.train_budget_seconds)
            continue
        started = time.perf_counter()
        parameter, values = candidate.grid or ("", (None,))
        if parameter and len(rows) > settings.search_rows:  # measured: on many rows the search costs much and finds little
            parameter, values = "", (None,)
            log.info("%s %d rows: its default regularisation, no search (above SEARCH_ROWS %d)", tag, len(rows), settings.search_rows)
        scores = _cross_validate(features, candidate, Xs, ys, folds, parameter, values, tag, out_of_time)
        if scores is None:
            results[name] = {"family": name, "skipped": "the time budget ran out before its folds were done"}
            log.info("%s stopped: the time budget ran out", tag)
            continue
        pick, means = best_of(scores)
        search: dict[str, Any] | None = {"parameter": parameter, "values": list(values), f"{metric}_means": [m[metric] for m in means],
                  "chosen": values[pick]} if parameter else None
        results[name] = {
            "family": name,
            "f1_macro_mean": means[pick]["f1_macro"],
            "f1_macro_std": float(np.std(scores[pick]["f1_macro"])),
            "accuracy_mean": means[pick]["accuracy"],
            "log_loss_mean": means[pick]["log_loss"],
            "seconds": time.perf_counter() - started,
            "rows": len(rows),
            "params": {parameter: values[pick]} if parameter else {},
            **({"search": search} if search else {}),
        }
        log.info("%s CV %smacro F1 %.3f ± %.3f%s  (%.1fs; %.1fs elapsed)", tag,
                 "" if metric == "f1_macro" else f"{METRICS[metric]} {means[pick][metric]:.3f}, ",
                 results[name]["f1_macro_mean"], results[name]["f1_macro_std"],
                 f", {parameter.rsplit('__', 1)[-1]}={values[pick]:g} of {len(search['values'])} tried" if search else "",
                 results[name]["seconds"], time.perf_counter() - began)
    scored = [n for n, r in results.items() if "f1_macro_mean" in r]
    best = max(scored, key=lambda n: (round(_better(metric, results[n][f"{metric}_mean"]), 6), -results[n]["log_loss_mean"]))
    return best, results


def score_champion(s3, settings: Settings, champion: dict[str, Any], features: list[dict[str, Any]],
                   X_test: np.ndarray, y_test: list[str], labels: list[str], signed: artifacts.Signatures) -> tuple[dict[str, Any] | None, str | None]:
    """The champion's scores on this run's holdout, or why it could not be scored."""
    try:
        manifest, pipeline, encoder = artifacts.load_verified(s3, settings.model_bucket, champion["version"], signed)
    except artifacts.ArtifactRejected as err:
        return None, str(err)
    schema = [(f["name"], f["type"]) for f in manifest["features"]]
    if schema != [(f["name"], f["type"]) for f in features]:
        return None, "the champion has a different feature schema"
    predicted = [str(c) for c in encoder.inverse_transform(pipeline.predict(X_test))]
    return evaluate(y_test, predicted, None, labels), None


def gate(settings: Settings, challenger: dict[str, Any], champion: dict[str, Any] | None, champion_note: str | None,
         has_champion: bool, contract_change: str | None = None, training_doubts: list[str] | None = None) -> tuple[bool, str]:
    acc, f1 = challenger["accuracy"], challenger["f1_macro"]
    if acc < settings.accuracy_floor:
        return False, f"holdout accuracy {acc:.3f} is below the floor {settings.accuracy_floor}"
    if training_doubts:  # the holdout may still look fine; the data it was trained on does not: a person looks first
        return False, (f"not promoted automatically: {'; '.join(training_doubts)}; review the feedback, then "
                       "`make promote VERSION=<this version>` if it is sound")
    if not has_champion:
        return True, f"first model; holdout accuracy {acc:.3f} clears the floor {settings.accuracy_floor}"
    if contract_change:  # the live API's input or answers would change under its callers: a person decides
        return False, (f"not promoted automatically: the API would change ({contract_change}); "
                       "`make promote VERSION=<this version> YES=1` if that is intended")
    if champion is None:
        return True, f"holdout accuracy {acc:.3f} clears the floor; the champion could not be compared ({champion_note})"
    limit = champion["f1_macro"] - settings.regression_tolerance
    if f1 < limit:
        return False, (f"holdout macro F1 {f1:.3f} regresses against the champion's {champion['f1_macro']:.3f} "
                       f"beyond the tolerance {settings.regression_tolerance}")
    return True, f"holdout macro F1 {f1:.3f} vs champion {champion['f1_macro']:.3f} (tolerance {settings.regression_tolerance})"


def cv_collapse(settings: Settings, winner_cv: dict[str, Any], champion_manifest: dict[str, Any] | None, prefix: str) -> str | None:
    """Why the challenger's cross-validation says its training data got worse than the champion's (same dataset), or None:
    mislabelled rows (feedback above all) lower CV on the training rows long before a frozen holdout notices."""
    if not champion_manifest or (champion_manifest.get("dataset") or {}).get("prefix") != prefix:
        return None
    name = (champion_manifest.get("model") or {}).get("name")
    before = ((champion_manifest.get("metrics") or {}).get("cv") or {}).get(name, {}).get("f1_macro_mean")
    now = winner_cv.get("f1_macro_mean")
    if isinstance(before, int | float) and isinstance(now, int | float) and now < before - settings.cv_drop_tolerance:
        return (f"CV macro F1 on the training rows fell from {before:.3f} (the champion's) to {now:.3f}, more than "
                f"{settings.cv_drop_tolerance}: the training data may be mislabelled")
    return None


def importances(pipeline, features: list[dict[str, Any]], X: np.ndarray, y: np.ndarray, labels: list[str], seed: int) -> dict[str, Any]:
    """Global importances for the model card: how much holdout accuracy drops when a feature's values are
    shuffled (permutation importance: any model, on rows it never saw), and for linear models on text the
    words that weigh most for each class."""
    from sklearn.inspection import permutation_importance

    rows = np.random.default_rng(seed).permutation(len(y))[:2000]
    result = permutation_importance(pipeline, X[rows], y[rows], scoring="accuracy", n_repeats=3, random_state=seed)
    ranked = sorted(zip(features, result.importances_mean, result.importances_std, strict=True), key=lambda t: -t[1])
    out: dict[str, Any] = {"method": "permutation (holdout accuracy drop, 3 repeats)",
                           "features": [{"feature": f["name"], "importance": round(float(m), 4), "std": round(float(sd), 4)}
                                        for f, m, sd in ranked]}
    weights = linear_weights(pipeline.named_steps["model"])
    if weights is not None and any(f["type"] == "text" for f in features):
        sources = column_sources(pipeline.named_steps["prep"], features)
        relative = weights - weights.mean(axis=0, keepdims=True)
        out["terms"] = {labels[k]: _top_terms(sources, relative[k], 8) for k in range(relative.shape[0])}
    return out


def _top_terms(sources: list[tuple[str, str | None]], weights: np.ndarray, count: int) -> list[str]:
    """The `count` readable terms that weigh most for a class (columns with no term, such as letter n-grams, are passed
    over, not counted), leaving out a pair of words whose words are already listed."""
    chosen: list[str] = []
    words: set[str] = set()
    for j in np.argsort(-weights):
        feature, term = sources[j]
        if not term or weights[j] <= 0 or (" " in term and set(term.split()) & words):
            continue
        chosen.append(f"{feature}: {term}")
        words |= set(term.split())
        if len(chosen) == count:
            break
    return chosen


def serving_features(features: list[dict[str, Any]], rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The manifest's feature schema: the spec's, plus how missing numerics are handled, an example per feature,
    and reference values (training quantiles, frequent categories) the explainer compares a record with."""
    complete = rows.dropna(subset=[f["name"] for f in features])
    example = complete.iloc[0] if len(complete) else None
    out = []
    for f in features:
        column = rows[f["name"]]
        entry = {**f, "imputed": "median"} if f["type"] == "numeric" else dict(f)
        if "example" not in entry and example is not None:
            value = example[f["name"]]
            entry["example"] = float(value) if f["type"] == "numeric" else str(value)
        if f["type"] == "numeric" and column.notna().any():
            entry["reference"] = [round(float(q), 6) for q in column.quantile([0.1, 0.3, 0.5, 0.7, 0.9])]
        elif f["type"] == "categorical":
            entry["reference"] = [str(v) for v in column[column != ""].value_counts().index[:5]]
        out.append(entry)
    return out


def frozen_holdout(s3, settings: Settings, ds, feedback_rows: int, now: datetime) -> tuple[dict[str, Any], np.ndarray]:
    """The dataset's evaluation rows, chosen when it was pushed (or, for data put there another way, at its first
    training) and kept in <prefix>/evaluation.json, so every challenger and the champion are scored on rows none
    of them trained on. Feedback only ever joins training."""
    key = layout.evaluation_key(settings.dataset_prefix)
    frozen = read_evaluation(s3, settings.dataset_bucket, settings.dataset_prefix)
    if frozen is None:
        frozen = new_evaluation(ds.row_keys, ds.frame[ds.target].tolist(), settings.holdout_fraction, now.isoformat())
        s3.put_object(Bucket=settings.dataset_bucket, Key=key, Body=json.dumps(frozen).encode(), ContentType="application/json")
        log.info("evaluation rows frozen: %d of %d (s3://%s/%s)", frozen["rows"], len(ds.row_keys), settings.dataset_bucket, key)
    chosen_keys = set(frozen["keys"])
    mask = np.array([k in chosen_keys for k in ds.row_keys] + [False] * feedback_rows)
    if not mask.any():
        raise DataError(f"none of the frozen evaluation rows ({key}) is in the data any more; delete it to choose new ones")
    return {"key": key, "created_at": frozen["created_at"], "rows": int(mask.sum())}, mask


def run(settings: Settings, s3, cloudwatch=None, *, only_if_no_champion: bool = False, promote: bool = True,
        trigger: str = "cli", follow_champion: bool = False) -> Outcome:
    champion = artifacts.read_champion(s3, settings.model_bucket)
    if only_if_no_champion and champion:
        try:  # a champion that cannot be served (unsigned, tampered, another scikit-learn) is as good as none
            artifacts.load_verified(s3, settings.model_bucket, champion["version"], artifacts.signatures(settings))
            log.info("champion %s exists; nothing to train", champion["version"])
            return Outcome(version=champion["version"], promoted=False, reason="champion exists")
        except artifacts.ArtifactRejected as err:
            log.warning("champion %s cannot be served (%s); training one that can", champion["version"], err)
    if (trigger == "schedule" or follow_champion) and champion:  # the champion's own dataset, kept fresh whatever it is
        try:
            prefix = (artifacts.read_manifest(s3, settings.model_bucket, champion["version"]).get("dataset") or {}).get("prefix")
        except (ClientError, artifacts.ArtifactRejected):
            prefix = None
        if prefix and prefix != settings.dataset_prefix.strip("/"):
            log.info("retraining the champion's dataset %s", prefix)
            settings = settings.model_copy(update={"dataset_prefix": prefix})
    started = time.perf_counter()
    now = datetime.now(UTC)
    dataset_name = settings.dataset_prefix.strip("/").rsplit("/", 1)[-1]
    try:
        outcome = _train(settings, s3, champion, now, promote, trigger)
    except DataError as err:
        log.error("training failed: %s", err)
        if cloudwatch is not None:
            metrics.publish(cloudwatch, settings.metrics_namespace, dataset_name, {"TrainingFailed": (1, "Count")})
        raise
    if cloudwatch is not None:
        holdout = outcome.metrics["holdout"]
        metrics.publish(cloudwatch, settings.metrics_namespace, dataset_name, {
            "TrainingDuration": (time.perf_counter() - started, "Seconds"),
            "TrainingFailed": (0, "Count"),
            "HoldoutAccuracy": (holdout["accuracy"], "None"),
            "HoldoutF1Macro": (holdout["f1_macro"], "None"),
            "ModelPromoted": (1 if outcome.promoted else 0, "Count"),
            "FeedbackQuarantined": (len(outcome.quarantined), "Count"),
        })
    return outcome


def _train(settings: Settings, s3, champion: dict[str, Any] | None, now: datetime, promote: bool, trigger: str) -> Outcome:
    started = time.perf_counter()
    signed = artifacts.signatures(settings)  # verifies the champion, signs the new manifest
    log.info("reading s3://%s/%s", settings.dataset_bucket, settings.dataset_prefix)
    ds = load_dataset(s3, settings.dataset_bucket, settings.dataset_prefix)
    base_classes = set(ds.frame[ds.target].unique())
    fb = load_feedback(s3, settings.dataset_bucket, settings.feedback_prefix, settings.quarantine_prefix, ds.spec, base_classes, now.isoformat())
    for q in fb.quarantined:
        log.warning("quarantined feedback %s: %s", q["key"], q["reason"])
    fb = screen(fb, len(ds.frame), settings.feedback_max_share)
    if fb.screen.get("left_out_count"):
        log.warning("feedback capped at %d rows (%g of the rows trained on): the newest are used, %d older ones wait in S3",
                    fb.screen["cap"], settings.feedback_max_share, fb.screen["left_out_count"])
    for anomaly in fb.screen["anomalies"]:
        log.warning("feedback anomaly: %s", anomaly)
    frame = pd.concat([ds.frame, fb.rows.astype(ds.frame.dtypes.to_dict())], ignore_index=True) if len(fb.rows) else ds.frame
    log.info("dataset %s: %d rows (%d from feedback), %d features, target %r",
             ds.spec.get("name"), len(frame), len(fb.rows), len(ds.features), ds.target)

    y_labels = frame[ds.target].to_numpy()
    check_classes(y_labels, settings.cv_folds)
    encoder = LabelEncoder().fit(y_labels)
    labels = [str(c) for c in encoder.classes_]
    evaluation, in_holdout = frozen_holdout(s3, settings, ds, len(frame) - len(ds.frame), now)
    X = to_matrix(frame, ds.features)  # the same function builds the API's records
    y = encoder.transform(y_labels)
    X_train, X_test, y_train, y_test = X[~in_holdout], X[in_holdout], y[~in_holdout], y[in_holdout]
    train_counts = pd.Series(y_labels[~in_holdout]).value_counts()
    short = {c: int(train_counts.get(c, 0)) for c in labels if train_counts.get(c, 0) < settings.cv_folds}
    if short:
        raise DataError(f"outside the frozen evaluation rows, class(es) have too few rows for {settings.cv_folds}-fold CV: {short}")
    options = choose_candidates(ds.features, len(y_train), settings)
    best, cv_results = compare(X_train, y_train, ds.features, settings, options)
    fit_started = time.perf_counter()
    log.info("refitting %s on all %d training rows ...", best, len(y_train))
    pipeline = build(ds.features, options[best], cv_results[best]["params"]).fit(X_train, y_train)
    fit_seconds = time.perf_counter() - fit_started
    log.info("refit in %.1fs", fit_seconds)
    y_test_labels = [labels[i] for i in y_test]
    predicted = [labels[i] for i in pipeline.predict(X_test)]
    holdout = evaluate(y_test_labels, predicted, pipeline.predict_proba(X_test), labels)
    log.info("winner %s: holdout accuracy %.3f, macro F1 %.3f, log loss %.3f",
             best, holdout["accuracy"], holdout["f1_macro"], holdout["log_loss"])
    explained = importances(pipeline, ds.features, X_test, y_test, labels, settings.seed)
    onnx_body, serving = onnx_export.export(pipeline, ds.features, X_test)
    log.info("most important: %s", ", ".join(f"{f['feature']} {f['importance']:.3f}" for f in explained["features"][:5]))

    champion_scores, champion_note, change, champion_manifest = None, None, None, None
    if champion:
        try:
            champion_manifest = artifacts.read_manifest(s3, settings.model_bucket, champion["version"])
            change = artifacts.contract_change(champion_manifest, ds.features, labels)
        except (ClientError, artifacts.ArtifactRejected):
            change = None  # an unreadable champion manifest: score_champion below says why it cannot compare
        champion_scores, champion_note = score_champion(s3, settings, champion, ds.features, X_test, y_test_labels, labels, signed)
        if champion_scores:
            log.info("champion %s on the same holdout: accuracy %.3f, macro F1 %.3f",
                     champion["version"], champion_scores["accuracy"], champion_scores["f1_macro"])
    doubts = [f"feedback looks anomalous ({a})" for a in fb.screen["anomalies"]]
    collapse = cv_collapse(settings, cv_results[best], champion_manifest, settings.dataset_prefix.strip("/"))
    doubts += [collapse] if collapse else []
    decision, reason = gate(settings, holdout, champion_scores, champion_note, champion is not None, change, doubts)
    decision = decision and promote

    version = new_version(now)
    log.info("writing artifacts to s3://%s/%s", settings.model_bucket, layout.model_prefix(version))
    bodies = {"pipeline": artifacts.dump(pipeline), "label_encoder": artifacts.dump(encoder), **({"onnx": onnx_body} if onnx_body else {})}
    written = {name: artifacts.put_artifact(s3, settings.model_bucket, layout.artifact_key(version, name), body)
               for name, body in bodies.items()}
    manifest = {
        "format": 1,
        "version": version,
        "created_at": now.isoformat(),
        "trigger": trigger,
        "dataset": {
            "name": ds.spec.get("name"),
            "prefix": settings.dataset_prefix.strip("/"),  # where its data and its feedback live
            "version": ds.version,
            "sources": ds.sources,
            "feedback": {"objects": len(fb.sources), "sources": fb.sources[:1000], "quarantined": fb.quarantined, "screen": fb.screen},
            "rows": len(frame),
        },
        "spec": ds.spec,
        "target": ds.target,
        # the serving contract: numeric features are imputed by the pipeline, so the API accepts them null or absent;
        # each feature has an example (the spec's, or a real training row's) for `predict --example` and the page
        "features": serving_features(ds.features, frame[: len(ds.frame)][~in_holdout[: len(ds.frame)]]),
        "segments": ds.spec.get("segments", []),
        "input": {"layout": "2-D array, columns in feature order", "dtype": "float" if X.dtype == float else "object"},
        "classes": labels,
        "artifacts": written,
        "serving": serving,  # onnx when a faithful ONNX conversion was written (the predictor prefers it), else joblib
        "libraries": _libraries(),
        "model": {"name": best, "family": best, "estimator": options[best].family,
                  "params": {k: repr(v) for k, v in pipeline.named_steps["model"].get_params().items()}, "dense_input": options[best].dense},
        "reproduce": {"seed": settings.seed, "holdout_fraction": settings.holdout_fraction, "cv_folds": settings.cv_folds,
                      "compare_rows": settings.compare_rows, "train_budget_seconds": settings.train_budget_seconds,
                      "selection_metric": settings.selection_metric,
                      "split": "the dataset's frozen evaluation rows (evaluation.json) as holdout; StratifiedKFold(shuffle=True) on the rest"},
        "evaluation": evaluation,
        "importances": explained,
        "metrics": {"cv": cv_results, "holdout": holdout, "train_rows": len(y_train),
                    "champion_on_holdout": champion_scores},
        # "passed": what the gate decided. Whether a version is (or was) the champion is the pointer's to say, never
        # the manifest's: a run interrupted between the two must not leave a manifest claiming a promotion.
        "gate": {"passed": decision, "reason": reason if promote else f"{reason}; promotion disabled",
                 "champion_before": champion["version"] if champion else None,
                 "accuracy_floor": settings.accuracy_floor, "regression_tolerance": settings.regression_tolerance},
        "timings": {"fit_seconds": fit_seconds, "total_seconds": time.perf_counter() - started},
    }
    canary = decision and champion is not None and settings.canary_percent > 0
    if canary:  # the gate passed; live traffic decides the rest
        manifest["gate"].update({"passed": True, "candidate": True,
                                 "reason": f"{reason}; on trial as a candidate for {settings.canary_percent:g}% of predictions"})
    artifacts.put_manifest(s3, settings.model_bucket, manifest, signed)
    if canary and champion:
        artifacts.propose(s3, settings.model_bucket, version, settings.canary_percent, reason, now.isoformat(), champion["version"])
        log.info("candidate %s for %g%% of predictions: %s", version, settings.canary_percent, reason)
        decision = False
    elif decision:
        artifacts.promote(s3, settings.model_bucket, version, reason, now.isoformat())
        log.info("promoted %s: %s", version, reason)
    else:
        log.info("not promoted %s: %s", version, manifest["gate"]["reason"])
    return Outcome(version=version, promoted=decision, reason=manifest["gate"]["reason"],
                   metrics=manifest["metrics"], quarantined=fb.quarantined, model=best)

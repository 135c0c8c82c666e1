"""Stage 3 of a training run, the evaluation: the winner scored once on the frozen evaluation rows, the champion
scored on the same rows, global importances for the model card, and the gate's decision."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from botocore.exceptions import ClientError
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support

from sommelier_contract.artifacts import ArtifactRejected, Signatures, contract_change, load_verified, read_manifest
from sommelier_contract.experts import PRESENCE, blocks_of
from sommelier_contract.explain import column_sources, linear_weights
from sommelier_contract.manifest import CvResult, Explanations, Manifest, Scores
from sommelier_contract.pointers import Champion
from trainer.compare import Winner
from trainer.config import Settings
from trainer.data import TrainingData

log = logging.getLogger("trainer")


def scores(y_true: list[str], y_pred: list[str], proba: np.ndarray | None, labels: list[str]) -> Scores:
    """Holdout scores in label space, so models with different encoders compare."""
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return Scores(
        accuracy=float(accuracy_score(y_true, y_pred)),
        f1_macro=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        f1_weighted=float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        per_class={label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
                   for i, label in enumerate(labels)},
        confusion_matrix={"labels": labels, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
        rows=len(y_true),
        log_loss=float(log_loss(y_true, proba, labels=labels)) if proba is not None else None,
    )


def score_champion(s3, settings: Settings, champion: Champion, data: TrainingData, signed: Signatures) -> tuple[Scores | None, str | None]:
    """The champion's scores on this run's holdout, or why it could not be scored."""
    try:
        manifest, pipeline, encoder = load_verified(s3, settings.model_bucket, champion.version, signed)
    except ArtifactRejected as err:
        return None, str(err)
    if [(f["name"], f["type"]) for f in manifest.features] != [(f["name"], f["type"]) for f in data.features]:
        return None, "the champion has a different feature schema"
    predicted = [str(c) for c in encoder.inverse_transform(pipeline.predict(data.X_test))]
    return scores(data.y_test_labels, predicted, None, data.labels), None


def gate(settings: Settings, challenger: Scores, champion: Scores | None, champion_note: str | None,
         has_champion: bool, contract_change: str | None = None, training_doubts: list[str] | None = None) -> tuple[bool, str]:
    acc, f1 = challenger.accuracy, challenger.f1_macro
    if acc < settings.accuracy_floor:
        return False, f"holdout accuracy {acc:.3f} is below the floor {settings.accuracy_floor}"
    if training_doubts:  # the holdout may still look fine; the data it was trained on does not: a person looks first
        also = f" (it would also change the API: {contract_change})" if contract_change and has_champion else ""
        return False, (f"not promoted automatically: {'; '.join(training_doubts)}{also}; review the feedback, then "
                       f"`make promote VERSION=<this version>{' YES=1' if also else ''}` if it is sound")
    if not has_champion:
        return True, f"first model; holdout accuracy {acc:.3f} clears the floor {settings.accuracy_floor}"
    if contract_change:  # the live API's input or answers would change under its callers: a person decides
        return False, (f"not promoted automatically: the API would change ({contract_change}); "
                       "`make promote VERSION=<this version> YES=1` if that is intended")
    if champion is None:
        return True, f"holdout accuracy {acc:.3f} clears the floor; the champion could not be compared ({champion_note})"
    limit = champion.f1_macro - settings.regression_tolerance
    if f1 < limit:
        return False, (f"holdout macro F1 {f1:.3f} regresses against the champion's {champion.f1_macro:.3f} "
                       f"beyond the tolerance {settings.regression_tolerance}")
    return True, f"holdout macro F1 {f1:.3f} vs champion {champion.f1_macro:.3f} (tolerance {settings.regression_tolerance})"


def cv_collapse(settings: Settings, winner_cv: CvResult, champion_manifest: Manifest | None, prefix: str,
                features: list[dict]) -> str | None:
    """Why the challenger's cross-validation says its training data got worse than the champion's (same dataset and
    columns), or None: mislabelled rows (feedback above all) lower CV on the training rows long before a frozen holdout
    notices. With other columns (`features`) the scores differ for that reason, and the gate says the API changes."""
    if not champion_manifest or champion_manifest.dataset.prefix != prefix:
        return None
    if [f["name"] for f in champion_manifest.features] != [f["name"] for f in features]:
        return None  # other columns score otherwise (the place names left out, say): not a sign of mislabelled rows
    before = champion_manifest.winner.f1_macro_mean if champion_manifest.winner else None
    now = winner_cv.f1_macro_mean
    if before is not None and now is not None and now < before - settings.cv_drop_tolerance:
        return (f"CV macro F1 on the training rows fell from {before:.3f} (the champion's) to {now:.3f}, more than "
                f"{settings.cv_drop_tolerance}: the training data may be mislabelled")
    return None


def importances(pipeline, features: list[dict], X: np.ndarray, y: np.ndarray, labels: list[str], seed: int) -> Explanations:
    """Global importances for the model card: how much holdout accuracy drops when a feature's values are
    shuffled (permutation importance: any model, on rows it never saw), and for linear models on text the
    words that weigh most for each class."""
    from sklearn.inspection import permutation_importance

    # on up to 1,000 holdout rows: each repeat runs the whole pipeline again (text is tokenized again), and the ranking
    # of features settles long before (measured: 90 s of a 5,800-row run on 2,000 rows with letter n-grams)
    rows = np.random.default_rng(seed).permutation(len(y))[:1000]
    prep = pipeline.named_steps["prep"]
    if PRESENCE in getattr(prep, "output_indices_", {}):
        means, stds = _shuffled_blocks(pipeline, X[rows], y[rows], seed)
    else:
        result = permutation_importance(pipeline, X[rows], y[rows], scoring="accuracy", n_repeats=3, random_state=seed)
        means, stds = result.importances_mean, result.importances_std
    ranked = sorted(zip(features, means, stds, strict=True), key=lambda t: -t[1])
    terms = None
    weights = linear_weights(pipeline.named_steps["model"])
    if weights is not None and any(f["type"] == "text" for f in features):
        sources = column_sources(pipeline.named_steps["prep"], features)
        relative = weights - weights.mean(axis=0, keepdims=True)
        terms = {labels[k]: _top_terms(sources, relative[k], 8) for k in range(relative.shape[0])}
    return Explanations(method="permutation (holdout accuracy drop, 3 repeats)",
                        features=[{"feature": f["name"], "importance": round(float(m), 4), "std": round(float(sd), 4)}
                                  for f, m, sd in ranked], terms=terms)


def _shuffled_blocks(pipeline, X: np.ndarray, y: np.ndarray, seed: int, repeats: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Permutation importance for a pipeline whose preprocessing writes each feature in columns of its own (a model of
    every subset, sommelier_contract.experts): shuffling a feature's values is shuffling its columns and its presence
    column, so the records are transformed once, not once a feature and repeat (a 5,810-row run's importances with
    letter n-grams: 14 s -> well under a second). The same figures as scikit-learn's permutation_importance."""
    from scipy import sparse

    prep, model = pipeline.named_steps["prep"], pipeline.named_steps["model"]
    Z = prep.transform(X)
    Z = sparse.csr_matrix(Z)
    base = float(np.mean(model.predict(Z) == y))
    rng = np.random.default_rng(seed)
    blocks = blocks_of(prep)
    drops = np.zeros((len(blocks), repeats))
    for k, (start, stop, flag) in enumerate(blocks):
        mine = np.zeros(Z.shape[1])
        mine[start:stop] = 1.0
        mine[flag] = 1.0
        own, rest = sparse.diags(mine), sparse.diags(1.0 - mine)
        for r in range(repeats):
            shuffled = Z @ rest + Z[rng.permutation(len(y))] @ own
            drops[k, r] = base - float(np.mean(model.predict(shuffled) == y))
    return drops.mean(axis=1), drops.std(axis=1)


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


@dataclass(frozen=True)
class Verdict:
    """The winner measured, beside the champion, and what the gate made of it."""

    holdout: Scores
    champion: Scores | None
    explained: Explanations
    passed: bool
    reason: str
    predicted: list[str] = field(default_factory=list)  # the winner's answers on the holdout, and how sure it was
    confidence: list[float] = field(default_factory=list)


def assess(settings: Settings, s3, data: TrainingData, winner: Winner, champion: Champion | None, signed: Signatures) -> Verdict:
    """Score the winner and the champion on the frozen evaluation rows, explain the winner, and gate it."""
    pipeline = winner.pipeline
    proba = pipeline.predict_proba(data.X_test)
    predicted = [data.labels[i] for i in pipeline.classes_[proba.argmax(axis=1)]]  # the holdout transformed once
    holdout = scores(data.y_test_labels, predicted, proba, data.labels)
    log.info("winner %s: holdout accuracy %.3f, macro F1 %.3f, log loss %.3f",
             winner.name, holdout.accuracy, holdout.f1_macro, holdout.log_loss)
    explained = importances(pipeline, data.features, data.X_test, data.y_test, data.labels, settings.seed)
    log.info("most important: %s", ", ".join(f"{f['feature']} {f['importance']:.3f}" for f in explained.features[:5]))

    champion_scores, champion_note, change, champion_manifest = None, None, None, None
    if champion:
        try:
            champion_manifest = read_manifest(s3, settings.model_bucket, champion.version)
            change = contract_change(champion_manifest, data.api_features, data.labels)
        except (ClientError, ArtifactRejected):
            change = None  # an unreadable champion manifest: score_champion below says why it cannot compare
        champion_scores, champion_note = score_champion(s3, settings, champion, data, signed)
        if champion_scores:
            log.info("champion %s on the same holdout: accuracy %.3f, macro F1 %.3f",
                     champion.version, champion_scores.accuracy, champion_scores.f1_macro)
    doubts = [f"feedback looks anomalous ({a})" for a in data.feedback.screen["anomalies"]]
    collapse = cv_collapse(settings, winner.cv[winner.name], champion_manifest, settings.dataset_prefix.strip("/"), data.features)
    doubts += [collapse] if collapse else []
    passed, reason = gate(settings, holdout, champion_scores, champion_note, champion is not None, change, doubts)
    return Verdict(holdout=holdout, champion=champion_scores, explained=explained, passed=passed, reason=reason,
                   predicted=predicted, confidence=[float(c) for c in proba.max(axis=1)])

"""Stage 2 of a training run, the comparison: the recipes that suit the features, compared by stratified
cross-validation on the training rows only (on a stratified sample of them when there are many) within a time
budget; the winner refit on every training row."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import parallel_backend
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import StratifiedKFold

from sommelier_contract.dataset import DataError
from sommelier_contract.experts import FeatureExperts, leave_out
from sommelier_contract.manifest import CvResult
from sommelier_contract.words import words
from trainer.config import Settings
from trainer.data import TrainingData
from trainer.pipeline import Recipe, build, fit_model, recipes, views

log = logging.getLogger("trainer")


def choose_recipes(features: list[dict[str, Any]], rows: int, settings: Settings) -> dict[str, Recipe]:
    options = recipes(features, rows, settings.seed)
    if settings.families.strip():
        wanted = [n.strip() for n in settings.families.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(options))
        if unknown:
            raise DataError(f"unknown model families {words(unknown)} for this data; choose from {words(sorted(options), 'or')}")
        return {n: options[n] for n in wanted}
    return {n: r for n, r in options.items() if r.compared}


def comparison_rows(y: np.ndarray, settings: Settings) -> np.ndarray:
    """Indexes of the rows the recipes are compared on: all of them, or a stratified sample of large data
    (the ranking of recipes settles long before the rows run out; the winner is refit on everything). A class
    the sample's proportion would leave with fewer than two rows per fold keeps that many (or all it has), so every
    fold sees every class."""
    if len(y) <= settings.compare_rows:
        return np.arange(len(y))
    rng = np.random.default_rng(settings.seed)
    share = settings.compare_rows / len(y)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        take = min(len(members), max(round(share * len(members)), 2 * settings.cv_folds))
        chosen.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(chosen))


METRICS = {"f1_macro": "macro F1", "accuracy": "accuracy", "log_loss": "log loss"}  # what the winner may be chosen on


def _better(metric: str, mean: float) -> float:
    """A score where higher is better, whichever metric."""
    return -mean if metric == "log_loss" else mean


def probabilities(model: Any, X: Any) -> np.ndarray:
    """Class probabilities; for an SVM compared before its calibration, the softmax of its decision function (its
    ranking of classes, which is all accuracy and macro F1 read; its log loss is only indicative)."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    scores = model.decision_function(X)
    scores = np.column_stack([-scores, scores]) if scores.ndim == 1 else scores
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)


@contextmanager
def solver_warnings(tag: str):
    """A solver that stopped before it converged is one line in the trainer's words, not a library warning with paths."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield
    stopped = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if stopped:
        log.info("%s the solver stopped at its iteration limit before converging (%d fit(s)); its scores are as measured",
                 tag.strip(), len(stopped))
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


KEEP_FOLDS_ROWS = 5_000  # up to this many compared rows, each fold's features are kept for a widened grid's values


def _cross_validate(features: list[dict[str, Any]], recipe: Recipe, X: np.ndarray, y: np.ndarray, folds: list,
                    parameter: str, values: tuple, tag: str, out_of_time: Callable[[], bool],
                    kept: dict[int, tuple] | None = None, calibrated: bool = False) -> list[dict[str, Any]] | None:
    """Scores of the recipe at each value of `parameter` ("" for none) on each fold, the preprocessing fitted once a
    fold; None when `out_of_time` said stop before the last fold. A recipe that answers any subset of the features is
    scored on each fold's held-out rows as callers send them (pipeline.views: whole, the text with some of the others, the
    text alone), each score the mean over those views (each view's own under "views"). `kept`, when given: each fold's
    preprocessing and features, filled on the first call and reused by the next (a widened grid's further value).
    `calibrated`: a model of every subset fitted as it is served (its experts weighted), not as the search compares it."""
    started = time.perf_counter()
    scores: list[dict[str, Any]] = [{} for _ in values]  # per value: view -> metric -> one score a fold
    shared: dict[int, Any]
    for k, (fit_idx, val_idx) in enumerate(folds, start=1):
        if kept is not None and k in kept:
            prep, seen, unseen, shared = kept[k]
        else:
            prep = build(features, recipe).named_steps["prep"]
            seen, whole = prep.fit_transform(X[fit_idx]), prep.transform(X[val_idx])
            unseen = {"whole rows": whole}
            if recipe.per_feature:  # the held-out rows as callers send them, each view made from the whole rows' features
                for name, keep in views(len(val_idx), features, np.random.default_rng(k)).items():
                    unseen.setdefault(name, leave_out(prep, whole, keep))
            shared = {}
            if kept is not None:
                kept[k] = (prep, seen, unseen, shared)
        for value, score in zip(values, scores, strict=True):
            with solver_warnings(tag):
                estimator = clone(recipe.estimator).set_params(**({parameter: value} if parameter else {}))
                if calibrated:
                    estimator.set_params(calibrate=True)
                model = fit_model(estimator, prep, seen, y[fit_idx], None if calibrated else shared)
            for name, Z in unseen.items():
                proba = probabilities(model, Z)
                predicted = model.classes_[proba.argmax(axis=1)]
                view = score.setdefault(name, {"f1_macro": [], "accuracy": [], "log_loss": []})
                view["f1_macro"].append(f1_score(y[val_idx], predicted, average="macro"))
                view["accuracy"].append(accuracy_score(y[val_idx], predicted))
                view["log_loss"].append(log_loss(y[val_idx], proba, labels=model.classes_))
        log.info("%s fold %d/%d: macro F1 %s (%.1fs)", tag, k, len(folds),
                 ", ".join(" / ".join(f"{v['f1_macro'][-1]:.3f}" for v in s.values())
                           + (f" at {parameter.rsplit('__', 1)[-1]}={value:g}" if parameter else "") for value, s in zip(values, scores, strict=True))
                 + (f" ({', '.join(unseen)})" if len(unseen) > 1 else ""), time.perf_counter() - started)
        if k < len(folds) and out_of_time():
            return None
    return scores


WIDEN = 2  # steps a grid may widen by when its best value sits at an edge
LARGE_FOLDS = 3  # folds of a comparison on more rows than SEARCH_ROWS, and of its search (130,000 reviews: 344 -> ~300 s)


def _search(features: list[dict[str, Any]], recipe: Recipe, X: np.ndarray, y: np.ndarray, folds: list, parameter: str, values: tuple,
            tag: str, out_of_time: Callable[[], bool], metric: str, kept: dict[int, tuple] | None, calibrated: bool = False
            ) -> tuple[tuple, list[dict[str, Any]], int, list[dict[str, float]]] | None:
    """The recipe cross-validated at each value of `parameter` on `folds`, the grid widened by a step (up to WIDEN times)
    while the best value sits at its edge: (values tried, their scores, the best's index, their mean scores), or None when
    the time budget ran out first."""
    scores = _cross_validate(features, recipe, X, y, folds, parameter, values, tag, out_of_time, kept, calibrated)
    if scores is None:
        return None
    pick, means = _best(scores, metric)
    for _ in range(WIDEN):  # the best value at an edge of the grid, clearly: one step further out, on the same folds
        if not parameter or len(values) < 2 or 0 < pick < len(values) - 1 or out_of_time():
            break
        inner = 1 if pick == 0 else len(values) - 2
        if not _clearly_better(scores[pick], scores[inner], metric):
            log.info("%s best at the grid's edge (%s=%g), but within the folds' noise of %g: not widened", tag, parameter,
                     values[pick], values[inner])
            break
        further = values[0] ** 2 / values[1] if pick == 0 else values[-1] ** 2 / values[-2]
        log.info("%s best at the grid's edge (%s=%g): trying %g", tag, parameter, values[pick], further)
        more = _cross_validate(features, recipe, X, y, folds, parameter, (further,), tag, out_of_time, kept, calibrated)
        if more is None:
            break
        edge = values[pick]
        values, scores = ((further, *values), more + scores) if pick == 0 else ((*values, further), scores + more)
        pick, means = _best(scores, metric)
        was = values.index(edge)
        if values[pick] == further and not _clearly_better(scores[pick], scores[was], metric):
            # a value further out that wins by less than the folds' noise is a tie, and ties out there cost: measured on
            # 5,810 generated reviews, C=11 chosen over 3.3 on a CV macro F1 0.0016 higher scored 0.066 lower on the test rows
            log.info("%s %s=%g within the folds' noise of %g: %g kept", tag, parameter, further, edge, edge)
            pick = was
            break
    return values, scores, pick, means


def _clearly_better(a: dict[str, Any], b: dict[str, Any], metric: str) -> bool:
    """Whether scores `a` beat `b` (each view -> metric -> one score a fold, on the same folds) by more than the folds'
    noise: the mean of the paired per-fold differences (each fold's score the mean over the views) above their standard
    error."""
    def per_fold(score: dict[str, Any]) -> np.ndarray:
        return np.mean([np.asarray(view[metric], dtype=float) for view in score.values()], axis=0)

    d = per_fold(a) - per_fold(b)
    d = -d if metric == "log_loss" else d
    return len(d) > 1 and float(d.mean()) > float(d.std(ddof=1)) / np.sqrt(len(d))


def _best(scores: list[dict[str, Any]], metric: str) -> tuple[int, list[dict[str, float]]]:
    """The index of the value whose mean `metric` over the views is best, and every value's means over the views (what a
    choice between values and between recipes is made on)."""
    means = [{m: float(np.mean([np.mean(view[m]) for view in score.values()])) for m in ("f1_macro", "accuracy", "log_loss")}
             for score in scores]
    return max(range(len(means)), key=lambda j: _better(metric, means[j][metric])), means


def compare(X: np.ndarray, y: np.ndarray, features: list[dict[str, Any]], settings: Settings,
            options: dict[str, Recipe]) -> tuple[str, dict[str, Any]]:
    """Cross-validate each recipe, fold by fold with progress, until the time budget runs out
    (the first recipe always completes). A recipe with a grid is scored at each of its values on
    the same folds (the preprocessing fitted once a fold) and keeps its best, the grid widened by a step (up to
    WIDEN times) while the best sits at its edge; on more than `search_rows` compared rows the search runs on a stratified
    sample of that many and the recipes are compared, each at its chosen value, on all of them, both in LARGE_FOLDS folds. The
    winner is the best on `settings.selection_metric`.
    Returns the winner and every recipe's result."""
    began = time.perf_counter()
    deadline = began + settings.train_budget_seconds
    metric = settings.selection_metric
    rows = comparison_rows(y, settings)
    if len(rows) < len(y):
        log.info("comparing on a stratified sample of %d of %d rows; the winner is refit on all of them", len(rows), len(y))
    Xs, ys = X[rows], y[rows]
    # many compared rows: each value searched costs a fit a fold (a words-and-letters expert's fold on 16,000 reviews took
    # 25 s a value), so a search runs on a stratified SEARCH_ROWS of them, and every recipe, at the value it chose, is
    # then compared on all of them in LARGE_FOLDS folds (a small sample misleads where classes are many and some small:
    # naive Bayes led on 5,000 of 104,000 reviews, CV macro F1 0.92, and scored 0.73 on the holdout)
    sub = comparison_rows(ys, settings.model_copy(update={"compare_rows": settings.search_rows})) if len(rows) > settings.search_rows else None
    folds = list(StratifiedKFold(n_splits=LARGE_FOLDS if sub is not None else settings.cv_folds, shuffle=True,
                                 random_state=settings.seed).split(Xs, ys))
    sub_folds = [] if sub is None else list(StratifiedKFold(n_splits=LARGE_FOLDS, shuffle=True,
                                                            random_state=settings.seed).split(Xs[sub], ys[sub]))
    results: dict[str, Any] = {}

    for i, (name, recipe) in enumerate(options.items(), start=1):
        tag = f"[{i}/{len(options)}] {name:<22}"
        done = [r for r in results.values() if "f1_macro_mean" in r]
        out_of_time = (lambda: time.perf_counter() > deadline) if done else (lambda: False)  # the first always completes
        if done and time.perf_counter() > deadline:
            results[name] = {"family": name, "skipped": f"the time budget ({settings.train_budget_seconds:g} s) ran out first"}
            log.info("%s skipped: the time budget (%g s) ran out", tag, settings.train_budget_seconds)
            continue
        started = time.perf_counter()
        parameter, values = recipe.grid or ("", (None,))
        # a model of every subset is searched uncalibrated (the summed experts rank a feature's classes as the served model
        # does) and compared as served, its experts weighted, since that decides how a record of several features is answered
        served = recipe.calibrate and isinstance(recipe.estimator, FeatureExperts)
        if parameter and sub is not None:
            log.info("%s searching %s on a stratified %d of the %d compared rows", tag, parameter, len(sub), len(rows))
            found = _search(features, recipe, Xs[sub], ys[sub], sub_folds, parameter, values, tag, out_of_time, metric,
                            {} if len(sub) <= KEEP_FOLDS_ROWS else None)
            if found is not None:
                tried, searched = found[0], [m[metric] for m in found[3]]
                log.info("%s %s=%g chosen; comparing it on all %d rows in %d folds", tag, parameter, tried[found[2]], len(rows), len(folds))
                stage = time.perf_counter()
                found = _search(features, recipe, Xs, ys, folds, parameter, (tried[found[2]],), tag, out_of_time, metric, None, served)
                served = False  # compared as served already
        else:
            kept: dict[int, tuple] | None = {} if parameter and len(rows) <= KEEP_FOLDS_ROWS else None
            stage = time.perf_counter()
            found = _search(features, recipe, Xs, ys, folds, parameter, values, tag, out_of_time, metric, kept)
            if found is not None:
                tried, searched = found[0], [m[metric] for m in found[3]]
        if found is None:
            results[name] = {"family": name, "skipped": "the time budget ran out before its folds were done"}
            log.info("%s stopped: the time budget ran out", tag)
            continue
        values, scores, pick, means = found
        chosen = values[pick]
        fits = len(folds) * len(values)  # the fits of the last pass over `folds` since `stage`: what the refit is predicted from
        if served:
            stage, fits = time.perf_counter(), len(folds)
            again = _cross_validate(features, recipe, Xs, ys, folds, parameter, (chosen,), tag, out_of_time, kept, calibrated=True)
            if again is not None:
                scores[pick] = again[0]
                means[pick] = _best(again, metric)[1][0]
        search: dict[str, Any] | None = {"parameter": parameter, "values": list(tried), f"{metric}_means": searched, "chosen": chosen,
                                         **({"rows": len(sub)} if sub is not None else {})} if parameter else None
        whole = scores[pick]["whole rows"]
        results[name] = {
            "family": name,
            "f1_macro_mean": float(np.mean(whole["f1_macro"])),  # the familiar figures: whole held-out rows
            "f1_macro_std": float(np.std(whole["f1_macro"])),
            "accuracy_mean": float(np.mean(whole["accuracy"])),
            "log_loss_mean": float(np.mean(whole["log_loss"])),
            **({"views": {view: {m: round(float(np.mean(v)), 4) for m, v in by.items()} for view, by in scores[pick].items()},
                "selection_mean": means[pick][metric]} if len(scores[pick]) > 1 else {}),
            "seconds": time.perf_counter() - started,
            "rows": len(rows),
            "folds": len(folds),
            "fit_seconds": (time.perf_counter() - stage) / fits,  # one fold's fit as the refit makes it, preprocessing included
            "params": {parameter: chosen} if parameter else {},
            **({"search": search} if search else {}),
        }
        log.info("%s CV %smacro F1 %.3f ± %.3f%s%s  (%.1fs; %.1fs elapsed)", tag,
                 "" if metric == "f1_macro" else f"{METRICS[metric]} {np.mean(whole[metric]):.3f}, ",
                 results[name]["f1_macro_mean"], results[name]["f1_macro_std"],
                 f", {parameter.rsplit('__', 1)[-1]}={chosen:g} of {len(search['values'])} tried" if search else "",
                 f"; {METRICS[metric]} {means[pick][metric]:.3f} over {words(list(scores[pick]))} (what it is chosen on)"
                 if len(scores[pick]) > 1 else "", results[name]["seconds"], time.perf_counter() - began)
    scored = [n for n, r in results.items() if "f1_macro_mean" in r]
    # chosen on the views' mean where a recipe was scored on several (every text recipe), else on whole rows
    best = max(scored, key=lambda n: (round(_better(metric, results[n].get("selection_mean", results[n][f"{metric}_mean"])), 6),
                                      -results[n]["log_loss_mean"]))
    return best, results


@dataclass(frozen=True)
class Winner:
    """The chosen recipe, refit on every training row, and how every recipe fared."""

    name: str
    recipe: Recipe
    pipeline: Any
    cv: dict[str, CvResult]
    fit_seconds: float


GROWTH = 1.5  # a linear SVM's fit time grows as rows^1.45 on reviews (measured: 24,000 rows 10 s, 104,000 rows 84 s)
# A calibrated SVM's refit (three fits on two thirds, two threads, and the preprocessing) against one fit on every row:
# measured on 104,000 reviews, 175 s where one 16,600-row fold fit took 6.9 s (6.9 * 6.26^1.5 = 108 s): 1.6.
CALIBRATED = 1.6


def refit_rows(result: dict[str, Any], recipe: Recipe, total: int, folds: int, budget: float) -> int:
    """How many training rows the winner is refit on: all of them, unless its fit on them, predicted from one
    cross-validation fit (rows^GROWTH; a calibrated SVM is three fits on two thirds, two at a time), would take more
    than `budget` seconds; then the most rows predicted to fit."""
    folds = result.get("folds") or folds
    seen = result["rows"] * (folds - 1) / folds  # the rows one cross-validation fit saw
    # the refit's time on that many rows (a model of every subset was cross-validated calibrated, as it is refit)
    fit = result["fit_seconds"] * (CALIBRATED if recipe.calibrate and not isinstance(recipe.estimator, FeatureExperts) else 1.0)
    return int(min(total, max(seen, seen * (budget / fit) ** (1 / GROWTH))))


def choose(settings: Settings, data: TrainingData) -> Winner:
    """Compare the recipes on the training rows, then refit the best on all of them (or, past the refit budget, on
    the most of them it allows: said in the log and the model card)."""
    options = choose_recipes(data.features, len(data.y_train), settings)
    best, results = compare(data.X_train, data.y_train, data.features, settings, options)
    started = time.perf_counter()
    total = len(data.y_train)
    rows = refit_rows(results[best], options[best], total, settings.cv_folds, settings.refit_budget_seconds)
    X, y = data.X_train, data.y_train
    if rows < total:
        chosen = comparison_rows(y, settings.model_copy(update={"compare_rows": rows}))
        X, y = X[chosen], y[chosen]
        note = (f"refit on a stratified {len(chosen):,} of the {total:,} training rows: on all of them it would take longer than "
                f"REFIT_BUDGET_SECONDS ({settings.refit_budget_seconds:g} s), predicted from its cross-validation fits")
        log.info("%s", note)
        results[best]["refit_note"] = note
    log.info("refitting %s on %d training rows ...", best, len(y))
    with solver_warnings(f"{best} refit:"), parallel_backend("threading", n_jobs=2):
        pipeline = build(data.features, options[best], results[best]["params"]).fit(X, y)  # FeatureExperts: ExpertsPipeline.fit
    fit_seconds = time.perf_counter() - started
    log.info("refit in %.1fs", fit_seconds)
    return Winner(name=best, recipe=options[best], pipeline=pipeline, cv={n: CvResult(**r) for n, r in results.items()},
                  fit_seconds=fit_seconds)

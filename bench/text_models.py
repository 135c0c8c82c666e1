"""The trainer's text models against a plain baseline, and the ways to answer a record that leaves features out:
`python -m bench.text_models baseline KIND ROWS [SPLITS]` and `python -m bench.text_models absent ROWS`, JSON on stdout.

baseline: on bench/reviews.py's file in the real shape (KIND `description`: the description alone, the seed's task;
`notes`: description, points, price and variety; `full`: all 14 columns), pushed as a user would (dataset.accept: the
rows and spec the trainer gets), over SPLITS (5) shuffled stratified 80/20 splits: the trainer's winner, chosen and
refit on the training rows only (trainer.compare.choose, as a training run does), against a plain TF-IDF words (1-2) +
char_wb (2-5) LinearSVC with balanced classes on the description, its C chosen by 5-fold CV on the same training rows;
both scored on the split's test rows. The issue's bar: the winner's mean accuracy and macro F1 each at least the
baseline's mean minus 0.005.

absent: on the `full` file, one 80/20 split, records sent whole, as the description alone, and as description, variety
and winery, answered four ways side by side: the trainer's model of every subset (sommelier_contract.experts: an expert
per feature, summed), a model trained on those columns alone (a fallback model per subset), one linear SVM over every
column trained with features randomly absent (each kept with a chance drawn per row, one extra copy of the rows), and the
same SVM trained on whole rows with an absent feature's columns replaced by their training mean (marginalising).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from bench.reviews import generate
from sommelier_contract import dataset
from sommelier_contract.experts import _block_of_columns, blocks_of, without
from sommelier_contract.records import to_matrix
from trainer.compare import choose
from trainer.config import Settings
from trainer.pipeline import preprocessor

PLACES = ("designation", "province", "region_1", "region_2", "taster_name", "taster_twitter_handle", "winery")
IGNORED = {"description": (*PLACES, "points", "price", "variety"), "notes": PLACES, "full": ()}
BASELINE_C = (0.03, 0.1, 0.3, 1.0, 3.0)
SEARCH_ROWS = 20_000  # the baseline's C is searched on at most this many training rows
SUBSETS = {"whole records": None, "the description alone": ("description",),
           "description, variety and winery": ("description", "variety", "winery")}
log = logging.getLogger("bench")


def rows_of(kind: str, rows: int) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """The records' matrix, the labels and the features of the generated file as `dataset push` admits it."""
    accepted = dataset.accept(generate(rows), kind, None, "country", IGNORED[kind])
    features = accepted.spec["features"]
    frame = accepted.admitted.frame
    return to_matrix(frame, features), frame[accepted.spec["target"]].astype(str).to_numpy(), features


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {"accuracy": round(float(accuracy_score(truth, predicted)), 4),
            "f1_macro": round(float(f1_score(truth, predicted, average="macro")), 4)}


def trainer_winner(features: list[dict[str, Any]], X: np.ndarray, y: np.ndarray) -> Any:
    """The trainer's comparison and refit on these rows, as a training run does them (its settings' defaults)."""
    settings = Settings(dataset_bucket="bench", model_bucket="bench", model_signing_key="bench")
    return choose(settings, SimpleNamespace(features=features, X_train=X, y_train=y))


def _baseline_prep() -> Any:
    text = FeatureUnion([("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
                         ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))])
    return ColumnTransformer([("text", text, 0)])


def baseline(X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[Pipeline, float]:
    """The plain baseline on the description (column 0 of X), C chosen by 5-fold CV (macro F1) on these rows only (on a
    stratified SEARCH_ROWS of them when there are more: each C costs a fit a fold), then fitted on all of them."""
    search = np.arange(len(y))
    if len(y) > SEARCH_ROWS:
        search, _ = next(StratifiedShuffleSplit(1, train_size=SEARCH_ROWS, random_state=seed).split(X, _stratifiable(y)))
    totals = np.zeros(len(BASELINE_C))
    Xs, ys = X[search], y[search]
    for fit, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(Xs, ys):
        prep = _baseline_prep()
        seen, unseen = prep.fit_transform(Xs[fit]), prep.transform(Xs[held])
        for i, C in enumerate(BASELINE_C):
            model = LinearSVC(C=C, class_weight="balanced", max_iter=3000).fit(seen, ys[fit])
            totals[i] += f1_score(ys[held], model.predict(unseen), average="macro")
    C = BASELINE_C[int(np.argmax(totals))]
    return Pipeline([("prep", _baseline_prep()), ("model", LinearSVC(C=C, class_weight="balanced", max_iter=3000))]).fit(X, y), C


def _stratifiable(y: np.ndarray) -> np.ndarray:
    """Labels to stratify a sample on: a class too small to split (fewer than 2 rows) joins the others as one."""
    values, counts = np.unique(y, return_counts=True)
    return np.where(np.isin(y, values[counts < 2]), "(small)", y)


def _sent(X: np.ndarray, features: list[dict[str, Any]], keep: tuple[str, ...] | None) -> np.ndarray:
    """X as a caller sends it with only `keep` (None: whole): the rest absent, as to_matrix writes an absent feature."""
    if keep is None:
        return X
    records = [{f["name"]: v for f, v in zip(features, row, strict=True) if f["name"] in keep} for row in X]
    return to_matrix(records, [{**f, "absent": True} for f in features])


def run_baseline(kind: str, rows: int, splits: int) -> dict[str, Any]:
    X, y, features = rows_of(kind, rows)
    text = [i for i, f in enumerate(features) if f["name"] == "description"]
    per_split = []
    for k, (train, test) in enumerate(StratifiedShuffleSplit(splits, test_size=0.2, random_state=0).split(X, y), start=1):
        started = time.perf_counter()
        winner = trainer_winner(features, X[train], y[train])
        trained = time.perf_counter() - started
        base, C = baseline(X[train][:, text], y[train])
        split = {"winner": winner.name, "winner_params": {n: float(v) for n, v in winner.cv[winner.name].params.items()}
                 if winner.cv[winner.name].params else {}, "train_seconds": round(trained, 1), "baseline_C": C,
                 "winner_scores": scores(y[test], winner.pipeline.predict(X[test])),
                 "baseline_scores": scores(y[test], base.predict(X[test][:, text]))}
        if kind == "full":  # the 14-column model sent descriptions alone
            split["winner_description_alone"] = scores(y[test], winner.pipeline.predict(_sent(X[test], features, ("description",))))
        per_split.append(split)
        log.info("split %d/%d: %s", k, splits, json.dumps(split))
    mean = {side: {m: round(float(np.mean([s[side][m] for s in per_split])), 4) for m in ("accuracy", "f1_macro")}
            for side in ("winner_scores", "baseline_scores")}
    met = all(mean["winner_scores"][m] >= mean["baseline_scores"][m] - 0.005 for m in ("accuracy", "f1_macro"))
    return {"kind": kind, "rows": rows, "classes": int(len(np.unique(y))), "splits": per_split, "mean": mean, "within_0_005": met}


def _joint(prep: Any, Z: Any, y: np.ndarray, augment: bool, seed: int) -> LinearSVC:
    if augment:  # one more copy of the rows, each feature kept with a chance drawn per row
        rng = np.random.default_rng(seed)
        owner = _block_of_columns(blocks_of(prep), Z.shape[1])
        keep = rng.random((Z.shape[0], len(blocks_of(prep)))) < rng.random(Z.shape[0])[:, None]
        Z, y = sparse.vstack([Z, without(Z, owner, keep)]).tocsr(), np.concatenate([y, y])
    return LinearSVC(C=0.3, class_weight="balanced", max_iter=3000).fit(Z, y)


def _marginalised(prep: Any, Z_train: Any, Z: Any, present: np.ndarray) -> Any:
    """Z with each absent feature's columns (and presence) replaced by their training mean."""
    means = np.asarray(Z_train.mean(axis=0)).ravel()
    out = sparse.lil_matrix(Z)
    for k, (start, stop, flag) in enumerate(blocks_of(prep)):
        rows = np.flatnonzero(~present[:, k])
        if len(rows):
            cols = [*range(start, stop), flag]
            out[np.ix_(rows, cols)] = np.tile(means[cols], (len(rows), 1))
    return out.tocsr()


def run_absent(rows: int, seed: int = 0) -> dict[str, Any]:
    X, y, features = rows_of("full", rows)
    train, test = next(StratifiedShuffleSplit(1, test_size=0.2, random_state=seed).split(X, y))
    names = [f["name"] for f in features]
    out: dict[str, Any] = {"rows": rows, "classes": int(len(np.unique(y))), "test_rows": len(test), "ways": {}}
    started = time.perf_counter()
    winner = trainer_winner(features, X[train], y[train])
    out["ways"]["an expert per feature, summed (the trainer's)"] = {
        "model": winner.name, "seconds": round(time.perf_counter() - started, 1),
        **{sent: scores(y[test], winner.pipeline.predict(_sent(X[test], features, keep))) for sent, keep in SUBSETS.items()}}
    fallback: dict[str, Any] = {"seconds": 0.0}
    for sent, keep in SUBSETS.items():
        started = time.perf_counter()
        columns = list(range(len(names))) if keep is None else [names.index(n) for n in keep]
        model = trainer_winner([features[j] for j in columns], X[train][:, columns], y[train])
        fallback["seconds"] += round(time.perf_counter() - started, 1)
        fallback[sent] = scores(y[test], model.pipeline.predict(X[test][:, columns]))
    out["ways"]["a model of those columns alone (a fallback per subset)"] = fallback
    prep = preprocessor(features, per_feature=True)
    Z_train = sparse.csr_matrix(prep.fit_transform(X[train]))
    for way, augment in (("one SVM over every column, trained with features randomly absent", True),
                         ("one SVM over every column, absent features marginalised (their training mean)", False)):
        started = time.perf_counter()
        model = _joint(prep, Z_train, y[train], augment, seed)
        result: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 1)}
        for sent, keep in SUBSETS.items():
            Z = sparse.csr_matrix(prep.transform(_sent(X[test], features, keep)))
            if not augment and keep is not None:
                Z = _marginalised(prep, Z_train, Z, np.array([[n in keep for n in names]] * len(test)))
            result[sent] = scores(y[test], model.predict(Z))
        out["ways"][way] = result
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("trainer").setLevel(logging.WARNING)
    what = sys.argv[1]
    if what == "baseline":
        print(json.dumps(run_baseline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 5)))
    else:
        print(json.dumps(run_absent(int(sys.argv[2]))))

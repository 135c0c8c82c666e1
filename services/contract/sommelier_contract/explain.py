"""Why a prediction came out as it did: each record's top contributing features.

Linear models (logistic regression, the calibrated linear SVM, complement naive Bayes) are
explained exactly: the predicted class's score is a sum over the transformed columns, so each
column's share is its value times its weight for that class, less the weight's mean over the
classes (the part every class gets does not move the prediction). Columns are summed back to the
input feature they came from; a text feature is reported word by word. Other models (tree
ensembles) are explained by occlusion: the drop in the predicted class's probability when one
feature is replaced by typical values (the training quantiles of a number, the most frequent
categories; the manifest's `reference`), averaged. That asks the model itself, costs one batched
prediction of (features x references) variants, and is faithful to what it does, if not additive. Where scikit-learn is
not installed (the predictor's SnapStart zip, which stays under Lambda's 250 MB only without it and SciPy), every model is
explained by occlusion through its ONNX conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sommelier_contract.records import went_without

TOP = 5
# scikit-learn's English stop words, as a frozenset of its own so the predictor need not import the text module
STOP_WORDS = frozenset("""a about above across after afterwards again against all almost alone along already also although always am among
amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at back be became because become becomes
becoming been before beforehand behind being below beside besides between beyond bill both bottom but by call can cannot cant co con could
couldnt cry de describe detail do done down due during each eg eight either eleven else elsewhere empty enough etc even ever every everyone
everything everywhere except few fifteen fifty fill find fire first five for former formerly forty found four from front full further get
give go had has hasnt have he hence her here hereafter hereby herein hereupon hers herself him himself his how however hundred i ie if in inc
indeed interest into is it its itself keep last latter latterly least less ltd made many may me meanwhile might mill mine more moreover most
mostly move much must my myself name namely neither never nevertheless next nine no nobody none noone nor not nothing now nowhere of off
often on once one only onto or other others otherwise our ours ourselves out over own part per perhaps please put rather re same see seem
seemed seeming seems serious several she should show side since sincere six sixty so some somehow someone something sometime sometimes
somewhere still such system take ten than that the their them themselves then thence there thereafter thereby therefore therein thereupon
these they thick thin third this those though three through throughout thru thus to together too top toward towards twelve twenty two un under
until up upon us very via was we well were what whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
whether which while whither who whoever whole whom whose why will with within without would yet you your yours yourself yourselves""".split())


def linear_weights(estimator: Any) -> np.ndarray | None:
    """(classes, columns) weights of a linear decision function, or None for a model that has none."""
    if hasattr(estimator, "calibrated_classifiers_"):  # CalibratedClassifierCV: the mean of its fitted linear models
        inner = [linear_weights(c.estimator) for c in estimator.calibrated_classifiers_]
        fitted = [w for w in inner if w is not None]
        return np.mean(fitted, axis=0) if len(fitted) == len(inner) else None
    if hasattr(estimator, "feature_log_prob_"):  # naive Bayes: the joint log likelihood is X @ feature_log_prob_.T
        return np.asarray(estimator.feature_log_prob_)
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        return None
    coef = np.asarray(coef)
    return np.vstack([-coef[0], coef[0]]) / 2 if coef.shape[0] == 1 else coef  # binary: one row, for class 1


def column_sources(prep: Any, features: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """For each column the preprocessor outputs: (input feature, word or category or None)."""
    sources: list[tuple[str, str | None]] = [("", None)] * sum(s.stop - s.start for s in prep.output_indices_.values())
    for name, transformer, columns in prep.transformers_:
        where = prep.output_indices_[name]
        if name == "remainder" or where.stop == where.start:
            continue
        if isinstance(columns, int | np.integer):  # a text column: one output column per word (or per letter n-gram, beside words)
            feature = features[int(columns)]["name"]
            sources[where] = [(feature, _term(str(w))) for w in transformer.get_feature_names_out()]
        elif hasattr(transformer, "categories_"):  # one-hot: "<feature>_<category>" per output column
            names = [features[i]["name"] for i in columns]
            sources[where] = [(max((f for f in names if str(out).startswith(f + "_")), key=len), None)
                              for out in transformer.get_feature_names_out(names)]
        else:  # numeric: one output column per input column
            sources[where] = [(features[i]["name"], None) for i in columns]
    return sources


def _term(name: str) -> str | None:
    """A text column's output name as a readable term: a word or two ("words__dark cherry" beside letter n-grams);
    None for what reads as nothing (letter n-grams, stop words, a pair of words that leans on a stop word): those
    columns count toward their feature as a whole."""
    kind, sep, term = name.partition("__")
    if sep and kind != "words":
        return None
    term = term if sep else name
    return None if any(word in STOP_WORDS for word in term.split()) else term


def explain(pipeline: Any | None, features: list[dict[str, Any]], X: np.ndarray, predicted: np.ndarray,
            predict_proba: Callable[[np.ndarray], np.ndarray] | None = None) -> list[dict[str, Any]]:
    """One explanation per row of X; `predicted` holds each row's predicted class index (into classes_). A feature the
    record does not carry (records.went_without) is never credited, whatever the model makes of its absence. Without the
    scikit-learn pipeline (`pipeline` None: a package with no scikit-learn, the SnapStart zip), every model is explained
    by occlusion through `predict_proba` (what serves it: ONNX Runtime)."""
    gone = [set(names) for names in went_without(X, features)]
    if pipeline is None:
        if predict_proba is None:
            raise ValueError("explain needs the pipeline or a predict_proba")
        return _occlusion(predict_proba, features, X, predicted, gone)
    prep, estimator = pipeline.named_steps["prep"], pipeline.named_steps["model"]
    weights = linear_weights(estimator)
    if weights is not None:
        return _linear(prep, features, weights, X, predicted, gone)
    return _occlusion(pipeline.predict_proba, features, X, predicted, gone)


def _linear(prep: Any, features: list[dict[str, Any]], weights: np.ndarray, X: np.ndarray, predicted: np.ndarray,
            gone: list[set[str]]) -> list[dict[str, Any]]:
    Z = prep.transform(X)
    relative = weights - weights.mean(axis=0, keepdims=True)
    sources = column_sources(prep, features)
    kinds = {f["name"]: f["type"] for f in features}
    out = []
    for r in range(Z.shape[0]):
        row = Z[r].toarray().ravel() if hasattr(Z, "toarray") else np.asarray(Z[r]).ravel()
        share = row * relative[predicted[r]]
        totals: dict[tuple[str, str | None], float] = {}
        for j in np.flatnonzero(share):
            feature, term = sources[j]
            if feature in gone[r]:
                continue
            key = (feature, term if kinds.get(feature) == "text" else None)  # words stay separate; a feature's columns add up
            totals[key] = totals.get(key, 0.0) + float(share[j])
        top = sorted(totals.items(), key=lambda kv: -abs(kv[1]))[:TOP]
        out.append({"method": "linear", "top": [{"feature": f, **({"term": t} if t else {}), "contribution": round(v, 4)}
                                                for (f, t), v in top]})
    return out


def _occlusion(predict_proba: Callable[[np.ndarray], np.ndarray], features: list[dict[str, Any]], X: np.ndarray, predicted: np.ndarray,
               gone: list[set[str]]) -> list[dict[str, Any]]:
    n, k = X.shape
    base = predict_proba(X)[np.arange(n), predicted]
    blocks, owners = [], []
    for j, f in enumerate(features):
        # the feature's reference values (training quantiles or frequent categories, from the manifest), else "missing"
        for value in f.get("reference") or [np.nan if f["type"] == "numeric" else ""]:
            variant = X.copy()
            variant[:, j] = value
            blocks.append(variant)
            owners.append(j)
    proba = predict_proba(np.vstack(blocks))[np.arange(n * len(blocks)), np.tile(predicted, len(blocks))]
    expected = np.zeros((n, k))
    counts = np.bincount(owners, minlength=k)
    for b, j in enumerate(owners):
        expected[:, j] += proba[b * n:(b + 1) * n] / counts[j]
    drops = base[:, None] - expected  # how much this row's own value raises the predicted class over typical values
    out = []
    for r in range(n):
        order = [j for j in np.argsort(-np.abs(drops[r])) if features[j]["name"] not in gone[r]][:TOP]
        out.append({"method": "occlusion", "top": [{"feature": features[j]["name"], "contribution": round(float(drops[r, j]), 4)}
                                                   for j in order if round(float(drops[r, j]), 4) != 0]})
    return out

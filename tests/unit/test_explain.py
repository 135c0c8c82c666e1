"""Explanations: exact for linear models (a text feature word by word), occlusion for trees."""

from __future__ import annotations

import numpy as np
import pytest

from sommelier_contract.explain import explain, linear_weights
from sommelier_contract.records import to_matrix
from trainer.pipeline import build, recipes

FEATURES = [{"name": "acidity", "type": "numeric"}, {"name": "noise", "type": "numeric"}, {"name": "colour", "type": "categorical"},
            {"name": "note", "type": "text"}]


def _data(n: int = 300):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, n)
    records = [{"acidity": float(label[i] * 2 + rng.normal(0, 0.3)), "noise": float(rng.normal()),
                "colour": ["red", "white", "rose"][rng.integers(3)],
                "note": " ".join(rng.choice(["fruit", "oak", "long", "soft"], 4)) + [" cherry", " lemon", " honey"][label[i]]}
               for i in range(n)]
    return records, label


@pytest.mark.parametrize("name", ["linear_svm_chars", "linear_svm", "complement_nb"])
def test_a_linear_model_names_the_feature_and_the_word_that_decide(name):
    records, y = _data()
    candidate = recipes(FEATURES, len(y), 0)[name]
    X = to_matrix(records, FEATURES)
    pipeline = build(FEATURES, candidate).fit(X, y)
    predicted = pipeline.predict_proba(X[:20]).argmax(axis=1)
    for record, e in zip(records[:20], explain(pipeline, FEATURES, X[:20], predicted), strict=True):
        assert e["method"] == "linear"
        named = {(t["feature"], t.get("term")) for t in e["top"][:3]}
        word = record["note"].split()[-1]
        assert ("note", word) in named or ("acidity", None) in named, e


def test_linear_contributions_add_up_to_the_predicted_class_score():
    records, y = _data()
    features = FEATURES[:3]  # 3 features -> every contribution is in the top 5
    X = to_matrix(records, features)
    pipeline = build(features, recipes(features, len(y), 0)["logistic_regression"]).fit(X, y)
    scores = pipeline.decision_function(X[:10])
    intercept = pipeline.named_steps["model"].intercept_
    predicted = scores.argmax(axis=1)
    for r, e in enumerate(explain(pipeline, features, X[:10], predicted)):
        k = predicted[r]
        expected = (scores[r, k] - scores[r].mean()) - (intercept[k] - intercept.mean())
        assert sum(t["contribution"] for t in e["top"]) == pytest.approx(expected, abs=1e-3)


def test_a_tree_model_is_explained_by_occlusion_and_finds_the_deciding_feature():
    records, y = _data()
    features = FEATURES[:3]
    X = to_matrix(records, features)
    candidate = recipes(features, len(y), 0)["hist_gradient_boosting"]
    assert linear_weights(candidate.estimator) is None
    pipeline = build(features, candidate).fit(X, y)
    acidity = [r["acidity"] for r in records]
    features = [{**features[0], "reference": list(np.quantile(acidity, [0.1, 0.3, 0.5, 0.7, 0.9]))}, *features[1:]]
    e = explain(pipeline, features, X[:5], pipeline.predict_proba(X[:5]).argmax(axis=1))
    assert all(x["method"] == "occlusion" and x["top"][0]["feature"] == "acidity" for x in e), e


def test_the_stop_words_are_scikit_learns():
    """A copy (the predictor explains without importing scikit-learn's text module): it must not drift."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from sommelier_contract.explain import STOP_WORDS

    assert STOP_WORDS == ENGLISH_STOP_WORDS

"""scikit-learn pipelines built from the dataset spec, and the recipes that suit its features.

The fitted pipeline takes the 2-D array `sommelier_contract.records.to_matrix` builds (columns in
the manifest's feature order), so the predictor needs neither pandas nor this module.

Which recipes: TF-IDF text makes wide, sparse inputs where linear models are both the most
accurate and the fastest; tree ensembles would have to densify thousands of columns and do worse. A text dataset's
recipes answer any subset of its features (a review's words alone, or with some of its other columns), so each is
additive over features: complement naive Bayes, and sommelier_contract.experts.FeatureExperts, a linear SVM with
balanced classes per feature, summed and calibrated, over words (1-2) or words and character 2-5-grams within word
boundaries (which catch place names, accents, misspellings and stems that whole words split), the letters bounded to
the CHAR_FEATURES most frequent, at any size. Their preprocessing has a part per feature and a presence column per
feature (`per_feature`), so an absent feature writes nothing. Dense numeric (and categorical) data gets tree ensembles
beside a linear baseline; a random forest's cost and size grow with the rows, so it is left out of large training sets.

Each linear recipe names one regularisation parameter and a few values of it (`grid`); the comparison tries them on
the same folds, fitting the preprocessing (the costly part for text) once a fold, and widens the grid when the best
value sits at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sommelier_contract.experts import PRESENCE, AbsentOneHot, ExpertsPipeline, FeatureExperts, Presence, blocks_of

FOREST_MAX_ROWS = 100_000
# Letter n-grams beside words: +0.015 accuracy on 5,750 real reviews (ARCHITECTURE.md), +0.05-0.09 macro F1 on the
# real 1,000-row sample; the plain baseline the bench holds the trainer to uses them. Bounded, so their cost and the
# model's size stay in hand at any row count.
CHAR_FEATURES = 100_000
# A linear SVM's C, with balanced classes (the baseline's best on real reviews lies in 0.1-1; the words' expert chose
# 0.3-1 on generated reviews, scored with the text alone among its views); widened when the best value sits at an edge.
SVM_C = ("C", (0.1, 0.3, 1.0))


@dataclass(frozen=True)
class Recipe:
    estimator: Any
    dense: bool = False  # the estimator needs a dense matrix
    nonnegative: bool = False  # the estimator needs non-negative inputs (naive Bayes)
    chars: bool = False  # text also as character n-grams within word boundaries
    grid: tuple[str, tuple[float, ...]] | None = None  # a parameter of the estimator and the values CV tries for it
    calibrate: bool = False  # an SVM: compared on its decision function, calibrated (sigmoid, 3-fold) only when refit
    per_feature: bool = False  # a preprocessing part and a presence column per feature: the model answers any subset
    compared: bool = True  # compared unless FAMILIES names others; False: only when FAMILIES names it

    def final(self, params: dict[str, Any] | None = None) -> Any:
        """The estimator with `params` set, as the pipeline serves it (calibrated where the recipe says so)."""
        estimator = clone(self.estimator).set_params(**(params or {}))
        if isinstance(estimator, FeatureExperts):  # calibrates itself, for every subset of features
            return estimator.set_params(calibrate=self.calibrate)
        # three SVMs, each fit on two thirds and calibrated on the third, fit side by side (liblinear releases the GIL;
        # fit() runs them on threads): measured on 104,000 reviews, 105 s against 84 s for one SVM on every row, where
        # one SVM calibrated on out-of-fold predictions (ensemble=False) costs four fits in a row, ~230 s
        return CalibratedClassifierCV(estimator, cv=3, n_jobs=2) if self.calibrate else estimator

    @property
    def estimator_name(self) -> str:
        """The estimator's class (the manifest's model.estimator); the recipe's own name is its key in `recipes`."""
        return type(self.estimator).__name__


def _text(dense: bool, chars: bool) -> Any:
    words = TfidfVectorizer(max_features=2000 if dense else 30000, ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                            strip_accents="unicode")
    if not chars:
        return words
    letters = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=CHAR_FEATURES, sublinear_tf=True,
                              strip_accents="unicode")
    return FeatureUnion([("words", words), ("chars", letters)])


def _encoder(feature: dict[str, Any] | None, dense: bool) -> AbsentOneHot:
    """One-hot categories, values seen once with any unseen one in a column of their own; a category the record does not
    carry writes nothing. `feature` with the spec's max_categories keeps that many of its most frequent values."""
    most = {"max_categories": int(feature["max_categories"])} if feature and feature.get("max_categories") else {}
    return AbsentOneHot(handle_unknown="infrequent_if_exist", min_frequency=2, sparse_output=not dense, **most)


def _per_feature(features: list[dict[str, Any]], dense: bool, nonnegative: bool, chars: bool) -> ColumnTransformer:
    """A part per feature (`f<i>`: the experts' blocks) and their presence columns. A missing number is filled with its
    training mean, which the standard scaler maps to 0: an absent number adds nothing to a linear score."""
    parts: list[tuple[str, Any, Any]] = []
    for i, f in enumerate(features):
        if f["type"] == "numeric":
            scale = MinMaxScaler(clip=True) if nonnegative else StandardScaler()
            parts.append((f"f{i}", Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", scale)]), [i]))
        elif f["type"] == "categorical":
            parts.append((f"f{i}", _encoder(f, dense), [i]))
        else:  # a scalar column index hands the vectorizer the 1-D column it expects
            parts.append((f"f{i}", _text(dense, chars), i))
    parts.append((PRESENCE, Presence(tuple(f["type"] for f in features)), list(range(len(features)))))
    return ColumnTransformer(parts, sparse_threshold=0.0 if dense else 0.3)


def preprocessor(features: list[dict[str, Any]], dense: bool = False, nonnegative: bool = False, chars: bool = False,
                 per_feature: bool = False) -> ColumnTransformer:
    if per_feature:
        return _per_feature(features, dense, nonnegative, chars)
    numeric = [i for i, f in enumerate(features) if f["type"] == "numeric"]
    categorical = [i for i, f in enumerate(features) if f["type"] == "categorical" and not f.get("max_categories")]
    bounded = [i for i, f in enumerate(features) if f["type"] == "categorical" and f.get("max_categories")]
    parts: list[tuple[str, Any, Any]] = []
    if numeric:
        scale = MinMaxScaler(clip=True) if nonnegative else StandardScaler()
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", scale)]), numeric))
    if categorical:
        parts.append(("categorical", _encoder(None, dense), categorical))
    if bounded:  # very many values (the spec's max_categories): the most frequent kept, the rest in one column
        most = max(bounded, key=lambda i: int(features[i]["max_categories"]))
        parts.append(("categorical_bounded", _encoder(features[most], dense), bounded))
    for i, f in enumerate(features):
        if f["type"] == "text":
            # a scalar column index hands the vectorizer the 1-D column it expects
            parts.append((f"text_{i}", _text(dense, chars), i))
    return ColumnTransformer(parts, sparse_threshold=0.0 if dense else 0.3)


def recipes(features: list[dict[str, Any]], rows: int, seed: int) -> dict[str, Recipe]:
    """name -> recipe, cheapest first (a time budget stops the comparison between recipes)."""
    if any(f["type"] == "text" for f in features):
        return {
            "complement_nb": Recipe(ComplementNB(alpha=0.3), nonnegative=True, grid=("alpha", (0.03, 0.1, 0.3, 1.0)), per_feature=True),
            # words alone: what the letters' recipe adds to, ~3x cheaper, compared only when FAMILIES names it (on
            # generated reviews it never beat the letters and cost 4 s of a 1,000-row run's 15)
            "linear_svm": Recipe(FeatureExperts(C=0.3, random_state=seed), grid=SVM_C, calibrate=True, per_feature=True, compared=False),
            "linear_svm_chars": Recipe(FeatureExperts(C=0.3, random_state=seed), chars=True, grid=SVM_C, calibrate=True, per_feature=True),
        }
    options = {
        "logistic_regression": Recipe(LogisticRegression(C=1.0, max_iter=3000, random_state=seed), grid=("C", (0.1, 1.0, 10.0))),
        "hist_gradient_boosting": Recipe(HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, early_stopping="auto",
                                                                           n_iter_no_change=10, random_state=seed), dense=True),
    }
    if rows <= FOREST_MAX_ROWS:
        options["random_forest"] = Recipe(RandomForestClassifier(n_estimators=100, min_samples_leaf=1, n_jobs=1, random_state=seed))
    return options


def build(features: list[dict[str, Any]], recipe: Recipe, params: dict[str, Any] | None = None) -> Pipeline:
    """The recipe's pipeline; `params` set on its estimator (a value the search chose)."""
    model = recipe.final(params)
    kind = ExpertsPipeline if isinstance(model, FeatureExperts) else Pipeline
    return kind([("prep", preprocessor(features, recipe.dense, recipe.nonnegative, recipe.chars, recipe.per_feature)), ("model", model)])


def views(rows: int, features: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Held-out rows as callers send them, for a recipe that answers any subset, as masks of the features each row
    carries (rows x features): whole; the text with some of the other features (each kept at a chance drawn per row, so
    every number of them occurs: a review with what its sender knows of the wine); and the text alone, the seed's own
    task (a review's words in). Without a text feature: whole, and random subsets (at least one feature a row)."""
    text = np.array([f["type"] == "text" for f in features])
    keep = rng.random((rows, len(features))) < rng.random(rows)[:, None]
    out = {"whole rows": np.ones((rows, len(features)), dtype=bool)}
    if text.any() and not text.all():
        out["the text and some others"] = keep | text
        out["the text alone"] = np.broadcast_to(text, (rows, len(features)))
    else:
        keep[np.arange(rows), rng.integers(len(features), size=rows)] = True
        out["random subsets"] = keep
    return out


def fit_model(estimator: Any, prep: Any, Z: Any, y: Any, shared: dict[int, Any] | None = None) -> Any:
    """Fit a recipe's estimator on the fitted preprocessing's output `Z` (cross-validation fits the preprocessing once a
    fold); FeatureExperts is told where each feature's columns are, and keeps the experts that do not depend on the
    value searched in `shared` (one per fold)."""
    if isinstance(estimator, FeatureExperts):
        return estimator.set_params(blocks=blocks_of(prep)).fit(Z, y, shared=shared)
    return estimator.fit(Z, y)

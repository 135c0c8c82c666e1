"""scikit-learn pipelines built from the dataset spec, and the recipes that suit its features.

The fitted pipeline takes the 2-D array `sommelier_contract.records.to_matrix` builds (columns in
the manifest's feature order), so the predictor needs neither pandas nor this module.

Which recipes: TF-IDF text makes wide, sparse inputs where linear models are both the most
accurate and the fastest (complement naive Bayes, a calibrated linear SVM on words, and one on words
and character 2-5-grams within word boundaries, which catch place names, accents, misspellings and
word stems that whole words split); tree ensembles would have to densify thousands of columns and do
worse. Measured on wine reviews (a real 1,000-row file, and bench/training.py's generator shaped like
it): characters beside words lift CV macro F1 by 0.05-0.09 over words alone; logistic regression on
the same words scored no better than the SVM and took 5-10 times as long (up to 47 s of 5-fold CV),
so it is no text recipe. The SVMs are compared as they are and calibrated (3-fold sigmoid) only in the
winner's refit; letter n-grams only on small data (CHARS_MAX_ROWS), where they pay. Dense numeric (and
categorical) data gets tree ensembles beside a linear baseline; a random forest's cost and size
grow with the rows, so it is left out of large training sets.

Each linear recipe names one regularisation parameter and a few values of it (`grid`); the
comparison tries them on the same folds, fitting the preprocessing (the costly part for text) once a
fold, so the search costs a few classifier fits. Measured on 1,000 generated reviews (bench/training.py):
the grid lifts the character SVM's CV macro F1 from 0.763 (C=0.5) to 0.778 (C=3) and its holdout
macro F1 from 0.744 to 0.756, for 2 s more of comparison (6.7 s for the whole run); scikit-learn's
HalvingGridSearchCV took 12.9 s for five values (it refits the text features for every value and
sample size) and chose a worse C than the plain grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

FOREST_MAX_ROWS = 100_000
# Letter n-grams beside words: +0.015 accuracy for 6x the cost of words alone on 5,750 real reviews (ARCHITECTURE.md),
# +0.05-0.09 macro F1 on the real 1,000-row sample. Worth it on small data, where they are cheap; on more rows words
# alone catch up and letters cost minutes, so the recipe is compared only up to this many training rows.
CHARS_MAX_ROWS = 3_000
SVM_C = ("C", (0.3, 1.0, 3.0))


@dataclass(frozen=True)
class Recipe:
    estimator: Any
    dense: bool = False  # the estimator needs a dense matrix
    nonnegative: bool = False  # the estimator needs non-negative inputs (naive Bayes)
    chars: bool = False  # text also as character n-grams within word boundaries
    grid: tuple[str, tuple[float, ...]] | None = None  # a parameter of the estimator and the values CV tries for it
    calibrate: bool = False  # an SVM: compared on its decision function, calibrated (sigmoid, 3-fold) only when refit

    def final(self, params: dict[str, Any] | None = None) -> Any:
        """The estimator with `params` set, as the pipeline serves it (calibrated where the recipe says so)."""
        estimator = clone(self.estimator).set_params(**(params or {}))
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
    letters = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, max_features=100000, sublinear_tf=True,
                              strip_accents="unicode")
    return FeatureUnion([("words", words), ("chars", letters)])


def preprocessor(features: list[dict[str, Any]], dense: bool = False, nonnegative: bool = False, chars: bool = False) -> ColumnTransformer:
    numeric = [i for i, f in enumerate(features) if f["type"] == "numeric"]
    categorical = [i for i, f in enumerate(features) if f["type"] == "categorical" and not f.get("max_categories")]
    bounded = [i for i, f in enumerate(features) if f["type"] == "categorical" and f.get("max_categories")]
    parts: list[tuple[str, Any, Any]] = []
    if numeric:
        scale = MinMaxScaler(clip=True) if nonnegative else StandardScaler()
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", scale)]), numeric))
    if categorical:
        parts.append(("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2, sparse_output=not dense),
                      categorical))
    if bounded:  # very many values (the spec's max_categories): the most frequent kept, the rest in one column
        most = max(int(features[i]["max_categories"]) for i in bounded)
        parts.append(("categorical_bounded", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2, max_categories=most,
                                                           sparse_output=not dense), bounded))
    for i, f in enumerate(features):
        if f["type"] == "text":
            # a scalar column index hands the vectorizer the 1-D column it expects
            parts.append((f"text_{i}", _text(dense, chars), i))
    return ColumnTransformer(parts, sparse_threshold=0.0 if dense else 0.3)


def recipes(features: list[dict[str, Any]], rows: int, seed: int) -> dict[str, Recipe]:
    """name -> recipe, cheapest first (a time budget stops the comparison between recipes)."""
    if any(f["type"] == "text" for f in features):
        options = {
            "complement_nb": Recipe(ComplementNB(alpha=0.3), nonnegative=True, grid=("alpha", (0.03, 0.1, 0.3, 1.0))),
            "linear_svm": Recipe(LinearSVC(C=0.5, max_iter=3000, random_state=seed), grid=SVM_C, calibrate=True),
        }
        if rows <= CHARS_MAX_ROWS:
            options["linear_svm_chars"] = Recipe(LinearSVC(C=0.5, max_iter=3000, random_state=seed), chars=True, grid=SVM_C,
                                                    calibrate=True)
        return options
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
    return Pipeline([("prep", preprocessor(features, recipe.dense, recipe.nonnegative, recipe.chars)),
                     ("model", recipe.final(params))])

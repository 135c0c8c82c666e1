"""scikit-learn pipelines built from the dataset spec.

The fitted pipeline takes a 2-D array whose columns follow the spec's feature order
(floats when every feature is numeric, objects otherwise): the manifest records that
order, and the predictor builds the same array without importing pandas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def to_matrix(frame: pd.DataFrame, features: list[dict[str, Any]]) -> np.ndarray:
    names = [f["name"] for f in features]
    numeric = all(f["type"] == "numeric" for f in features)
    return frame[names].to_numpy(dtype=float if numeric else object)


def preprocessor(features: list[dict[str, Any]], dense: bool = False) -> ColumnTransformer:
    numeric = [i for i, f in enumerate(features) if f["type"] == "numeric"]
    categorical = [i for i, f in enumerate(features) if f["type"] == "categorical"]
    parts: list[tuple[str, Any, Any]] = []
    if numeric:
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric))
    if categorical:
        parts.append(("categorical", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2, sparse_output=not dense), categorical))
    for i, f in enumerate(features):
        if f["type"] == "text":
            # a scalar column index hands the vectorizer the 1-D column it expects
            parts.append((f"text_{i}", TfidfVectorizer(max_features=2000 if dense else 20000, ngram_range=(1, 2), min_df=2), i))
    return ColumnTransformer(parts, sparse_threshold=0.0 if dense else 0.3)


# name -> (estimator factory, needs dense input). A small grid: one or two settings a family.
def candidates(seed: int) -> dict[str, tuple[Any, bool]]:
    return {
        "logistic_regression_c1": (LogisticRegression(C=1.0, max_iter=3000, random_state=seed), False),
        "logistic_regression_c10": (LogisticRegression(C=10.0, max_iter=3000, random_state=seed), False),
        "random_forest": (RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=seed), False),
        "hist_gradient_boosting": (HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, early_stopping=False, random_state=seed), True),
    }


def family(name: str) -> str:
    return name.rsplit("_c", 1)[0] if name.startswith("logistic_regression") else name


def build(features: list[dict[str, Any]], estimator: Any, dense: bool = False) -> Pipeline:
    return Pipeline([("prep", preprocessor(features, dense)), ("model", estimator)])

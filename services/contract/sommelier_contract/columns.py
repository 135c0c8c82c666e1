"""What each column of a dataset is for, decided as a careful data scientist would before training anything:
identifiers are left out, very many categories are kept bounded, and a column that alone gives the target away
is reported as a likely proxy of it (the user decides; nothing is dropped silently).

Needs pandas (scikit-learn only for `estimate`, imported there): the predictor never imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

# Named like an identifier: id, index, row, row_id, wine_id, wine-id, "wine id", wineId, WineID (not "acid", not "fluid").
_ID_NAME = re.compile(r"(?i)^(id|idx|index|key|row|row[ _.-]?(id|no|num|number)|unnamed: \d+)$|[ _.-]id$")
_ID_CAMEL = re.compile(r"[a-z](Id|ID)$")
ALMOST_UNIQUE = 0.9  # a share of distinct values this high, in a column of short strings, names rows rather than describes them
PROSE_WORDS = 15  # values of this many words on average are prose (a tasting note), kept as text however distinct
BOUNDED_CATEGORIES = 200  # a categorical column with more values keeps its most frequent ones; the rest share one column
PROXY_ACCURACY = 0.95  # a column that alone predicts the target this well, on rows it was not looked up on, is a likely proxy
PROXY_COVERAGE = 0.5  # ... on at least this share of the rows (a value seen once says nothing on other rows)
PROXY_GAIN = 0.8  # ... and removes this share of the errors that always answering the most common class makes
SAMPLE = 20_000  # rows the proxy check looks at (a stratified-enough random sample of a larger file)


def _named_like_id(column: str) -> bool:
    return bool(_ID_NAME.search(column) or _ID_CAMEL.search(column))


def identifier(column: str, values: pd.Series, others: pd.DataFrame) -> str | None:
    """Why `column` identifies rows rather than describing them, or None. `others`: the frame's other string columns,
    which a composed name (a title made of winery, vintage and variety) repeats."""
    present = values.dropna()
    if len(present) < 20:
        return None
    distinct = present.nunique() / len(present)
    if _named_like_id(column) and distinct >= 0.5:
        return f"named like an identifier, with {present.nunique():,} distinct values in {len(present):,} rows"
    if pd.api.types.is_integer_dtype(values) and present.is_unique and present.is_monotonic_increasing:
        return "whole numbers counting the rows"
    if not pd.api.types.is_string_dtype(values) or distinct < ALMOST_UNIQUE:
        return None
    strings = present.astype(str)
    if strings.str.split().str.len().mean() >= PROSE_WORDS:
        return None  # prose: a text feature, however distinct
    sample = strings.sample(min(len(strings), 2000), random_state=0)
    parts = others.loc[sample.index]
    composed = [c for c in parts.columns
                if np.mean([bool(p) and len(p) > 2 and p in s for s, p in zip(sample, parts[c].fillna("").astype(str), strict=True)]) >= 0.5]
    if composed:
        return (f"a different value in {distinct:.0%} of rows, made of other columns' values ({', '.join(composed[:4])}): "
                "a name for each row, not something to learn from")
    return None


def bounded(feature: dict[str, Any], distinct: int) -> dict[str, Any]:
    """A categorical feature with very many values keeps the BOUNDED_CATEGORIES most frequent (the pipeline groups the
    rest, and any unseen value, in one column), so the model and its artifacts stay small at any row count."""
    if distinct > BOUNDED_CATEGORIES:
        return {**feature, "max_categories": BOUNDED_CATEGORIES}
    return feature


@dataclass(frozen=True)
class Proxy:
    """A column that alone predicts the target almost perfectly: each value's most common class, looked up on one half
    of the rows, scored on the other half's rows whose value it had seen."""

    column: str
    accuracy: float  # on the rows covered
    coverage: float  # share of rows whose value the other half had
    baseline: float  # always answering the most common class, on the same rows

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _alone(values: pd.Series, y: pd.Series, halves: np.ndarray) -> tuple[float, float, float]:
    """(accuracy, coverage, baseline) of predicting y from values' majority class, cross-fitted on two halves."""
    correct = covered = majority = 0
    for fit in (halves, ~halves):
        lookup = pd.DataFrame({"v": values[fit], "y": y[fit]}).groupby(["v", "y"], observed=True).size()
        best = lookup.groupby(level=0).idxmax().map(lambda pair: pair[1])
        guess = values[~fit].map(best)
        seen = guess.notna().to_numpy()
        correct += int((guess[seen] == y[~fit][seen]).sum())
        covered += int(seen.sum())
        majority += int(y[~fit][seen].value_counts().iloc[0]) if seen.any() else 0
    if not covered:
        return 0.0, 0.0, 0.0
    return correct / covered, covered / len(values), majority / covered


def proxies(frame: pd.DataFrame, spec: dict[str, Any], seed: int = 0) -> list[Proxy]:
    """The categorical features that alone predict the target almost perfectly (PROXY_*), most telling first."""
    target = spec["target"]
    rows = frame if len(frame) <= SAMPLE else frame.sample(SAMPLE, random_state=seed)
    y = rows[target].astype(str).reset_index(drop=True)
    halves = np.random.default_rng([seed, 7919]).random(len(rows)) < 0.5  # a stream of its own, not the sample's
    found = []
    for f in spec["features"]:
        if f["type"] != "categorical":
            continue
        values = rows[f["name"]].astype("string").reset_index(drop=True)
        present = values.notna() & (values != "")
        if present.sum() < 20:
            continue
        accuracy, coverage, base = _alone(values[present].reset_index(drop=True), y[present].reset_index(drop=True),
                                          halves[present.to_numpy()])
        coverage *= float(present.mean())
        if coverage >= PROXY_COVERAGE and accuracy >= PROXY_ACCURACY and base < 1 and (accuracy - base) / (1 - base) >= PROXY_GAIN:
            found.append(Proxy(f["name"], accuracy, coverage, base))
    return sorted(found, key=lambda p: -p.accuracy * p.coverage)


GAP_CLASS_ROWS = 20  # a class this big or bigger can be said to have a column always empty
ALWAYS_EMPTY = 0.95  # ... when this share of its rows or more have it empty
RARELY_EMPTY = 0.2  # ... while the other classes' rows have it empty at most this often


@dataclass(frozen=True)
class TellingGap:
    """A column whose emptiness gives the target away: empty in (nearly) every row of some classes (`empty_in`, the
    largest first) and rarely in the others' rows (in the real reviews, every Chilean row has no region_1)."""

    column: str
    empty_in: list[str]
    share: float  # of those classes' rows with it empty
    elsewhere: float  # of the other rows with it empty

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def telling_gaps(frame: pd.DataFrame, spec: dict[str, Any]) -> list[TellingGap]:
    """The categorical features whose emptiness tells the target (ALWAYS_EMPTY in some classes of GAP_CLASS_ROWS rows
    or more, at most RARELY_EMPTY in the rest), most telling first."""
    target = frame[spec["target"]].astype(str)
    sizes = target.value_counts()
    big = sizes[sizes >= GAP_CLASS_ROWS].index
    found = []
    for f in spec["features"]:
        if f["type"] != "categorical" or f["name"] not in frame:
            continue
        empty = frame[f["name"]].isna() | (frame[f["name"]].astype("string").str.strip() == "")
        if not empty.any() or empty.all():
            continue
        share = empty.groupby(target).mean()
        always = [str(c) for c in share.loc[big].sort_values(ascending=False).index if share[c] >= ALWAYS_EMPTY]
        if not always:
            continue
        inside = target.isin(always)
        elsewhere = float(empty[~inside].mean()) if (~inside).any() else 1.0
        if elsewhere <= RARELY_EMPTY:
            ordered = sorted(always, key=lambda c: -int(sizes[c]))
            found.append(TellingGap(f["name"], ordered, float(empty[inside].mean()), elsewhere))
    return sorted(found, key=lambda g: (g.elsewhere, -len(g.empty_in)))


def estimate(frame: pd.DataFrame, spec: dict[str, Any], variants: dict[str, tuple[list[str], list[str]]], rows: int = 4000,
             seed: int = 0) -> dict[str, float] | None:
    """A quick estimate of the accuracy a model reaches (3-fold CV of a linear model on up to `rows` rows) with every
    feature ("with", measured once) and in each variant, name -> (columns left out, columns whose empty values are read
    as not given): what leaving the proxies out costs, and what an emptiness that tells the target is worth. None
    without scikit-learn."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import SGDClassifier
        from sklearn.model_selection import cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
    except ImportError:
        return None
    target = spec["target"]
    sample = frame if len(frame) <= rows else frame.sample(rows, random_state=seed)
    y = sample[target].astype(str)
    if y.value_counts().min() < 3:
        y = y.where(y.map(y.value_counts()) >= 3, "(rare)")

    def score(features: list[dict[str, Any]], blanked: Sequence[str] = ()) -> float:
        parts: list[tuple[str, Any, Any]] = []
        numeric = [f["name"] for f in features if f["type"] == "numeric"]
        categorical = [f["name"] for f in features if f["type"] == "categorical" and f["name"] not in blanked]
        rows = sample
        if blanked:  # an empty value written as absent, which the encoder writes as nothing at all
            from sommelier_contract.experts import AbsentOneHot

            rows = sample.copy()
            for name in blanked:
                rows[name] = rows[name].astype(object).where(rows[name].astype("string").str.strip().fillna("") != "", None)
            parts.append(("b", AbsentOneHot(handle_unknown="infrequent_if_exist", min_frequency=2, max_categories=BOUNDED_CATEGORIES),
                          list(blanked)))
        if numeric:
            parts.append(("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
        if categorical:
            parts.append(("c", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2, max_categories=BOUNDED_CATEGORIES),
                          categorical))
        parts += [(f"t{i}", TfidfVectorizer(min_df=2, sublinear_tf=True), f["name"]) for i, f in enumerate(features) if f["type"] == "text"]
        model = make_pipeline(ColumnTransformer(parts), SGDClassifier(alpha=1e-4, random_state=seed))
        return float(cross_val_score(model, rows, y, cv=3, scoring="accuracy").mean())

    found = {"with": round(score(spec["features"]), 3)}
    for name, (without, blank) in variants.items():
        kept = [f for f in spec["features"] if f["name"] not in without]
        found[name] = round(score(kept, blank), 3) if kept else 0.0
    return found

"""A model's baseline: a profile of what it was trained on (each feature of the training rows, the holdout's predicted
classes and confidence, and how often it was right at each confidence level). The trainer writes it beside the model's
other artifacts (signed with them); model monitoring (services/monitor) compares recent predictions with it.

The trainer writes it with `profile` (JSON values); the monitor reads it back as one type, `Baseline`, and never
reaches into it with string keys. The profile and the comparison cut values the same way (tokens, missing values,
numbers): those helpers live here, once. Pure numpy: no scikit-learn, no pandas, no scipy.
"""

from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sommelier_contract.records import bucket_of
from sommelier_contract.typed import build

FORMAT = 1
TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern, lower-cased like TfidfVectorizer
SAMPLE = 2000  # training values kept per measure for the monitor's two-sample tests
TOP_CATEGORIES = 50
KNOWN_CATEGORIES = 5000
VOCABULARY = 5000
TOP_TOKENS = 50
CONFIDENCE_EDGES = [0.5, 0.6, 0.7, 0.8, 0.9]  # calibration bins for the estimate before labels


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def is_missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def numbers_of(values: Sequence[Any]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_):
            out[i] = float(v)
    return out


def _sample(x: np.ndarray, rng: np.random.Generator) -> list[float]:
    chosen = x if len(x) <= SAMPLE else rng.choice(x, SAMPLE, replace=False)
    return [round(float(v), 6) for v in chosen]


def bins(x: np.ndarray, edges: list[float]) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)


def _numeric_profile(x: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    present = x[~np.isnan(x)]
    if not len(present):
        return {"n": 0, "missing": 1.0}
    edges = [float(e) for e in np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9)))]
    return {"n": int(len(present)), "missing": float(1 - len(present) / len(x)), "min": float(present.min()),
            "max": float(present.max()), "std": float(present.std()), "edges": edges,
            "shares": (bins(present, edges) / len(present)).tolist(), "sample": _sample(present, rng)}


def frequencies(values: list[str]) -> dict[str, Any]:
    """How many values, the shares of the TOP_CATEGORIES most frequent, and the share of all the others."""
    counts = Counter(values)
    top = dict(counts.most_common(TOP_CATEGORIES))
    total = max(len(values), 1)
    return {"n": len(values), "shares": {k: v / total for k, v in top.items()}, "other": 1 - sum(top.values()) / total}


def _categorical_profile(values: list[str | None]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    counts = Counter(present)
    return {**frequencies(present), "missing": 1 - len(present) / max(len(values), 1),
            "known": sorted(counts)[:KNOWN_CATEGORIES], "known_complete": len(counts) <= KNOWN_CATEGORIES,
            "singletons": sum(1 for c in counts.values() if c == 1)}


def tokenized(values: list[str | None]) -> list[list[str]]:
    return [tokens(text) if text is not None else [] for text in values]


def text_measures(docs: list[list[str]], vocabulary: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per text (its tokens): its length and the share of them outside `vocabulary` (NaN for a missing or empty text)."""
    lengths, unseen = np.full(len(docs), np.nan), np.full(len(docs), np.nan)
    for i, words in enumerate(docs):
        if words:
            lengths[i] = len(words)
            unseen[i] = sum(w not in vocabulary for w in words) / len(words) if vocabulary else 0.0
    return lengths, unseen


def _text_profile(values: list[str | None], rng: np.random.Generator) -> dict[str, Any]:
    docs = tokenized(values)
    counts = Counter(w for words in docs for w in words)
    vocabulary = [w for w, _ in counts.most_common(VOCABULARY)]
    lengths, unseen = text_measures(docs, set(vocabulary))
    total = max(sum(counts.values()), 1)
    top = dict(counts.most_common(TOP_TOKENS))
    present = lengths[~np.isnan(lengths)]
    return {"n": int(len(present)), "missing": float(1 - len(present) / max(len(values), 1)), "vocabulary": vocabulary,
            "tokens": {k: v / total for k, v in top.items()}, "other": 1 - sum(top.values()) / total,
            "length": _numeric_profile(lengths, rng), "unseen": _numeric_profile(unseen, rng)}


def strings(values: Sequence[Any]) -> list[str | None]:
    return [None if is_missing(v) else str(v) for v in values]


def profile(features: list[dict[str, Any]], columns: dict[str, Sequence[Any]], *, predicted: list[str],
            confidence: list[float], correct: list[bool], classes: list[str], segments: list[dict[str, Any]],
            seed: int = 0) -> dict[str, Any]:
    """The baseline: each feature of the training rows (`columns`, by name), the holdout's predicted classes, its
    confidence, and how often it was right at each confidence level (for the estimate before labels)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for f in features:
        values = columns[f["name"]]
        if f["type"] == "numeric":
            out[f["name"]] = {"type": "numeric", **_numeric_profile(numbers_of(values), rng)}
        elif f["type"] == "categorical":
            out[f["name"]] = {"type": "categorical", **_categorical_profile(strings(values))}
        else:
            out[f["name"]] = {"type": "text", **_text_profile(strings(values), rng)}
    conf = np.asarray(confidence, dtype=float)
    right = np.asarray(correct, dtype=bool)
    level = np.searchsorted(CONFIDENCE_EDGES, conf, side="right")
    rows = len(next(iter(columns.values()))) if columns else 0
    return {
        "format": FORMAT,
        "rows": rows,
        "features": out,
        "predictions": {
            "rows": len(predicted),
            "classes": {c: predicted.count(c) / max(len(predicted), 1) for c in classes},
            "confidence": _numeric_profile(conf, rng),
            "accuracy": float(right.mean()) if len(right) else None,
            "calibration": {"edges": CONFIDENCE_EDGES,
                            "rows": np.bincount(level, minlength=len(CONFIDENCE_EDGES) + 1).tolist(),
                            "correct": np.bincount(level, weights=right, minlength=len(CONFIDENCE_EDGES) + 1).astype(int).tolist()},
        },
        "segments": {s["name"]: segment_shares(s, columns) for s in segments if s.get("feature") in columns},
    }


def segment_shares(segment: dict[str, Any], columns: dict[str, Sequence[Any]]) -> dict[str, Any]:
    return frequencies([b for b in (bucket_of(segment, v) for v in columns[segment["feature"]]) if b is not None])


# -- the document, as the monitor reads it -----------------------------------------------------------------------------

@dataclass(frozen=True)
class NumericProfile:
    """Numbers (a numeric feature, a text's length or unseen-word share, the holdout's confidence): `n` present values,
    their range and spread, the training deciles (`edges`) with each bin's share, and a sample for two-sample tests."""

    n: int
    missing: float
    min: float | None = None
    max: float | None = None
    std: float | None = None
    edges: tuple[float, ...] = ()
    shares: tuple[float, ...] = ()
    sample: tuple[float, ...] = ()
    type: str = "numeric"


@dataclass(frozen=True)
class Frequencies:
    """Categories: `n` values, the shares of the most frequent (TOP_CATEGORIES), and the share of all the others."""

    n: int
    shares: dict[str, float]
    other: float


@dataclass(frozen=True)
class CategoricalProfile(Frequencies):
    missing: float = 0.0
    known: tuple[str, ...] = ()  # every category training had (up to KNOWN_CATEGORIES; `known_complete` says whether all)
    known_complete: bool = False
    singletons: int = 0  # categories met once: how often training met a new one (Good-Turing)
    type: str = "categorical"


@dataclass(frozen=True)
class TextProfile:
    n: int
    missing: float
    vocabulary: tuple[str, ...]
    tokens: dict[str, float]  # the top tokens' shares
    other: float
    length: NumericProfile
    unseen: NumericProfile
    type: str = "text"


@dataclass(frozen=True)
class Calibration:
    """How often the holdout was right at each confidence level (between `edges`)."""

    edges: tuple[float, ...]
    rows: tuple[int, ...]
    correct: tuple[int, ...]


@dataclass(frozen=True)
class PredictionProfile:
    rows: int
    classes: dict[str, float]  # the holdout's predicted class mix
    confidence: NumericProfile
    accuracy: float | None
    calibration: Calibration


FeatureProfile = NumericProfile | CategoricalProfile | TextProfile
_PROFILES: dict[str, type] = {"numeric": NumericProfile, "categorical": CategoricalProfile, "text": TextProfile}


@dataclass(frozen=True)
class Baseline:
    rows: int
    predictions: PredictionProfile
    features: dict[str, FeatureProfile] = field(default_factory=dict)
    segments: dict[str, Frequencies] = field(default_factory=dict)
    format: int = FORMAT

    @classmethod
    def parse(cls, doc: Any, where: str = "baseline") -> Baseline:
        """The baseline from its JSON values (as `profile` made them); ValueError says what is missing or malformed."""
        if not isinstance(doc, dict) or not isinstance(doc.get("features"), dict):
            raise ValueError(f"{where} must be an object with its features")
        features = {}
        for name, entry in doc["features"].items():
            kind = _PROFILES.get(str(entry.get("type"))) if isinstance(entry, dict) else None
            if kind is None:
                raise ValueError(f"{where}.features.{name} has no known type (numeric, categorical or text)")
            features[name] = build(kind, entry, f"{where}.features.{name}")
        return replace(build(cls, {**doc, "features": {}}, where), features=features)

"""A fitted preprocessing step replayed without scikit-learn: the input an ONNX model of the estimator takes.

skl2onnx cannot convert the text features the trainer's best text models use (TF-IDF over character n-grams
within words, `analyzer="char_wb"`, and accent stripping both raise NotImplementedError in skl2onnx 1.20), and
ONNX Runtime's Tokenizer matches `\\w` in ASCII only, so "rosé" would split where scikit-learn keeps one word.
The trainer therefore writes the fitted ColumnTransformer's state as JSON (`spec`, trainer/onnx_export.py) and
this module computes, from the records' matrix, exactly the columns scikit-learn's `transform` would: median
fill and scaling of numbers, one-hot categories (infrequent and unknown values in the infrequent column), TF-IDF
of text with scikit-learn's own preprocessing, tokens and n-grams (`_analyzer` mirrors
sklearn/feature_extraction/text.py). The trainer keeps the result only when the served probabilities match the
pipeline's on the holdout within its tolerance, so any drift from scikit-learn's behaviour is refused, not served.

Imports: numpy, re, unicodedata and the records module (a cold start pays for nothing else).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from sommelier_contract.records import ABSENT, present

ROWS_PER_CHUNK = 64  # rows made dense at once: 64 rows of 130,000 text columns are 67 MB


def _strip_unicode(s: str) -> str:
    try:
        s.encode("ASCII", errors="strict")
        return s
    except UnicodeEncodeError:
        normalized = unicodedata.normalize("NFKD", s)
        return "".join([c for c in normalized if not unicodedata.combining(c)])


def _strip_ascii(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ASCII", "ignore").decode("ASCII")


_ACCENTS: dict[str | None, Callable[[str], str] | None] = {None: None, "unicode": _strip_unicode, "ascii": _strip_ascii}
_WHITE_SPACES = re.compile(r"\s\s+")
_STEPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "subtract": np.subtract, "divide": np.divide, "multiply": np.multiply, "add": np.add,
    "clip": lambda values, bounds: np.clip(values, bounds[0], bounds[1]),
}


def _word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    if high == 1:
        return tokens
    out = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high + 1, len(tokens) + 1)):
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


def _char_ngrams(doc: str, low: int, high: int) -> list[str]:
    doc = _WHITE_SPACES.sub(" ", doc)
    out = list(doc) if low == 1 else []
    for n in range(max(low, 2), min(high + 1, len(doc) + 1)):
        out.extend(doc[i:i + n] for i in range(len(doc) - n + 1))
    return out


def _char_wb_ngrams(doc: str, low: int, high: int) -> list[str]:
    out: list[str] = []
    for word in _WHITE_SPACES.sub(" ", doc).split():
        w = " " + word + " "
        for n in range(low, high + 1):
            offset = 0
            out.append(w[offset:offset + n])
            while offset + n < len(w):
                offset += 1
                out.append(w[offset:offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return out


def _analyzer(block: dict[str, Any]) -> Callable[[str], list[str]]:
    accents = _ACCENTS[block["strip_accents"]]
    lower = block["lowercase"]
    low, high = block["ngram_range"]
    kind = block["analyzer"]
    tokens = re.compile(block["token_pattern"]).findall if kind == "word" else None

    def analyze(doc: str) -> list[str]:
        if lower:
            doc = doc.lower()
        if accents is not None:
            doc = accents(doc)
        if tokens is not None:
            return _word_ngrams(tokens(doc), low, high)
        return (_char_wb_ngrams if kind == "char_wb" else _char_ngrams)(doc, low, high)

    return analyze


def word_counter(words: Callable[[str], list[str]], vocabulary: Any) -> Callable[[str], tuple[int, int]]:
    """A text -> (its words in `vocabulary`, its words), the words cut by `words`."""

    def count(doc: str) -> tuple[int, int]:
        found = words(doc)
        return sum(1 for w in found if w in vocabulary), len(found)

    return count


class Featurizer:
    """`spec` (JSON values): {"width": columns out, "blocks": [...]}, each block writing the columns from its
    `offset` on, in the ColumnTransformer's order. Blocks: "numeric" (fill a missing value, then `steps`: the
    scaler's arithmetic in its own order), "onehot" (a column per known value, `other` for any other value),
    "tfidf" (a vocabulary, its idf and how the text is cut into terms), "presence" (1 for each feature a record
    carries: records.present)."""

    def __init__(self, spec: dict[str, Any]):
        self.width = int(spec["width"])
        self._blocks = spec["blocks"]
        self._analyzers = {i: _analyzer(b) for i, b in enumerate(self._blocks) if b["kind"] == "tfidf"}
        self._idf = {i: None if b["idf"] is None else np.asarray(b["idf"], dtype=np.float64)
                     for i, b in enumerate(self._blocks) if b["kind"] == "tfidf"}

    def word_counters(self) -> dict[int, Callable[[str], tuple[int, int]]]:
        """Per text column (its index in the records' matrix): a text -> (its words in the model's word vocabulary, its
        words), cut as the vectorizer cuts them (case, accents, token pattern): how much of a text the model can read."""
        out: dict[int, Callable[[str], tuple[int, int]]] = {}
        for block in self._blocks:
            if block["kind"] == "tfidf" and block["analyzer"] == "word" and block["column"] not in out:
                out[block["column"]] = word_counter(_analyzer({**block, "ngram_range": [1, 1]}), block["vocabulary"])
        return out

    def chunks(self, X: np.ndarray, rows: int = ROWS_PER_CHUNK) -> Iterator[np.ndarray]:
        """The features of X's rows as matrices of at most `rows` rows each (wide text stays bounded)."""
        for start in range(0, len(X), rows):
            yield self.transform(X[start:start + rows])

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), self.width), dtype=np.float64)
        for i, block in enumerate(self._blocks):
            if block["kind"] == "numeric":
                self._numeric(block, X, out)
            elif block["kind"] == "onehot":
                self._onehot(block, X, out)
            elif block["kind"] == "presence":
                self._presence(block, X, out)
            else:
                self._tfidf(block, self._analyzers[i], self._idf[i], X, out)
        return out

    @staticmethod
    def _numeric(block: dict[str, Any], X: np.ndarray, out: np.ndarray) -> None:
        values = X[:, block["columns"]].astype(np.float64)
        fill = np.asarray(block["fill"], dtype=np.float64)
        values = np.where(np.isnan(values), fill, values)
        for op, arg in block["steps"]:
            values = _STEPS[op](values, np.asarray(arg, dtype=np.float64))
        out[:, block["offset"]:block["offset"] + values.shape[1]] = values

    @staticmethod
    def _presence(block: dict[str, Any], X: np.ndarray, out: np.ndarray) -> None:
        for k, (column, kind) in enumerate(zip(block["columns"], block["kinds"], strict=True)):
            out[:, block["offset"] + k] = present(X[:, column], kind)

    @staticmethod
    def _onehot(block: dict[str, Any], X: np.ndarray, out: np.ndarray) -> None:
        offset = block["offset"]
        skip = block.get("absent") == "nothing"  # an ABSENT category writes no column (sommelier_contract.experts.AbsentOneHot)
        for column, index, other in zip(block["columns"], block["index"], block["other"], strict=True):
            for r, value in enumerate(X[:, column]):
                if skip and value is ABSENT:
                    continue
                at = index.get(value if isinstance(value, str) else str(value), other)
                if at is not None:
                    out[r, offset + at] = 1.0

    @staticmethod
    def _tfidf(block: dict[str, Any], analyze: Callable[[str], list[str]], idf: np.ndarray | None, X: np.ndarray,
               out: np.ndarray) -> None:
        vocabulary, offset = block["vocabulary"], block["offset"]
        for r, doc in enumerate(X[:, block["column"]]):
            counts = Counter(j for j in map(vocabulary.get, analyze(doc if isinstance(doc, str) else "")) if j is not None)
            if not counts:
                continue
            at = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if block["sublinear_tf"]:
                tf = np.log(tf) + 1.0
            if idf is not None:
                tf = tf * idf[at]
            if block["norm"] == "l2":
                tf = tf / math.sqrt(float(np.dot(tf, tf)))
            elif block["norm"] == "l1":
                tf = tf / float(np.abs(tf).sum())
            out[r, offset + at] = tf

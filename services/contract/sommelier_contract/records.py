"""Records: what a model accepts (the JSON Schema compiled from its manifest's features, with
field-level errors a caller can act on) and the matrix its pipeline takes.

The fitted pipeline takes a 2-D array whose columns follow the manifest's feature order (floats
when every feature is numeric, objects otherwise); a missing numeric value is NaN, which the
pipeline's imputer handles. The API's records, feedback rows and training frames all go through
`to_matrix`, so serving sees exactly what training saw.

Validation has two paths: a check compiled once per model by fastjsonschema answers "valid?" in
microseconds (the happy path, every record of a batch); only a record it refuses goes through
jsonschema, imported then, which lists every problem with its field. A property test holds the
two to the same verdict.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import numpy as np

# A number beyond this cannot be trained on: scaling sums squares, and 1e308 (which JSON and the API allow) makes them
# overflow to inf and the whole column NaN. No real feature comes near it (a millisecond timestamp is 1.7e12).
TRAINABLE = 1e15
_JSON_TYPE = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object", type(None): "null"}


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def bucket_of(segment: dict[str, Any], value: Any) -> str | None:
    """The bucket a value falls in for one segment of the dataset spec (e.g. "12-13" of a numeric range, or "Merlot"),
    None for a missing value or a non-number where the segment has edges."""
    if value is None or value == "":
        return None
    edges = segment.get("edges")
    if not edges:
        return str(value)[:64]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        return None
    return _bucket_label(edges, bisect.bisect_right(edges, value))


def _bucket_label(edges: list[float], i: int) -> str:
    """The name of the bucket below edge `i` (0: below the first edge; len(edges): from the last one up)."""
    if i == 0:
        return f"<{edges[0]:g}"
    if i == len(edges):
        return f">={edges[-1]:g}"
    return f"{edges[i - 1]:g}-{edges[i]:g}"


def bucket_counts(segment: dict[str, Any], values: list[Any]) -> dict[str, int]:
    """How many of `values` fall in each bucket (bucket_of's), missing ones left out: numbers counted with one
    searchsorted over the edges, not one bisect and label each (a batch of 1,000's metrics: 7 -> 2 ms)."""
    edges = segment.get("edges")
    if not edges:
        counts: dict[str, int] = {}
        for value in values:
            bucket = bucket_of(segment, value)
            if bucket is not None:
                counts[bucket] = counts.get(bucket, 0) + 1
        return counts
    numbers = np.array([v for v in values if isinstance(v, int | float) and not isinstance(v, bool)], dtype=float)
    slots = np.bincount(np.searchsorted(np.asarray(edges, dtype=float), numbers[~np.isnan(numbers)], side="right"),
                        minlength=len(edges) + 1)
    return {_bucket_label(edges, i): int(n) for i, n in enumerate(slots.tolist()) if n}


ABSENT = None  # a category the record does not carry, in the records' matrix (the empty category is "")


def answers_absent(feature: dict[str, Any]) -> bool:
    """The model answers without this feature (the manifest's "absent": a model whose preprocessing writes nothing for
    it, sommelier_contract.experts); models published before it take a missing category or text as the empty one."""
    return bool(feature.get("absent"))


def present(column: Any, kind: str) -> np.ndarray:
    """Which values of one column of the records' matrix a record carries: a number that is not NaN, a category that is
    not ABSENT (the empty category is a value the data has), a text with a word in it."""
    if kind == "numeric":
        return ~np.isnan(np.asarray(column, dtype=float))
    if kind == "categorical":
        return np.array([v is not ABSENT for v in column], dtype=bool)
    return np.array([isinstance(v, str) and bool(v.strip()) for v in column], dtype=bool)


def went_without(X: np.ndarray, features: list[dict[str, Any]]) -> list[list[str]]:
    """Per row of the records' matrix, the features it does not carry (`present`), in the model's order: what the
    prediction went without, which the API says beside it."""
    if not len(X):
        return []
    carried = np.column_stack([present(X[:, j], f["type"]) for j, f in enumerate(features)])
    names = [f["name"] for f in features]
    return [[names[j] for j in np.flatnonzero(~row)] for row in carried]


def feature_property(feature: dict[str, Any]) -> dict[str, Any]:
    kind = feature["type"]
    if answers_absent(feature) and kind != "numeric":
        # any value may be left out, null or empty: left out it is absent; null or "" is the empty value the data has
        # (for a category the model never saw empty: absent too)
        loose: dict[str, Any] = {"type": ["string", "null"],
                                 "maxLength": 200 if kind == "categorical" else int(feature.get("max_length", 5000))}
        if kind == "categorical" and feature.get("categories"):
            loose["enum"] = [*feature["categories"], "", None]
        return loose
    if kind == "numeric":
        # a feature the pipeline imputes (the manifest says how) may be null or absent, as in training
        # every number is finite and bounded: the spec's bounds (inferred from the data with a margin), else what can be
        # trained on; so 1e309 (infinity once parsed) or an integer of 400 digits is refused naming its field
        prop: dict[str, Any] = {"type": ["number", "null"] if feature.get("imputed") else "number"}
        for bound, default in (("minimum", -TRAINABLE), ("maximum", TRAINABLE)):
            prop[bound] = default if feature.get(bound) is None else feature[bound]
        return prop
    # a categorical or text feature that was missing in training rows (the manifest says "imputed": the model learned
    # what a missing value means) may be null, empty or absent too
    if kind == "categorical":
        if feature.get("imputed"):
            prop = {"type": ["string", "null"], "maxLength": 200}
            if feature.get("categories"):
                prop["enum"] = [*feature["categories"], "", None]
            return prop
        prop = {"type": "string", "minLength": 1, "maxLength": 200}
        if feature.get("categories"):
            prop["enum"] = list(feature["categories"])
        return prop
    if kind == "text":
        return {"type": ["string", "null"] if feature.get("imputed") else "string", "maxLength": int(feature.get("max_length", 5000))}
    raise ValueError(f"feature {feature['name']!r} has unknown type {kind!r}")


def required_features(features: list[dict[str, Any]]) -> list[str]:
    """The features a record must carry: those the dataset's spec marks "required"; for a model published before models
    answered without a feature (answers_absent), all but those it imputes when missing (the manifest's "imputed")."""
    return [f["name"] for f in features if f.get("required") or not (answers_absent(f) or f.get("imputed"))]


def _known(feature: dict[str, Any]) -> dict[str, Any]:
    """A value that says something: a number, or a string that is not empty."""
    return {"type": "number"} if feature["type"] == "numeric" else {"type": "string", "minLength": 1}


def record_schema(features: list[dict[str, Any]]) -> dict[str, Any]:
    required = required_features(features)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f["name"]: feature_property(f) for f in features},
        "required": required,
        "additionalProperties": False,
    }
    if not required:  # every feature may be missing, but not all at once: a prediction from imputed values alone says nothing
        schema["anyOf"] = [{"required": [f["name"]], "properties": {f["name"]: _known(f)}} for f in features]
    return schema


def shown(value: Any) -> str:
    """A number as a person reads it in a message: an integer of hundreds of digits by its size, infinity by name."""
    if isinstance(value, float) and math.isinf(value):
        return "a number too large to hold (infinity)" if value > 0 else "a number too small to hold (-infinity)"
    text = str(value)
    return f"{text[:8]}... (a number of {len(text.lstrip('-'))} digits)" if len(text) > 24 else text


def json_type(value: Any) -> str:
    return _JSON_TYPE.get(type(value), type(value).__name__)


class SchemaValidator:
    """A JSON Schema for an object, checked on two paths: a check compiled by fastjsonschema answers "valid?"
    (the happy path), and jsonschema, imported only then, lists each problem of a refused document as a
    FieldError. Records, the feedback body and the history query all go through one of these."""

    what = "values"  # what the object holds, for "must be an object of ..."

    def __init__(self, schema: dict[str, Any], unknown: str = "is not allowed", messages: dict[str, str] | None = None):
        self.schema = schema
        self._names = list(schema.get("properties", {}))
        self._unknown = unknown  # said of a property the schema does not name
        self._messages = messages or {}  # property -> the one message for any problem with it
        self._fast = fastjsonschema.compile({"$schema": "http://json-schema.org/draft-07/schema#", **schema})
        self._full: Any = None  # jsonschema's validator, built the first time a document is refused

    def valid(self, doc: Any) -> bool:
        try:
            self._fast(doc)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def errors(self, doc: Any, where: str = "") -> list[FieldError]:
        """All problems of one document; `where` prefixes field paths (e.g. "features", "instances[3]"; "" for none)."""
        if not isinstance(doc, dict):
            return [FieldError(where, f"must be an object of {self.what}, got {json_type(doc)}")]
        if self.valid(doc):
            return []
        if self._full is None:
            from jsonschema import Draft202012Validator  # deferred: only a refused document needs the explanation

            self._full = Draft202012Validator(self.schema)
        found = dict.fromkeys(e for err in self._full.iter_errors(doc) for e in self._describe(err, doc, where))
        return sorted(found, key=lambda e: (self._order(e.field), e.field))

    def _order(self, field: str) -> int:
        name = field.rsplit(".", 1)[-1]
        return self._names.index(name) if name in self._names else len(self._names)

    def _describe(self, err, doc: dict, where: str) -> list[FieldError]:
        def at(*parts: Any) -> str:
            return ".".join(str(p) for p in (where, *parts) if p != "")

        path = at(*err.absolute_path)
        kind, expected, value = err.validator, err.validator_value, err.instance
        # jsonschema reports each missing or unknown property as an error of its own
        if kind == "required":
            return [FieldError(at(name), "is required") for name in expected if name not in doc]
        if kind == "additionalProperties":
            return [FieldError(at(name), self._unknown) for name in doc if name not in self._names]
        if err.absolute_path and str(err.absolute_path[0]) in self._messages:
            return [FieldError(path, self._messages[str(err.absolute_path[0])])]
        if kind == "type":
            wanted = " or ".join(expected) if isinstance(expected, list) else expected
            return [FieldError(path, f"must be a {wanted}, got {json_type(value)}")]
        if kind == "minimum":
            return [FieldError(path, f"must be >= {expected:g}, got {shown(value)}")]
        if kind == "maximum":
            return [FieldError(path, f"must be <= {expected:g}, got {shown(value)}")]
        if kind == "minLength":
            return [FieldError(path, "must not be empty" if expected == 1 else f"must be at least {expected} characters")]
        if kind == "maxLength":
            return [FieldError(path, f"must be at most {expected} characters, got {len(value)}")]
        if kind == "anyOf" and not err.absolute_path:  # the record-level "at least one value" rule
            return [FieldError(where, "has no feature values: give at least one")]
        if kind == "enum":  # an optional category lists its values, then says it may be missing
            known = [str(v) for v in expected if v not in ("", None)]
            gap = " (or empty)" if len(known) < len(expected) else ""
            return [FieldError(path, f"must be one of {', '.join(known)}{gap}; got {value!r}")]
        return [FieldError(path, err.message)]


class RecordValidator(SchemaValidator):
    """What a model accepts: its record schema (record_schema), with field errors a caller can act on."""

    what = "feature values"

    def __init__(self, features: list[dict[str, Any]]):
        super().__init__(record_schema(features), unknown="is not a feature of this model")
        self.features = features


def to_matrix(records: Any, features: list[dict[str, Any]]) -> np.ndarray:
    """`records`: a list of {name: value} (the API, feedback) or a pandas DataFrame (training)."""
    names = [f["name"] for f in features]
    dtype = float if all(f["type"] == "numeric" for f in features) else object
    if hasattr(records, "columns"):  # a DataFrame: whole columns at once
        return records[names].to_numpy(dtype=dtype)
    # a missing number is NaN (the imputer fills it); a text left out or null is the empty text; a category left out is
    # ABSENT where the model answers without it, null or "" its empty value (ABSENT too if the model never saw it empty);
    # a model published before keeps taking a missing category as "", as its training rows held it. A column at a time:
    # a batch of 1,000 records of 11 features in ~3 ms, where a function call a cell took 5
    out = np.empty((len(records), len(names)), dtype=dtype)
    for j, f in enumerate(features):
        out[:, j] = _column(records, f)
    return out


def _column(records: list[dict[str, Any]], feature: dict[str, Any]) -> list[Any]:
    """One feature's values of `records` as the matrix holds them (to_matrix)."""
    name = feature["name"]
    if feature["type"] == "numeric":
        return [float("nan") if r.get(name) is None else r[name] for r in records]
    if feature["type"] == "categorical" and answers_absent(feature):
        empty = "" if feature.get("imputed") else ABSENT
        return [ABSENT if name not in r else (empty if r[name] is None or r[name] == "" else r[name]) for r in records]
    return ["" if r.get(name) is None else r[name] for r in records]


WordCounter = Callable[[str], tuple[int, int]]  # a text -> (its words the model learned, its words)
FEW_KNOWN = 0.5  # a text of 3 words or more, fewer than half of them learned: the model reads little of it


def unusual(records: list[dict[str, Any]], features: list[dict[str, Any]], X: np.ndarray,
            words: dict[str, WordCounter] | None = None, learned: dict[str, frozenset[str]] | None = None) -> list[list[dict[str, Any]]]:
    """What in each valid record lies outside what the model was trained on: each number beyond the range its training
    rows had (the manifest's "seen"; the spec's "observed" for a model published before it), a category the model
    learned nothing for (the manifest's "learned": the values training had at least twice, as the encoder keeps them), a
    text most of whose words the model never learned (`words`: the model's own vocabulary). The API answers it with the
    prediction, which is an extrapolation there. `X`: the records' matrix (to_matrix), whose numeric columns are compared
    with their ranges a column at a time (a batch of 1,000 wine records: 14 -> 2 ms). `learned`: the manifest's lists as
    sets, made once per model. Each record's list names its features in the model's order."""
    out: list[list[dict[str, Any]]] = [[] for _ in records]
    learned = learned if learned is not None else learned_values(features)
    for j, f in enumerate(features):
        name = f["name"]
        if f["type"] == "categorical" and name in learned:
            known = learned[name]
            for i, r in enumerate(records):
                value = r.get(name)
                if isinstance(value, str) and value != "" and value not in known:
                    out[i].append({"feature": name, "message": f"{value!r} is a value the model did not learn (training had it "
                                                               "fewer than twice), so it is taken as a rare one"})
        elif f["type"] == "text" and words and name in words:
            count = words[name]
            for i, r in enumerate(records):
                value = r.get(name)
                if isinstance(value, str):
                    seen_words, total = count(value)
                    if total >= 3 and seen_words < FEW_KNOWN * total:
                        out[i].append({"feature": name, "message": f"{'none' if not seen_words else f'only {seen_words}'} of its "
                                                                   f"{total} words are ones the model learned"})
        elif f["type"] == "numeric":
            seen = f.get("seen") or ([f["observed"]["min"], f["observed"]["max"]] if isinstance(f.get("observed"), dict) else None)
            if not seen or seen[0] is None:
                continue
            column = np.asarray(X[:, j], dtype=float)
            with np.errstate(invalid="ignore"):
                outside = (column < seen[0]) | (column > seen[1]) | np.isnan(column)  # NaN: a missing value, or a NaN sent
            for i in np.flatnonzero(outside).tolist():
                value = records[i].get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):  # not a missing one
                    out[i].append({"feature": name, "message": f"{value:g} is outside the range training saw ({seen[0]:g} to {seen[1]:g})"})
    return out


def learned_values(features: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """Each categorical feature's learned values (the manifest's "learned"), as sets."""
    return {f["name"]: frozenset(f["learned"]) for f in features if f["type"] == "categorical" and isinstance(f.get("learned"), list)}


def feedback_problem(doc: Any, validator: RecordValidator, classes: set[str]) -> str | None:
    """Why a stored feedback object cannot be trained on (the same record schema the API enforces), or None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), dict) or "label" not in doc:
        return 'expected an object with "features" (object) and "label"'
    errors = validator.errors(doc["features"], "features")
    if errors:
        return "; ".join(f"{e.field} {e.message}" for e in errors)
    if str(doc["label"]) not in classes:
        return f"label {doc['label']!r} is not one of the known classes ({', '.join(sorted(classes))})"
    return None

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sommelier_contract.records import RecordValidator

SPEC = json.loads((Path(__file__).resolve().parents[2] / "data/wine.spec.json").read_text())


@pytest.fixture
def validator() -> RecordValidator:
    return RecordValidator(SPEC["features"])


def _fields(errors):
    return {(e.field, e.message) for e in errors}


def test_a_valid_record_has_no_errors(validator, example):
    assert validator.errors(example, "features") == []


def test_missing_wrong_type_and_unknown_are_each_named(validator, example):
    record = dict(example)
    del record["ash"]
    record["alcohol"] = "13.2"
    record["hue"] = True
    record["vintage"] = 1999
    assert _fields(validator.errors(record, "features")) == {
        ("features.ash", "is required"),
        ("features.alcohol", "must be a number, got string"),
        ("features.hue", "must be a number, got boolean"),
        ("features.vintage", "is not a feature of this model"),
    }


def test_each_missing_feature_is_reported_once(validator):
    errors = validator.errors({}, "instances[2]")
    assert len(errors) == len(SPEC["features"])
    assert errors[0].field == "instances[2].alcohol"


def test_declared_ranges_are_enforced(validator, example):
    errors = validator.errors({**example, "magnesium": -1, "proline": 1e9}, "features")
    assert _fields(errors) == {("features.magnesium", "must be >= 0, got -1"), ("features.proline", "must be <= 5040, got 1000000000.0")}


def test_a_non_object_record_is_rejected(validator):
    assert _fields(validator.errors([1, 2], "features")) == {("features", "must be an object of feature values, got array")}


# The fast path (fastjsonschema) and the full validator (jsonschema) must give one verdict on any record.
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8), st.sampled_from(["red", "white", "rosé"]), st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_SPECS = [
    [{"name": "alcohol", "type": "numeric", "minimum": 0, "maximum": 45, "imputed": "median"}, {"name": "hue", "type": "numeric"}],
    [{"name": "price", "type": "numeric", "minimum": 0, "imputed": "median"}, {"name": "points", "type": "numeric", "imputed": "median"}],
    [{"name": "colour", "type": "categorical", "categories": ["red", "white", "rosé"]}, {"name": "note", "type": "text", "max_length": 6},
     {"name": "price", "type": "numeric", "minimum": 0, "imputed": "median"}],
]


@settings(max_examples=300, deadline=None)
@given(spec=st.sampled_from(_SPECS), record=st.dictionaries(st.sampled_from(["alcohol", "hue", "price", "points", "colour", "note", "x"]),
                                                           _VALUES, max_size=5))
def test_the_fast_check_and_the_full_validator_agree(spec, record):
    validator = RecordValidator(spec)
    full_verdict = not list(Draft202012Validator(validator.schema).iter_errors(record))
    assert validator.valid(record) == full_verdict, record
    assert (validator.errors(record, "features") == []) == full_verdict, record  # a refused record always says why


SEGMENT = {"name": "alcohol", "feature": "alcohol", "edges": [11.0, 12.5, 14.0]}
VALUES = st.lists(st.one_of(st.none(), st.just(""), st.booleans(), st.sampled_from([11.0, 12.5, 14.0, 10, 15]),
                            st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 30), st.text(max_size=3)), max_size=60)


@given(VALUES, st.booleans())
@settings(max_examples=300, deadline=None)
def test_bucket_counts_count_what_bucket_of_says_of_each_value(values, categorical):
    """Issue 39: a batch's segment metrics count a column at a time; each value still lands where bucket_of puts it
    (edges included, NaN, booleans, text and missing values left out of a numeric segment)."""
    from collections import Counter

    from sommelier_contract.records import bucket_counts, bucket_of

    segment = {"name": "s", "feature": "s"} if categorical else SEGMENT
    expected = Counter(b for b in (bucket_of(segment, v) for v in values) if b is not None)
    assert bucket_counts(segment, values) == dict(expected)


def test_unusual_names_each_record_s_numbers_beyond_the_training_range_a_column_at_a_time():
    """Numbers outside `seen` are named, per record, in the model's feature order; a missing number is not; a NaN sent
    is, as it was record by record; categories and text as before."""
    import numpy as np

    from sommelier_contract.records import to_matrix, unusual

    features = [{"name": "alcohol", "type": "numeric", "seen": [11.0, 14.8], "imputed": True},
                {"name": "variety", "type": "categorical", "learned": ["Merlot", "Syrah"]},
                {"name": "notes", "type": "text"},
                {"name": "price", "type": "numeric", "observed": {"min": 4, "max": 300}}]
    records = [{"alcohol": 13.0, "variety": "Merlot", "notes": "cherry tar smoke", "price": 20},  # nothing unusual
               {"alcohol": 15.2, "variety": "Gamay", "notes": "xx yy zz", "price": 301},
               {"alcohol": None, "variety": "", "notes": "", "price": 4},  # missing: not unusual
               {"alcohol": float("nan"), "variety": "Syrah", "notes": "cherry", "price": 3.5},
               {"alcohol": 11.0, "variety": "Syrah", "notes": "cherry", "price": 300}]  # the range's own ends
    words = {"notes": lambda text: (sum(w in {"cherry", "tar", "smoke"} for w in text.split()), len(text.split()))}
    found = unusual(records, features, to_matrix(records, features), words)
    assert [[u["feature"] for u in r] for r in found] == [[], ["alcohol", "variety", "notes", "price"], [], ["alcohol", "price"], []]
    assert found[1][0]["message"] == "15.2 is outside the range training saw (11 to 14.8)"
    assert found[1][3]["message"] == "301 is outside the range training saw (4 to 300)"
    assert found[3][0]["message"].startswith("nan is outside") and found[1][2]["message"].startswith("none of its 3 words")
    assert unusual(records[1:2], features, to_matrix(records[1:2], features), words) == found[1:2]  # one record as in a batch
    assert np.isnan(to_matrix(records, features)[2][0])

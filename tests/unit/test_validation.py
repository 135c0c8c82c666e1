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

import json
from pathlib import Path

import pytest

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
    assert _fields(errors) == {("features.magnesium", "must be >= 0, got -1"), ("features.proline", "must be <= 5040.0, got 1000000000.0")}


def test_a_non_object_record_is_rejected(validator):
    assert _fields(validator.errors([1, 2], "features")) == {("features", "must be an object of feature values, got array")}

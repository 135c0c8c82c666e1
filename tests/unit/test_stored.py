"""sommelier_contract.stored's DynamoDB attribute values, held to boto3's own (de)serializer for every JSON value: the
predictor writes with ours (boto3's import was ~80 ms of its cold start) and history and the monitor read with ours."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from sommelier_contract.stored import from_attribute, to_attribute

numbers = st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False, allow_infinity=False, width=64).map(
    lambda f: json.loads(json.dumps(f), parse_float=Decimal))
json_values = st.recursive(st.none() | st.booleans() | st.text(max_size=20) | numbers,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_every_json_value_is_stored_and_read_as_boto3_stores_and_reads_it(value):
    try:
        expected = TypeSerializer().serialize(value)
    except Exception as refused:  # a number DynamoDB cannot hold exactly: refused by both
        with pytest.raises(type(refused)):
            to_attribute(value)
        return
    assert to_attribute(value) == expected
    assert from_attribute(expected) == TypeDeserializer().deserialize(expected)


@pytest.mark.parametrize("value", [float("inf"), 1.5, Decimal("Infinity"), Decimal("NaN"), {1, 2}, b"bytes"])
def test_what_dynamodb_cannot_hold_as_json_is_refused_by_name(value):
    with pytest.raises((TypeError, ArithmeticError)):
        to_attribute(value)


def test_an_attribute_no_predictor_writes_is_named_when_read():
    with pytest.raises(ValueError, match="SS attribute"):
        from_attribute({"SS": ["a", "b"]})

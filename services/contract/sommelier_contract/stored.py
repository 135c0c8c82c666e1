"""Predictions as the predictor stores them in DynamoDB (predictor/records.py writes them and owns the layout), read
back into plain records: one per prediction, its input and probabilities decoded. History and model monitoring read
through here.

A number the API no longer accepts (infinity, written as `Infinity` or as 1e309, or beyond what can be trained on:
records stored before every number was bounded) is read as missing: one such record once made every history page
invalid JSON and every monitoring pass over it fail.

`to_attribute` and `from_attribute` are DynamoDB's attribute values for JSON-shaped data. boto3.dynamodb.types does the
same, but importing it imports boto3 (~80 ms of a predictor worker's cold start, issue 39; its clients need botocore
only): tests/unit/test_stored.py holds these two to boto3's own answers."""

from __future__ import annotations

import json
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

from sommelier_contract.records import TRAINABLE

JSON_ATTRIBUTES = ("input", "probabilities")
# DynamoDB's numbers: 38 significant digits, exponents -128..126; boto3's context, so what it refuses is refused here
_DYNAMODB_NUMBER = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])
_INTERNAL = {"history_pk", "model_pk", "history_sk", "record_type", "predictions"}


def to_attribute(value: Any) -> dict[str, Any]:
    """A JSON value (numbers as int or Decimal: `json.loads(text, parse_float=Decimal)`) as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        number = str(_DYNAMODB_NUMBER.create_decimal(value))
        if number in ("Infinity", "-Infinity", "NaN", "-NaN", "sNaN"):
            raise TypeError(f"DynamoDB stores no {number}")
        return {"N": number}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: to_attribute(v) for k, v in value.items()}}
    raise TypeError(f"cannot store a {type(value).__name__} as a DynamoDB attribute (floats go in as Decimal)")


def from_attribute(attribute: dict[str, Any]) -> Any:
    """A DynamoDB attribute value of JSON-shaped data read back, numbers as Decimal (as boto3 reads them)."""
    (kind, value), = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return _DYNAMODB_NUMBER.create_decimal(value)
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    raise ValueError(f"a stored prediction holds a DynamoDB {kind} attribute, which no version of the predictor writes")


def _number_or_none(text: str) -> float | int | None:
    value = float(text) if any(c in text for c in ".eE") else int(text)
    return value if abs(value) <= TRAINABLE else None  # inf and nan fail this too


def _loads(text: str) -> Any:
    """JSON as stored, every number the API would refuse read as None."""
    return json.loads(text, parse_float=_number_or_none, parse_int=_number_or_none, parse_constant=lambda _: None)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: from_attribute(v) for k, v in item.items() if k not in _INTERNAL}
    return json.loads(json.dumps(plain, default=_number))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A record of the layout before chunks: one item per prediction."""
    record = _plain(item)
    for k in JSON_ATTRIBUTES:
        if isinstance(record.get(k), str):
            record[k] = _loads(record[k])
    return record


def expand(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The predictions an item holds, newest first (the highest batch index first, as history lists them)."""
    if "predictions" not in item:
        return [from_item(item)]
    common = _plain(item)
    feedback = common.pop("feedback", None) or {}
    item_id = common.pop("prediction_id")
    out = []
    for entry in reversed(_loads(item["predictions"]["S"])):
        record = {**common, **entry, "prediction_id": f"{item_id}.{entry['batch_index']}"}
        if str(entry["batch_index"]) in feedback:
            record["feedback"] = feedback[str(entry["batch_index"])]
        out.append(record)
    return out


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value % 1 == 0 else float(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")

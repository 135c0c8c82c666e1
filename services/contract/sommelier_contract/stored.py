"""Predictions as the predictor stores them in DynamoDB (predictor/records.py writes them and owns the layout), read
back into plain records: one per prediction, its input and probabilities decoded. History and model monitoring read
through here.

A number the API no longer accepts (infinity, written as `Infinity` or as 1e309, or beyond what can be trained on:
records stored before every number was bounded) is read as missing: one such record once made every history page
invalid JSON and every monitoring pass over it fail."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from sommelier_contract.records import TRAINABLE

JSON_ATTRIBUTES = ("input", "probabilities")
_deserializer = TypeDeserializer()
_INTERNAL = {"history_pk", "model_pk", "history_sk", "record_type", "predictions"}


def _number_or_none(text: str) -> float | int | None:
    value = float(text) if any(c in text for c in ".eE") else int(text)
    return value if abs(value) <= TRAINABLE else None  # inf and nan fail this too


def _loads(text: str) -> Any:
    """JSON as stored, every number the API would refuse read as None."""
    return json.loads(text, parse_float=_number_or_none, parse_int=_number_or_none, parse_constant=lambda _: None)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: _deserializer.deserialize(v) for k, v in item.items() if k not in _INTERNAL}
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

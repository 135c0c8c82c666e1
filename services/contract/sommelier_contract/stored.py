"""Predictions as the predictor stores them in DynamoDB (predictor/records.py writes them and owns the layout), read
back into plain records: one per prediction, its input and probabilities decoded. History and model monitoring read
through here."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

JSON_ATTRIBUTES = ("input", "probabilities")
_deserializer = TypeDeserializer()
_INTERNAL = {"history_pk", "model_pk", "history_sk", "record_type", "predictions"}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: _deserializer.deserialize(v) for k, v in item.items() if k not in _INTERNAL}
    return json.loads(json.dumps(plain, default=_number))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A record of the layout before chunks: one item per prediction."""
    record = _plain(item)
    for k in JSON_ATTRIBUTES:
        if isinstance(record.get(k), str):
            record[k] = json.loads(record[k])
    return record


def expand(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The predictions an item holds, newest first (the highest batch index first, as history lists them)."""
    if "predictions" not in item:
        return [from_item(item)]
    common = _plain(item)
    feedback = common.pop("feedback", None) or {}
    item_id = common.pop("prediction_id")
    out = []
    for entry in reversed(json.loads(item["predictions"]["S"])):
        record = {**common, **entry, "prediction_id": f"{item_id}.{entry['batch_index']}"}
        if str(entry["batch_index"]) in feedback:
            record["feedback"] = feedback[str(entry["batch_index"])]
        out.append(record)
    return out


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value % 1 == 0 else float(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")

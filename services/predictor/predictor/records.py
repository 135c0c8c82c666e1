"""Prediction metadata in DynamoDB: one item per prediction, written before we answer."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

_serializer = TypeSerializer()
RECORD_TYPE = "prediction"
_BATCH = 25  # BatchWriteItem's limit


class RecordWriteError(Exception):
    """Predictions could not be recorded; the request must fail rather than answer unrecorded."""


class _Unprocessed(Exception):
    pass


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    # DynamoDB numbers are Decimals; a JSON round trip converts floats at any depth.
    plain = json.loads(json.dumps(record), parse_float=Decimal)
    return {k: _serializer.serialize(v) for k, v in plain.items() if v is not None}


class PredictionRecorder:
    def __init__(self, dynamodb, table: str, ttl_days: float):
        self._ddb = dynamodb
        self._table = table
        self.ttl_seconds = int(ttl_days * 86400)

    def write(self, records: list[dict[str, Any]]) -> None:
        items = [to_item({**r, "record_type": RECORD_TYPE}) for r in records]
        try:
            if len(items) == 1:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=items[0],
                    ConditionExpression="attribute_not_exists(prediction_id)",
                )
                return
            for start in range(0, len(items), _BATCH):
                self._write_batch([{"PutRequest": {"Item": i}} for i in items[start : start + _BATCH]])
        except Exception as err:
            raise RecordWriteError(f"could not record {len(items)} prediction(s): {err}") from err

    @retry(
        retry=retry_if_exception_type(_Unprocessed),
        stop=stop_after_attempt(6),
        wait=wait_exponential(multiplier=0.02, max=1),
        reraise=True,
    )
    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        left = self._ddb.batch_write_item(RequestItems={self._table: requests}).get("UnprocessedItems", {})
        if left.get(self._table):
            requests[:] = left[self._table]
            raise _Unprocessed(f"{len(requests)} items unprocessed")

"""Prediction metadata in DynamoDB: one item per prediction, written before we answer."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

_serializer = TypeSerializer()
RECORD_TYPE = "prediction"
HISTORY_INDEX = "recent"
_BATCH = 25  # BatchWriteItem's limit
_WRITERS = 8


class RecordWriteError(Exception):
    """Predictions could not be recorded; the request must fail rather than answer unrecorded."""


class _Unprocessed(Exception):
    pass


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    # DynamoDB numbers are Decimals; a JSON round trip converts floats at any depth.
    plain = json.loads(json.dumps(record), parse_float=Decimal)
    return {k: _serializer.serialize(v) for k, v in plain.items() if v is not None}


def history_key(record: dict[str, Any]) -> str:
    """Unique and ordered: records of one batch share a timestamp, so the batch index breaks the tie."""
    return f"{record['created_at']}|{record.get('batch_index', 0):05d}|{record['prediction_id']}"


class PredictionRecorder:
    def __init__(self, dynamodb, table: str, ttl_days: float):
        self._ddb = dynamodb
        self._table = table
        self.ttl_seconds = int(ttl_days * 86400)

    def write(self, records: list[dict[str, Any]]) -> None:
        items = [to_item({**r, "record_type": RECORD_TYPE, "history_sk": history_key(r)}) for r in records]
        try:
            if len(items) == 1:
                self._ddb.put_item(
                    TableName=self._table,
                    Item=items[0],
                    ConditionExpression="attribute_not_exists(prediction_id)",
                )
                return
            chunks = [[{"PutRequest": {"Item": i}} for i in items[start : start + _BATCH]] for start in range(0, len(items), _BATCH)]
            if len(chunks) == 1:
                self._write_batch(chunks[0])
            else:
                # the calls are independent round trips: overlap them (boto3 clients are thread-safe)
                with ThreadPoolExecutor(max_workers=min(_WRITERS, len(chunks))) as pool:
                    list(pool.map(self._write_batch, chunks))
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


_deserializer = TypeDeserializer()
_INTERNAL = {"record_type", "history_sk"}


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class BadToken(ValueError):
    pass


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: _deserializer.deserialize(v) for k, v in item.items() if k not in _INTERNAL}
    return json.loads(json.dumps(plain, default=_number))


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value % 1 == 0 else float(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError) as err:
        raise BadToken("the page token is not one this API issued") from err
    if not isinstance(key, dict) or set(key) != {"prediction_id", "record_type", "history_sk"}:
        raise BadToken("the page token is not one this API issued")
    return key


class PredictionReader:
    def __init__(self, dynamodb, table: str):
        self._ddb = dynamodb
        self._table = table

    def get(self, prediction_id: str) -> dict[str, Any]:
        # DynamoDB refuses an empty key or one over 2048 bytes (a 500 if asked): no such id was ever issued
        if not prediction_id or len(prediction_id.encode()) > 2048:
            raise NotFound(prediction_id)
        item = self._ddb.get_item(TableName=self._table, Key={"prediction_id": {"S": prediction_id}}, ConsistentRead=True).get("Item")
        if not item:
            raise NotFound(prediction_id)
        return from_item(item)

    def history(self, limit: int, token: str | None, model_version: str | None, since: str | None, until: str | None
                ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, from the `history` index; `since`/`until` are ISO timestamps (inclusive)."""
        names = {"#t": "record_type", **({"#k": "history_sk"} if since or until else {})}
        values: dict[str, Any] = {":t": {"S": RECORD_TYPE}}
        condition = "#t = :t"
        # history_sk is "<created_at>|<batch index>|<id>": "~" sorts after every suffix of a timestamp
        if since and until:
            condition += " AND #k BETWEEN :s AND :u"
            values.update({":s": {"S": since}, ":u": {"S": until + "~"}})
        elif since:
            condition += " AND #k >= :s"
            values[":s"] = {"S": since}
        elif until:
            condition += " AND #k <= :u"
            values[":u"] = {"S": until + "~"}
        kwargs: dict[str, Any] = {
            "TableName": self._table, "IndexName": HISTORY_INDEX, "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "ScanIndexForward": False,
        }
        if model_version:
            kwargs["FilterExpression"] = "model_version = :v"
            values[":v"] = {"S": model_version}
        items: list[dict[str, Any]] = []
        start = decode_token(token) if token else None
        # A filter applies after DynamoDB's page limit, so keep reading until the page is full.
        while True:
            if start:
                kwargs["ExclusiveStartKey"] = {k: {"S": v} for k, v in start.items()}
            kwargs["Limit"] = limit - len(items)
            page = self._ddb.query(**kwargs)
            items.extend(page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            start = {k: v["S"] for k, v in last.items()} if last else None
            if not start or len(items) >= limit:
                break
        next_token = encode_token(start) if start else None
        return [from_item(i) for i in items], next_token

    def add_feedback(self, prediction_id: str, feedback: dict[str, Any]) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"prediction_id": {"S": prediction_id}},
                UpdateExpression="SET feedback = :f",
                ConditionExpression="attribute_exists(prediction_id) AND attribute_not_exists(feedback)",
                ExpressionAttributeValues={":f": _serializer.serialize(json.loads(json.dumps(feedback), parse_float=Decimal))},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException as err:
            raise Conflict(prediction_id) from err

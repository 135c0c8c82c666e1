"""Prediction metadata in DynamoDB: one item per prediction, written before we answer.

Each item belongs to the API key that asked (`caller_key_id`); history is read per caller from
two indexes whose partition keys spread the writes: `history` (caller + UTC day) and `by_model`
(caller + model version), both sorted by `history_sk` ("<created_at>|<batch index>|<id>").
The input and the probabilities are stored as JSON text, so any number JSON can carry is kept as
sent (DynamoDB's own numbers stop at 1e-130) and an item costs one attribute each.
"""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

_serializer = TypeSerializer()
HISTORY_INDEX, MODEL_INDEX = "history", "by_model"
JSON_ATTRIBUTES = ("input", "probabilities")
_BATCH = 25  # BatchWriteItem's limit
_WRITERS = 8
MAX_QUERIES = 8  # the most index queries one history request makes; past it, a partial page and a token
NO_KEY = "-"  # the caller of a request that carried no API key id


class RecordWriteError(Exception):
    """Predictions could not be recorded; the request must fail rather than answer unrecorded."""


class _Unprocessed(Exception):
    pass


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    record = {**record, **{k: json.dumps(record[k], separators=(",", ":")) for k in JSON_ATTRIBUTES if k in record}}
    # the remaining numbers (confidence, latency, ...) are ours and in range; DynamoDB wants Decimals
    plain = json.loads(json.dumps(record), parse_float=Decimal)
    return {k: _serializer.serialize(v) for k, v in plain.items() if v is not None}


def history_key(record: dict[str, Any]) -> str:
    """Unique and ordered: records of one batch share a timestamp, so the batch index breaks the tie."""
    return f"{record['created_at']}|{record.get('batch_index', 0):05d}|{record['prediction_id']}"


def caller_of(record: dict[str, Any]) -> str:
    return record.get("caller_key_id") or NO_KEY


def index_keys(record: dict[str, Any]) -> dict[str, str]:
    caller = caller_of(record)
    return {"history_pk": f"{caller}#{record['created_at'][:10]}", "model_pk": f"{caller}#{record['model_version']}",
            "history_sk": history_key(record)}


class PredictionRecorder:
    def __init__(self, dynamodb, table: str, ttl_days: float):
        self._ddb = dynamodb
        self._table = table
        self.ttl_seconds = int(ttl_days * 86400)

    def write(self, records: list[dict[str, Any]]) -> None:
        items = [to_item({**r, **index_keys(r)}) for r in records]
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
_INTERNAL = {"history_pk", "model_pk", "history_sk", "record_type"}


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class BadToken(ValueError):
    pass


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: _deserializer.deserialize(v) for k, v in item.items() if k not in _INTERNAL}
    record = json.loads(json.dumps(plain, default=_number))
    for k in JSON_ATTRIBUTES:
        if isinstance(record.get(k), str):
            record[k] = json.loads(record[k])
    return record


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value % 1 == 0 else float(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BAD_TOKEN = "the page token is not one this API issued (or not for this key)"


def encode_token(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, index: str, partition: str | None) -> dict[str, Any]:
    """The page token as issued: which index, the day to go on from (history), and DynamoDB's
    LastEvaluatedKey, whose partition must be the caller's own (a token cannot open another's)."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError) as err:
        raise BadToken(_BAD_TOKEN) from err
    if not isinstance(doc, dict) or doc.get("index") != index or set(doc) - {"index", "day", "key"}:
        raise BadToken(_BAD_TOKEN)
    key = doc.get("key")
    if key is not None:
        fields = {"prediction_id", "history_sk", "history_pk" if index == HISTORY_INDEX else "model_pk"}
        if not isinstance(key, dict) or set(key) != fields or not all(isinstance(v, str) and 0 < len(v) <= 2048 for v in key.values()):
            raise BadToken(_BAD_TOKEN)
        if partition is not None and key.get("model_pk", partition) != partition:
            raise BadToken(_BAD_TOKEN)
    day = doc.get("day")
    if index == HISTORY_INDEX:
        if not isinstance(day, str) or not _DAY.match(day):
            raise BadToken(_BAD_TOKEN)
        try:
            date.fromisoformat(day)
        except ValueError as err:
            raise BadToken(_BAD_TOKEN) from err
        if key is not None and key["history_pk"].rsplit("#", 1)[-1] != day:
            raise BadToken(_BAD_TOKEN)
    return doc


class PredictionReader:
    def __init__(self, dynamodb, table: str):
        self._ddb = dynamodb
        self._table = table

    def get(self, prediction_id: str, caller: str | None) -> dict[str, Any]:
        """The prediction, if it exists and belongs to `caller` (an API key id); NotFound otherwise, so
        nobody learns whether another key's prediction exists."""
        # DynamoDB refuses an empty key or one over 2048 bytes (a 500 if asked): no such id was ever issued
        if not prediction_id or len(prediction_id.encode()) > 2048:
            raise NotFound(prediction_id)
        item = self._ddb.get_item(TableName=self._table, Key={"prediction_id": {"S": prediction_id}}, ConsistentRead=True).get("Item")
        if not item or caller_of(from_item(item)) != (caller or NO_KEY):
            raise NotFound(prediction_id)
        return from_item(item)

    def history(self, caller: str | None, limit: int, token: str | None, model_version: str | None, since: str | None,
                until: str | None, today: date, horizon_days: int) -> tuple[list[dict[str, Any]], str | None]:
        """The caller's predictions, newest first; `since`/`until` are ISO timestamps (inclusive). At most
        MAX_QUERIES index queries whatever the filters: a page may come back short, with a token to go on."""
        caller = caller or NO_KEY
        names: dict[str, str] = {"#p": "history_pk", **({"#k": "history_sk"} if since or until else {})}
        values: dict[str, Any] = {}
        condition = ""
        # history_sk is "<created_at>|<batch index>|<id>": "~" sorts after every suffix of a timestamp
        if since and until:
            condition, values = " AND #k BETWEEN :s AND :u", {":s": {"S": since}, ":u": {"S": until + "~"}}
        elif since:
            condition, values = " AND #k >= :s", {":s": {"S": since}}
        elif until:
            condition, values = " AND #k <= :u", {":u": {"S": until + "~"}}
        if model_version:
            partition = f"{caller}#{model_version}"
            names["#p"] = "model_pk"
            doc = decode_token(token, MODEL_INDEX, partition) if token else {"index": MODEL_INDEX, "key": None}
            items, last = self._query(MODEL_INDEX, names, {":p": {"S": partition}, **values}, "#p = :p" + condition, limit, doc["key"])
            return items, encode_token({"index": MODEL_INDEX, "key": last}) if last else None
        first = date.fromisoformat(until[:10]) if until else today
        last_day = max(date.fromisoformat(since[:10]) if since else date.min, today - timedelta(days=horizon_days))
        doc = decode_token(token, HISTORY_INDEX, None) if token else {"index": HISTORY_INDEX, "day": first.isoformat(), "key": None}
        day, start = date.fromisoformat(doc["day"]), doc.get("key")
        if start is not None and start["history_pk"] != f"{caller}#{day.isoformat()}":
            raise BadToken(_BAD_TOKEN)
        items: list[dict[str, Any]] = []
        for _ in range(MAX_QUERIES):
            if day < last_day or len(items) >= limit:
                break
            values[":p"] = {"S": f"{caller}#{day.isoformat()}"}
            page, start = self._query(HISTORY_INDEX, names, values, "#p = :p" + condition, limit - len(items), start)
            items += page
            if start is None:
                day -= timedelta(days=1)
        if start is None and day < last_day:
            return items, None
        return items, encode_token({"index": HISTORY_INDEX, "day": day.isoformat(), "key": start})

    def _query(self, index: str, names: dict[str, str], values: dict[str, Any], condition: str, limit: int,
               start: dict[str, str] | None) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        kwargs: dict[str, Any] = {"TableName": self._table, "IndexName": index, "KeyConditionExpression": condition,
                                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                                  "ScanIndexForward": False, "Limit": limit}
        if start:
            kwargs["ExclusiveStartKey"] = {k: {"S": v} for k, v in start.items()}
        page = self._ddb.query(**kwargs)
        last = page.get("LastEvaluatedKey")
        return [from_item(i) for i in page.get("Items", [])], ({k: v["S"] for k, v in last.items()} if last else None)
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

"""Prediction metadata in DynamoDB, written before we answer. This module owns the layout.

One item holds the predictions of one request, up to CHUNK_RECORDS of them (a larger batch takes
several items): a batch of 1,000 is 10 writes, not 1,000, and what is built per record is one JSON
text. A prediction's id names its item and its place in the batch (`<request key>.<chunk>.<index>`),
so it is read back with one GetItem; feedback on it is a conditional update of one map entry.

Each item belongs to the API key that asked (`caller_key_id`); history is read per caller from
two indexes whose partition keys spread the writes: `history` (caller + UTC day) and `by_model`
(caller + model version), both sorted by `history_sk` ("<created_at>|<first batch index>|<item id>").
Inputs and probabilities are JSON text, so any number JSON can carry is kept as sent (DynamoDB's own
numbers stop at 1e-130). Items written before this layout (one per prediction, a uuid as id) are
still read, listed and given feedback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from sommelier_contract.stored import expand, to_attribute

HISTORY_INDEX, MODEL_INDEX = "history", "by_model"
CHUNK_RECORDS = 100  # predictions in one item
CHUNK_BYTES = 350_000  # and at most this much JSON text: DynamoDB's item limit is 400 KB
_BATCH = 25  # BatchWriteItem's limit
_WRITERS = 8
MAX_QUERIES = 8  # the most index queries one history request makes; past it, a partial page and a token
NO_KEY = "-"  # the caller of a request that carried no API key id
_CHUNKED_ID = re.compile(r"^([0-9a-f]{32}\.[0-9]{1,4})\.([0-9]{1,5})$")


class RecordWriteError(Exception):
    """Predictions could not be recorded; the request must fail rather than answer unrecorded."""


class RecordTooLarge(ValueError):
    """One record is too large to be stored with its prediction: a client error, named by its index."""

    def __init__(self, index: int, size: int):
        super().__init__(f"the record is {size} bytes as JSON; a prediction's record is stored whole and may be at most {CHUNK_BYTES}")
        self.index = index


class _Unprocessed(Exception):
    pass


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# JSON that every reader parses; one encoder, as json.dumps with these arguments builds one per call (a batch of
# 1,000's items: 19 -> 15 ms)
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _chunks(entries: list[str]) -> list[tuple[int, list[str]]]:
    """(index of the first, entries) per item: at most CHUNK_RECORDS entries and CHUNK_BYTES of text each."""
    out: list[tuple[int, list[str]]] = []
    size = 0
    for i, entry in enumerate(entries):
        if len(entry) > CHUNK_BYTES:
            raise RecordTooLarge(i, len(entry))
        if not out or len(out[-1][1]) == CHUNK_RECORDS or size + len(entry) > CHUNK_BYTES:
            out.append((i, []))
            size = 0
        out[-1][1].append(entry)
        size += len(entry) + 1
    return out


class PredictionRecorder:
    """Writes the predictions of one request; owns their ids, timestamps, TTL and index keys."""

    def __init__(self, dynamodb, table: str, ttl_days: float, new_key: Callable[[], str] = lambda: uuid.uuid4().hex):
        self._ddb = dynamodb
        self._table = table
        self.ttl_seconds = int(ttl_days * 86400)
        self._new_key = new_key
        self.failing: str | None = None  # why this worker's last write failed, until one succeeds: /health says it

    def write(self, **request: Any) -> list[str]:
        """Records one request's predictions (see `items`) and returns their ids; RecordWriteError if it cannot."""
        ids, items = self.items(**request)
        try:
            self.put(items)
        except RecordWriteError as err:
            at = iso(request["now"])[11:19]
            self.failing = f"predictions cannot be recorded, so none is answered: the last write, at {at} UTC, failed ({str(err)[:400]})"
            raise
        self.failing = None
        return ids

    def items(self, *, caller: str | None, model_version: str, now: float, predictions: list[dict[str, Any]],
              inputs: list[dict[str, Any]], context: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        """The ids of `predictions` (label, confidence, probabilities; one per input) and the items that store them.
        `context` (request ids, latency) is stored once per item as it is."""
        key, created_at, who = self._new_key(), iso(now), caller or NO_KEY
        entries = [_dumps({**p, "batch_index": i, "input": record}) for i, (p, record) in enumerate(zip(predictions, inputs, strict=True))]
        common = {
            "record_type": {"S": "chunk"},
            "caller_key_id": {"S": who},
            "created_at": {"S": created_at},
            "model_version": {"S": model_version},
            "history_pk": {"S": f"{who}#{created_at[:10]}"},
            "model_pk": {"S": f"{who}#{model_version}"},
            "batch_size": {"N": str(len(entries))},
            "expires_at": {"N": str(int(now) + self.ttl_seconds)},
            "feedback": {"M": {}},
            **{k: to_attribute(json.loads(_dumps(v), parse_float=Decimal)) for k, v in context.items() if v is not None},
        }
        ids: list[str] = []
        items = []
        for c, (first, chunk) in enumerate(_chunks(entries)):
            item_id = f"{key}.{c}"
            ids += [f"{item_id}.{first + j}" for j in range(len(chunk))]
            items.append({**common, "prediction_id": {"S": item_id}, "history_sk": {"S": f"{created_at}|{first:05d}|{item_id}"},
                          "predictions": {"S": "[" + ",".join(chunk) + "]"}})
        return ids, items

    def put(self, items: list[dict[str, Any]]) -> None:
        try:
            if len(items) == 1:
                self._ddb.put_item(TableName=self._table, Item=items[0], ConditionExpression="attribute_not_exists(prediction_id)")
                return
            chunks = [[{"PutRequest": {"Item": i}} for i in items[start : start + _BATCH]] for start in range(0, len(items), _BATCH)]
            if len(chunks) == 1:
                self._write_batch(chunks[0])
            else:
                # the calls are independent round trips: overlap them (boto3 clients are thread-safe)
                with ThreadPoolExecutor(max_workers=min(_WRITERS, len(chunks))) as pool:
                    list(pool.map(self._write_batch, chunks))
        except Exception as err:
            n = sum(len(json.loads(i["predictions"]["S"])) for i in items)
            raise RecordWriteError(f"could not record {n} prediction(s): {err}") from err

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




class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class BadToken(ValueError):
    pass


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BAD_TOKEN = "the page token is not one this API issued (or not for this key)"
_OTHER_FILTERS = ("the page token was issued for other filters: send it with the same since, until and model_version "
                  "as the request that returned it, or leave next_token out to start from the newest")


def filters_id(model_version: str | None, since: str | None, until: str | None) -> str:
    """What a page token is bound to besides the key: its request's filters (DynamoDB refuses a start key outside the
    range a query asks for, and a page of one listing continued under another would skip or repeat records)."""
    return hashlib.sha256(json.dumps([model_version, since, until]).encode()).hexdigest()[:12]


def encode_token(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, index: str, partition: str | None, filters: str) -> dict[str, Any]:
    """The page token as issued: which index, the day to go on from (history), DynamoDB's key of the
    last item read, whose partition must be the caller's own (a token cannot open another's), and how
    many of that item's predictions are still to be listed (`rest`)."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError) as err:
        raise BadToken(_BAD_TOKEN) from err
    if not isinstance(doc, dict) or set(doc) - {"index", "day", "key", "rest", "f"} or not isinstance(doc.get("f"), str):
        raise BadToken(_BAD_TOKEN)
    if doc["f"] != filters or doc.get("index") != index:
        raise BadToken(_OTHER_FILTERS)
    key = doc.get("key")
    if key is not None:
        fields = {"prediction_id", "history_sk", "history_pk" if index == HISTORY_INDEX else "model_pk"}
        if not isinstance(key, dict) or set(key) != fields or not all(isinstance(v, str) and 0 < len(v) <= 2048 for v in key.values()):
            raise BadToken(_BAD_TOKEN)
        if partition is not None and key.get("model_pk", partition) != partition:
            raise BadToken(_BAD_TOKEN)
    rest = doc.get("rest", 0)
    if type(rest) is not int or not 0 <= rest < CHUNK_RECORDS or (rest and key is None):
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


def _token(index: str, filters: str, start: dict[str, str] | None, rest: int, day: date | None = None) -> str:
    doc: dict[str, Any] = {"index": index, "f": filters, **({"day": day.isoformat()} if day else {}), "key": start}
    return encode_token({**doc, "rest": rest} if rest else doc)


class PredictionReader:
    def __init__(self, dynamodb, table: str):
        self._ddb = dynamodb
        self._table = table

    def _item(self, item_id: str) -> dict[str, Any] | None:
        return self._ddb.get_item(TableName=self._table, Key={"prediction_id": {"S": item_id}}, ConsistentRead=True).get("Item")

    def get(self, prediction_id: str, caller: str | None) -> dict[str, Any]:
        """The prediction, if it exists and belongs to `caller` (an API key id); NotFound otherwise, so
        nobody learns whether another key's prediction exists."""
        # DynamoDB refuses an empty key or one over 2048 bytes (a 500 if asked): no such id was ever issued
        if not prediction_id or len(prediction_id.encode()) > 2048:
            raise NotFound(prediction_id)
        chunked = _CHUNKED_ID.match(prediction_id)
        item = self._item(chunked.group(1) if chunked else prediction_id)
        if not item or ("predictions" in item) != bool(chunked) or item.get("caller_key_id", {}).get("S", NO_KEY) != (caller or NO_KEY):
            raise NotFound(prediction_id)
        found = [r for r in expand(item) if r["prediction_id"] == prediction_id]
        if not found:
            raise NotFound(prediction_id)
        return found[0]

    def history(self, caller: str | None, limit: int, token: str | None, model_version: str | None, since: str | None,
                until: str | None, today: date, horizon_days: int) -> tuple[list[dict[str, Any]], str | None]:
        """The caller's predictions, newest first; `since`/`until` are ISO timestamps (inclusive). At most
        MAX_QUERIES index queries whatever the filters: a page may come back short, with a token to go on."""
        caller = caller or NO_KEY
        filters = filters_id(model_version, since, until)
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
            mark: dict[str, Any] = decode_token(token, MODEL_INDEX, partition, filters) if token else {"key": None}
            found, start, rest = self._collect(MODEL_INDEX, names, {":p": {"S": partition}, **values}, "#p = :p" + condition,
                                               limit, mark.get("key"), mark.get("rest", 0))
            return found, _token(MODEL_INDEX, filters, start, rest) if start else None
        first = date.fromisoformat(until[:10]) if until else today
        last_day = max(date.fromisoformat(since[:10]) if since else date.min, today - timedelta(days=horizon_days))
        doc: dict[str, Any] = decode_token(token, HISTORY_INDEX, None, filters) if token else {"day": first.isoformat(), "key": None}
        day, start, rest = date.fromisoformat(doc["day"]), doc.get("key"), doc.get("rest", 0)
        if start is not None and start["history_pk"] != f"{caller}#{day.isoformat()}":
            raise BadToken(_BAD_TOKEN)
        items: list[dict[str, Any]] = []
        for _ in range(MAX_QUERIES):
            if day < last_day or len(items) >= limit:
                break
            values[":p"] = {"S": f"{caller}#{day.isoformat()}"}
            page, start, rest = self._collect(HISTORY_INDEX, names, values, "#p = :p" + condition, limit - len(items), start, rest)
            items += page
            if start is None:
                day -= timedelta(days=1)
        if start is None and day < last_day:
            return items, None
        return items, _token(HISTORY_INDEX, filters, start, rest, day)

    def _collect(self, index: str, names: dict[str, str], values: dict[str, Any], condition: str, want: int,
                 start: dict[str, str] | None, rest: int) -> tuple[list[dict[str, Any]], dict[str, str] | None, int]:
        """Up to `want` predictions of one partition after `start`, with the last `rest` predictions of the item at
        `start` first; then where to go on: the key of the last item read and how many of its predictions are left
        (None when the partition is exhausted)."""
        out: list[dict[str, Any]] = []
        pk = "history_pk" if index == HISTORY_INDEX else "model_pk"
        if start is not None and rest:
            item = self._item(start["prediction_id"])
            # the token's key is the caller's (checked); the item must still be the one it names (TTL may have removed it)
            if item and item.get(pk, {}).get("S") == start[pk] and item.get("history_sk", {}).get("S") == start["history_sk"]:
                left = expand(item)[-rest:]
                out += left[:want]
                if len(left) > want:
                    return out, start, len(left) - want
        if len(out) == want:
            return out, start, 0
        kwargs: dict[str, Any] = {"TableName": self._table, "IndexName": index, "KeyConditionExpression": condition,
                                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                                  "ScanIndexForward": False, "Limit": want - len(out)}
        if start:
            kwargs["ExclusiveStartKey"] = {k: {"S": v} for k, v in start.items()}
        try:
            page = self._ddb.query(**kwargs)
        except ClientError as err:  # a start key the query's range refuses: a token this API did not issue for it
            if start and err.response.get("Error", {}).get("Code") == "ValidationException":
                raise BadToken(_OTHER_FILTERS) from err
            raise
        for item in page.get("Items", []):
            records, need, here = expand(item), want - len(out), {k: item[k]["S"] for k in ("prediction_id", "history_sk", pk)}
            out += records[:need]
            if len(records) > need:
                return out, here, len(records) - need
            if len(out) == want:
                return out, here, 0
        last = page.get("LastEvaluatedKey")
        return out, ({k: v["S"] for k, v in last.items()} if last else None), 0

    def add_feedback(self, prediction_id: str, feedback: dict[str, Any]) -> None:
        value = to_attribute(json.loads(json.dumps(feedback), parse_float=Decimal))
        chunked = _CHUNKED_ID.match(prediction_id)
        if chunked:  # one entry of the item's feedback map, keyed by the batch index
            key, update, names = chunked.group(1), "SET feedback.#i = :f", {"#i": chunked.group(2)}
            condition = "attribute_exists(prediction_id) AND attribute_not_exists(feedback.#i)"
        else:
            key, update, names = prediction_id, "SET feedback = :f", None
            condition = "attribute_exists(prediction_id) AND attribute_not_exists(feedback)"
        try:
            self._ddb.update_item(TableName=self._table, Key={"prediction_id": {"S": key}}, UpdateExpression=update,
                                  ConditionExpression=condition, ExpressionAttributeValues={":f": value},
                                  **({"ExpressionAttributeNames": names} if names else {}))
        except self._ddb.exceptions.ConditionalCheckFailedException as err:
            raise Conflict(prediction_id) from err


class FeedbackStore:
    """Labelled rows in the dataset bucket, one JSON object per prediction (the contract's feedback_key): what the
    trainer reads back. The first writer of a key wins."""

    def __init__(self, s3, bucket: str):
        self._s3 = s3
        self._bucket = bucket

    def put_if_absent(self, key: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        """Write `doc` at `key` unless an object is there; what is there afterwards (None: another request is
        writing it at this moment)."""
        try:
            self.put(key, doc, IfNoneMatch="*")
            return doc
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ConditionalRequestConflict":
                return None
            if code not in {"PreconditionFailed", "412"}:
                raise
        return json.loads(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def put(self, key: str, doc: dict[str, Any], **conditions: Any) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=json.dumps(doc).encode(), ContentType="application/json", **conditions)

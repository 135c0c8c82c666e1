"""predictor.api.handle with real collaborators on moto: routing, validation, recording, errors."""

import json
import logging

import boto3
import pytest

from predictor.api import Deps, handle
from predictor.config import Settings
from predictor.model_store import ModelStore
from predictor.records import PredictionRecorder

from .conftest import MODEL_BUCKET

TABLE = "unit-predictions"


@pytest.fixture
def ddb(aws):
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "prediction_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "prediction_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture
def deps(s3, ddb):
    settings = Settings(
        model_bucket=MODEL_BUCKET, predictions_table=TABLE, metrics_namespace="Test", champion_refresh_seconds=30,
        prediction_ttl_days=1, max_batch=5, cors_allow_origin="*",
    )
    return Deps(
        settings=settings,
        store=ModelStore(s3, MODEL_BUCKET, 30),
        recorder=PredictionRecorder(ddb, TABLE, 1),
        logger=logging.getLogger("test.predictor"),
        clock=lambda: 1_800_000_000.0,
    )


def call(deps, method, path, body=None, raw=None, key_id="key-1"):
    event = {
        "httpMethod": method,
        "resource": path,
        "path": path,
        "body": raw if raw is not None else (None if body is None else json.dumps(body)),
        "requestContext": {"requestId": "req-1", "identity": {"apiKeyId": key_id, "apiKey": "secret-key-value"}},
    }
    resp = handle(event, "lambda-1", deps)
    return resp["statusCode"], (json.loads(resp["body"]) if resp["body"] else None), resp["headers"]


def test_single_prediction_is_answered_and_recorded(deps, ddb, trained, example):
    status, body, headers = call(deps, "POST", "/predict", {"features": example})
    assert status == 200, body
    assert body["label"] == "class_0" and body["model_version"] == trained.version
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"].values())
    assert headers["X-Request-Id"] == body["request_id"] == "req-1"
    item = ddb.get_item(TableName=TABLE, Key={"prediction_id": {"S": body["prediction_id"]}})["Item"]
    assert item["label"]["S"] == "class_0"
    assert item["model_version"]["S"] == trained.version
    assert item["caller_key_id"]["S"] == "key-1"
    assert float(item["input"]["M"]["alcohol"]["N"]) == example["alcohol"]
    assert int(item["expires_at"]["N"]) == 1_800_000_000 + 86400
    assert "secret-key-value" not in json.dumps(item)


def test_a_batch_gets_one_prediction_id_per_record(deps, ddb, trained, example):
    status, body, _ = call(deps, "POST", "/predict", {"instances": [example, {**example, "proline": 400.0}]})
    assert status == 200, body
    ids = [p["prediction_id"] for p in body["predictions"]]
    assert body["count"] == 2 and len(set(ids)) == 2
    assert ddb.scan(TableName=TABLE)["Count"] == 2


def test_a_batch_with_bad_records_lists_every_one_and_records_nothing(deps, ddb, trained, example):
    bad = [example, {**example, "ash": "x"}, {k: v for k, v in example.items() if k != "hue"}]
    status, body, _ = call(deps, "POST", "/predict", {"instances": bad})
    assert status == 400
    assert [(d["field"], d["message"]) for d in body["error"]["details"]] == [
        ("instances[1].ash", "must be a number, got string"),
        ("instances[2].hue", "is required"),
    ]
    assert ddb.scan(TableName=TABLE)["Count"] == 0


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ("", "empty_body", "body is empty"),
        ("{not json", "invalid_json", "line 1 column 2"),
        ('{"features": {"alcohol": NaN}}', "invalid_json", "NaN is not a valid JSON number"),
        ("[" * 100000 + "]" * 100000, "invalid_json", "nested too deeply"),
        ("[1, 2]", "invalid_body", "got array"),
        ('{"features": {}, "instances": []}', "validation_error", "exactly one of"),
        ('{"feature": {}}', "validation_error", "unknown field 'feature'"),
        ('{"instances": []}', "validation_error", "non-empty array"),
    ],
)
def test_malformed_bodies_get_a_400_saying_what_is_wrong(deps, trained, raw, code, fragment):
    status, body, _ = call(deps, "POST", "/predict", raw=raw)
    assert status == 400
    assert body["error"]["code"] == code
    assert fragment in body["error"]["message"]
    assert body["request_id"] == "req-1"


def test_a_batch_over_the_limit_is_413(deps, trained, example):
    status, body, _ = call(deps, "POST", "/predict", {"instances": [example] * 6})
    assert status == 413 and body["error"]["code"] == "batch_too_large"


def test_no_promoted_model_is_503_saying_so(deps):
    status, body, _ = call(deps, "POST", "/predict", {"features": {}})
    assert status == 503 and body["error"]["code"] == "no_model"
    assert "no model has been promoted" in body["error"]["message"]


def test_a_failed_write_fails_the_request(deps, ddb, trained, example):
    ddb.delete_table(TableName=TABLE)
    status, body, _ = call(deps, "POST", "/predict", {"features": example})
    assert status == 503 and body["error"]["code"] == "record_failed"


def test_routes_health_options_404_405(deps):
    assert call(deps, "GET", "/health")[:2] == (200, {"status": "ok", "model_version": None})
    status, body, headers = call(deps, "OPTIONS", "/predict")
    assert status == 204 and body is None and "X-Api-Key" in headers["Access-Control-Allow-Headers"]
    assert call(deps, "GET", "/nope")[1]["error"]["code"] == "not_found"
    assert call(deps, "GET", "/predict")[0] == 405


def test_an_unexpected_error_is_500_with_the_request_id(deps, trained, example, caplog):
    deps.store.current = lambda: (_ for _ in ()).throw(ZeroDivisionError("boom"))
    status, body, _ = call(deps, "POST", "/predict", {"features": example})
    assert status == 500 and body["error"]["code"] == "internal_error" and body["request_id"] == "req-1"
    assert "unhandled error" in caplog.text

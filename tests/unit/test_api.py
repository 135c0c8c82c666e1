"""predictor.api.handle with real collaborators on moto: routing, validation, recording, errors."""

import json
import logging

import boto3
import pytest

from predictor.api import handle
from predictor.config import Settings
from predictor.metrics import Metrics
from predictor.service import build_deps
from trainer import release
from trainer import train as trainer_train

from .conftest import DATASET_BUCKET, MODEL_BUCKET, PREFIX

TABLE = "unit-predictions"


@pytest.fixture
def ddb(aws):
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("prediction_id", "history_pk", "model_pk", "history_sk")],
        KeySchema=[{"AttributeName": "prediction_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": name, "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": "history_sk", "KeyType": "RANGE"}],
        } for name, pk in (("history", "history_pk"), ("by_model", "model_pk"))],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture
def deps(s3, ddb, signatures):
    settings = Settings(
        model_bucket=MODEL_BUCKET, model_signing_key=signatures.key_id, predictions_table=TABLE, dataset_bucket=DATASET_BUCKET, dataset_prefix=PREFIX,
        metrics_namespace="Test", champion_refresh_seconds=30,
        prediction_ttl_days=1, max_batch=5, cors_allow_origin="*", low_confidence_threshold=0.6,
    )
    return build_deps(settings, logging.getLogger("test.predictor"), clock=Clock())  # the handler's own wiring, on moto


class Clock:
    """Fixed time that moves a millisecond a call, so records sort."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def call(deps, method, path, body=None, raw=None, key_id="key-1", query=None, path_params=None):
    event = {
        "httpMethod": method,
        "resource": path,
        "path": path,
        "queryStringParameters": query,
        "pathParameters": path_params,
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
    item, entry = stored(ddb, body["prediction_id"])
    assert entry["label"] == "class_0" and entry["probabilities"] == body["probabilities"]
    assert item["model_version"]["S"] == trained.version
    assert item["caller_key_id"]["S"] == "key-1"
    assert entry["input"]["alcohol"] == example["alcohol"]  # the input as sent
    assert 0 <= int(item["expires_at"]["N"]) - (1_800_000_000 + 86400) <= 1
    assert "secret-key-value" not in json.dumps(item)


def stored(ddb, prediction_id: str) -> tuple[dict, dict]:
    """The DynamoDB item holding a prediction and the prediction's entry in it (records.py's layout)."""
    item_id, index = prediction_id.rsplit(".", 1)
    item = ddb.get_item(TableName=TABLE, Key={"prediction_id": {"S": item_id}})["Item"]
    (entry,) = [e for e in json.loads(item["predictions"]["S"]) if e["batch_index"] == int(index)]
    return item, entry


def test_explain_true_names_each_predictions_top_features_and_stores_nothing_extra(deps, ddb, trained, example):
    status, body, _ = call(deps, "POST", "/predict", {"instances": [example, {**example, "proline": 400.0}]}, query={"explain": "true"})
    assert status == 200
    for p in body["predictions"]:
        top = p["explanation"]["top"]
        assert p["explanation"]["method"] == "linear" and 1 <= len(top) <= 5
        assert {t["feature"] for t in top} <= set(example) and all(isinstance(t["contribution"], float) for t in top)
        item, entry = stored(ddb, p["prediction_id"])
        assert "explanation" not in entry and "explanation" not in item
    status, body, _ = call(deps, "POST", "/predict", {"features": example})
    assert status == 200 and "explanation" not in body


@pytest.mark.parametrize(("query", "field"), [({"explain": "maybe"}, "explain"), ({"explian": "true"}, "explian")])
def test_a_bad_query_parameter_on_predict_is_a_400_naming_it(deps, trained, example, query, field):
    status, body, _ = call(deps, "POST", "/predict", {"features": example}, query=query)
    assert status == 400 and body["error"]["details"][0]["field"] == field


def test_a_batch_gets_one_prediction_id_per_record(deps, ddb, trained, example):
    status, body, _ = call(deps, "POST", "/predict", {"instances": [example, {**example, "proline": 400.0}]})
    assert status == 200, body
    ids = [p["prediction_id"] for p in body["predictions"]]
    assert body["count"] == 2 and len(set(ids)) == 2
    assert [stored(ddb, i)[1]["batch_index"] for i in ids] == [0, 1]
    assert ddb.scan(TableName=TABLE)["Count"] == 1  # one item holds the request's predictions


def test_a_batch_with_bad_records_lists_every_one_and_records_nothing(deps, ddb, trained, example):
    bad = [example, {**example, "ash": "x"}, {**example, "bogus": 1}]
    status, body, _ = call(deps, "POST", "/predict", {"instances": bad})
    assert status == 400
    assert [(d["field"], d["message"]) for d in body["error"]["details"]] == [
        ("instances[1].ash", "must be a number or null, got string"),
        ("instances[2].bogus", "is not a feature of this model"),
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


def test_a_failed_write_fails_the_request_and_health_says_so_until_one_succeeds(deps, ddb, trained, example):
    """Issue 52 (5): on a full disk every prediction was 503 record_failed while /health said "ok"; it says what the
    last write met (not a free-space guess), and "ok" again once a write succeeds."""
    from botocore.exceptions import ClientError

    def full(**_):
        raise ClientError({"Error": {"Code": "InternalFailure", "Message": "[Errno 28] No space left on device"}}, "PutItem")

    events = deps.recorder._ddb.meta.events  # the client the API writes with
    events.register("before-call.dynamodb.PutItem", full)
    status, body, _ = call(deps, "POST", "/predict", {"features": example})
    assert status == 503 and body["error"]["code"] == "record_failed"
    health = call(deps, "GET", "/health")[1]
    assert health["status"] == "degraded" and health["model_version"] == trained.version
    assert health["reason"].startswith("predictions cannot be recorded, so none is answered: the last write, at ")
    assert "No space left on device" in health["reason"]
    events.unregister("before-call.dynamodb.PutItem", full)
    assert call(deps, "POST", "/predict", {"features": example})[0] == 200
    assert call(deps, "GET", "/health")[1]["status"] == "ok"


def test_health_says_degraded_without_a_model_and_loads_the_champion(deps, trained):
    status, body, _ = call(deps, "GET", "/health")
    # no request has been served yet, yet /health names the champion: it loads it
    assert (status, body) == (200, {"status": "ok", "model_version": trained.version, "package": {"type": "zip"}})


def test_routes_health_options_404_405(deps):
    status, body, _ = call(deps, "GET", "/health")
    assert (status, body["status"], body["model_version"]) == (200, "degraded", None)
    assert "no model has been promoted" in body["reason"]
    status, body, headers = call(deps, "OPTIONS", "/predict")
    assert status == 204 and body is None and "X-Api-Key" in headers["Access-Control-Allow-Headers"]
    assert call(deps, "GET", "/nope")[1]["error"]["code"] == "not_found"
    assert call(deps, "GET", "/predict")[0] == 405


def test_an_unexpected_error_is_500_with_the_request_id(deps, trained, example, caplog):
    deps.store.current = lambda: (_ for _ in ()).throw(ZeroDivisionError("boom"))
    status, body, _ = call(deps, "POST", "/predict", {"features": example})
    assert status == 500 and body["error"]["code"] == "internal_error" and body["request_id"] == "req-1"
    assert "unhandled error" in caplog.text


def _predict(deps, example, n=1, **changes):
    body = call(deps, "POST", "/predict", {"instances": [{**example, **changes}] * n})[1]
    return [p["prediction_id"] for p in body["predictions"]]


def test_get_prediction_and_404(deps, trained, example):
    pid = _predict(deps, example)[0]
    status, body, _ = call(deps, "GET", "/predictions/{id}", path_params={"id": pid})
    assert status == 200 and body["prediction"]["prediction_id"] == pid
    assert body["prediction"]["input"] == example and "expires_at" not in body["prediction"]
    status, body, _ = call(deps, "GET", "/predictions/{id}", path_params={"id": "nope"})
    assert status == 404 and body["error"]["code"] == "prediction_not_found"


def test_history_is_newest_first_paginated_and_filtered(deps, trained, example):
    ids = _predict(deps, example, 5)
    seen, token = [], None
    while True:
        status, body, _ = call(deps, "GET", "/predictions", query={"limit": "2", **({"next_token": token} if token else {})})
        assert status == 200 and len(body["predictions"]) <= 2
        seen += [p["prediction_id"] for p in body["predictions"]]
        token = body["next_token"]
        if not token:
            break
    assert seen == list(reversed(ids))
    assert call(deps, "GET", "/predictions", query={"model_version": "other"})[1]["predictions"] == []
    assert len(call(deps, "GET", "/predictions", query={"model_version": trained.version})[1]["predictions"]) == 5
    assert call(deps, "GET", "/predictions", query={"until": "2000-01-01T00:00:00Z"})[1]["predictions"] == []
    assert len(call(deps, "GET", "/predictions", query={"since": "2000-01-01T00:00:00Z"})[1]["predictions"]) == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "abc"}, "limit"), ({"since": "yesterday"}, "since"),
     ({"next_token": "garbage!"}, "next_token"), ({"sort": "asc"}, "sort")],
)
def test_bad_history_queries_are_400_naming_the_parameter(deps, trained, query, field):
    status, body, _ = call(deps, "GET", "/predictions", query=query)
    assert status == 400 and body["error"]["details"][0]["field"] == field


def test_a_real_token_with_foreign_characters_inserted_is_refused(deps, trained, example):
    """base64 decoding skips characters outside its alphabet: a real token with "[.~]" inside would read as the real one.
    The documented pattern refuses it (schemathesis found it accepted, answering 200)."""
    _predict(deps, example, 3)
    token = call(deps, "GET", "/predictions", query={"limit": "1"})[1]["next_token"]
    assert call(deps, "GET", "/predictions", query={"next_token": token})[0] == 200
    status, body, _ = call(deps, "GET", "/predictions", query={"next_token": f"{token[:4]}[.~]{token[4:]}"})
    assert status == 400 and body["error"]["details"][0]["field"] == "next_token"


@pytest.mark.parametrize("other", [{"since": "2000-01-01T00:00:00.000Z"}, {"until": "2100-01-01T00:00:00.000Z"},
                                   {"model_version": "v-other"}, {"limit": "2", "since": "2000-01-01T00:00:00.000Z"}])
def test_a_token_sent_with_other_filters_is_a_400_that_says_so(deps, trained, example, other):
    """DynamoDB refuses a start key outside the query's range (a 500 before); a listing continued under other filters
    would skip or repeat records. The token names the filters it was issued for."""
    _predict(deps, example, 3)
    token = call(deps, "GET", "/predictions", query={"limit": "1"})[1]["next_token"]
    status, body, _ = call(deps, "GET", "/predictions", query={"next_token": token, **other})
    assert status == 400 and "issued for other filters" in body["error"]["message"], body
    assert call(deps, "GET", "/predictions", query={"next_token": token, "limit": "2"})[0] == 200  # the page size may change
    since = {"since": "2000-01-01T00:00:00.000Z"}
    token = call(deps, "GET", "/predictions", query={"limit": "1", **since})[1]["next_token"]
    assert call(deps, "GET", "/predictions", query={"next_token": token, **since})[0] == 200


def test_an_empty_next_token_is_refused_as_documented(deps, trained):
    status, body, _ = call(deps, "GET", "/predictions", query={"next_token": ""})
    assert status == 400 and body["error"]["details"][0]["field"] == "next_token"


@pytest.mark.parametrize(("query", "details"), [
    ({"limit": "101", "sort": "asc"}, [("limit", "must be a whole number from 1 to 100"),
                                       ("sort", "is not a query parameter of GET /predictions")]),
    ({"model_version": "é" * 600}, [("model_version", "must be 1 to 1024 bytes")]),
    ({"limit": "010"}, [("limit", "must be a whole number from 1 to 100")]),  # only a number's plain form
])
def test_history_parameters_are_checked_against_their_schema_every_problem_named(deps, trained, query, details):
    status, body, _ = call(deps, "GET", "/predictions", query=query)
    assert status == 400 and [(d["field"], d["message"]) for d in body["error"]["details"]] == details


@pytest.mark.parametrize(("sent", "details"), [
    ({}, [("prediction_id", "is required"), ("label", "is required")]),
    ({"prediction_id": 7, "label": "class_0", "note": "x"}, [("prediction_id", "must be a string, got number"),
                                                             ("note", "is not allowed; send prediction_id and label")]),
    ({"prediction_id": "p", "label": ""}, [("label", "must not be empty")]),
])
def test_a_feedback_body_is_checked_against_its_schema_every_problem_named(deps, trained, sent, details):
    status, body, _ = call(deps, "POST", "/feedback", sent)
    assert status == 400 and [(d["field"], d["message"]) for d in body["error"]["details"]] == details


def test_feedback_is_stored_with_the_prediction_and_as_a_labelled_row(deps, s3, trained, example):
    pid = _predict(deps, example)[0]
    status, body, _ = call(deps, "POST", "/feedback", {"prediction_id": pid, "label": "class_1"})
    assert status == 201 and body["feedback"]["label"] == "class_1" and body["feedback"]["correct"] is False
    record = call(deps, "GET", "/predictions/{id}", path_params={"id": pid})[1]["prediction"]
    assert record["feedback"]["label"] == "class_1"
    row = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key=body["feedback"]["object_key"])["Body"].read())
    assert row["features"] == example and row["label"] == "class_1" and row["prediction_id"] == pid
    # what the trainer screens feedback with: who sent it (the key's id) and what the model said, how surely
    assert row["predicted_label"] == record["label"] and row["confidence"] == record["confidence"] and row["caller"]
    assert body["feedback"]["object_key"].startswith(f"{PREFIX}/feedback/")
    status, body, _ = call(deps, "POST", "/feedback", {"prediction_id": pid, "label": "class_0"})
    assert status == 409 and body["error"]["code"] == "feedback_exists"


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [({"prediction_id": "missing", "label": "class_0"}, 404, None),
     ({"label": "class_0"}, 400, "prediction_id"),
     ({"prediction_id": 5, "label": "class_0"}, 400, "prediction_id"),
     ({"prediction_id": "x", "label": "class_0", "extra": 1}, 400, "extra")],
)
def test_bad_feedback_is_refused(deps, trained, payload, status, field):
    code, body, _ = call(deps, "POST", "/feedback", payload)
    assert code == status
    if field:
        assert body["error"]["details"][0]["field"] == field


def test_feedback_with_an_unknown_label_names_the_classes(deps, s3, trained, example):
    pid = _predict(deps, example)[0]
    status, body, _ = call(deps, "POST", "/feedback", {"prediction_id": pid, "label": "merlot"})
    assert status == 400 and body["error"]["details"] == [{"field": "label", "message": "must be one of class_0, class_1, class_2"}]
    assert "Contents" not in s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix=f"{PREFIX}/feedback/")


def test_model_info_has_version_metrics_schema_and_an_example(deps, trained):
    status, body, _ = call(deps, "GET", "/model")
    assert status == 200 and body["version"] == trained.version
    assert body["classes"] == ["class_0", "class_1", "class_2"]
    assert body["metrics"]["holdout"]["accuracy"] > 0.9
    assert [f["name"] for f in body["features"]] == list(body["example"])
    assert call(deps, "POST", "/predict", {"features": body["example"]})[0] == 200


def test_openapi_is_served_with_the_models_records_and_classes(deps, trained):
    status, body, _ = call(deps, "GET", "/openapi.json")
    assert status == 200 and body["openapi"].startswith("3.")
    schemas = body["components"]["schemas"]
    # issue 52 (6): a label is checked against the classes of the model that made the prediction, an earlier champion's
    # too, so the document names today's classes without enumerating them (a client validating by it refused the others)
    label = schemas["FeedbackRequest"]["properties"]["label"]
    assert "enum" not in label and label["type"] == "string" and "class_0, class_1, class_2" in label["description"]
    assert "alcohol" in schemas["Features"]["properties"]
    # history holds what earlier models took too: a record's input is not today's Features
    assert "$ref" not in schemas["PredictionRecord"]["properties"]["input"]



def _sum(cw, name, dims):
    points = cw.get_metric_statistics(Namespace="Test", MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
                                      StartTime="2000-01-01", EndTime="2100-01-01", Period=86400 * 365, Statistics=["Sum", "SampleCount"])
    return sum(p["Sum"] for p in points["Datapoints"])


def test_requests_predictions_segments_and_errors_become_metrics(deps, trained, example):
    cw = boto3.client("cloudwatch")
    call(deps, "POST", "/predict", {"instances": [example, {**example, "alcohol": 11.5}, example]})
    call(deps, "POST", "/predict", {"features": {}})
    assert deps.metrics.flush(5)  # sent by the buffer's thread, after the responses
    assert _sum(cw, "Requests", {"Route": "/predict"}) == 2
    assert _sum(cw, "Predictions", {"ModelVersion": trained.version, "Class": "class_0"}) >= 2
    assert _sum(cw, "PredictionsBySegment", {"Segment": "alcohol_level", "Bucket": "<12"}) == 1
    assert _sum(cw, "PredictionsBySegment", {"Segment": "alcohol_level", "Bucket": "13-14"}) == 2
    assert _sum(cw, "Errors", {"ErrorType": "validation_error"}) == 1
    assert _sum(cw, "ServerError", {}) == 0


def test_a_metrics_outage_never_fails_a_prediction(deps, trained, example, caplog):
    class Down:
        def put_metric_data(self, **_):
            raise ConnectionError("cloudwatch is down")

    deps.metrics._cw = Down()
    assert call(deps, "POST", "/predict", {"features": example})[0] == 200
    assert deps.metrics.flush(5)
    assert deps.metrics.failures == 1 and "could not publish" in caplog.text


def _copy_dataset(s3, prefix: str, renamed: str = "class_") -> None:
    """The wine data again under another dataset name (its classes' prefix `renamed`)."""
    for name in ("data.csv", "spec.json"):
        body = s3.get_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/{name}")["Body"].read().replace(b"class_", renamed.encode())
        s3.put_object(Bucket=DATASET_BUCKET, Key=f"{prefix}/{name}", Body=body)


def test_feedback_is_checked_against_the_classes_of_the_model_that_made_the_prediction(deps, s3, trainer_settings, trained, example):
    """Issue 52 (6): an earlier champion's prediction takes that model's classes, not today's (the document says the
    label is checked that way and does not enumerate today's: a client validating by it refused the earlier ones)."""
    pid_old = _predict(deps, example)[0]  # made by the wine model: class_0, class_1, class_2
    _copy_dataset(s3, "datasets/cellar", renamed="cellar_")
    cellar = trainer_train.run(trainer_settings.model_copy(update={"dataset_prefix": "datasets/cellar"}), s3)
    assert cellar.version != trained.version
    release.promote(trainer_settings, s3, cellar.version, by="test", why="other classes", confirmed=True, now="2026-12-07T00:00:00+00:00")
    deps.store._checked_at = float("-inf")  # re-read the champion now rather than after the refresh interval
    pid_new = _predict(deps, example)[0]  # made by the cellar model: cellar_0, cellar_1, cellar_2
    assert call(deps, "POST", "/feedback", {"prediction_id": pid_old, "label": "class_1"})[0] == 201
    refused = call(deps, "POST", "/feedback", {"prediction_id": pid_old, "label": "cellar_1"})
    assert refused[0] == 400 and refused[1]["error"]["details"][0]["message"] == "must be one of class_0, class_1, class_2"
    assert call(deps, "POST", "/feedback", {"prediction_id": pid_new, "label": "cellar_1"})[0] == 201
    assert call(deps, "POST", "/feedback", {"prediction_id": pid_new, "label": "class_1"})[0] == 400
    label = call(deps, "GET", "/openapi.json")[1]["components"]["schemas"]["FeedbackRequest"]["properties"]["label"]
    assert "enum" not in label and "cellar_0, cellar_1, cellar_2" in label["description"]


def test_feedback_goes_to_the_dataset_of_the_model_that_made_the_prediction(deps, s3, trainer_settings, trained, example):
    _copy_dataset(s3, "datasets/cellar")  # a second dataset, whose model becomes the champion
    pid_old = _predict(deps, example)[0]  # made by the wine model
    cellar = trainer_train.run(trainer_settings.model_copy(update={"dataset_prefix": "datasets/cellar"}), s3)
    assert cellar.promoted
    deps.store._checked_at = float("-inf")  # re-read the champion now rather than after the refresh interval
    pid_new = _predict(deps, example)[0]  # made by the cellar model
    keys = {pid: call(deps, "POST", "/feedback", {"prediction_id": pid, "label": "class_1"})[1]["feedback"]["object_key"]
            for pid in (pid_old, pid_new)}
    assert keys[pid_old].startswith(f"{PREFIX}/feedback/") and keys[pid_new].startswith("datasets/cellar/feedback/")


@pytest.mark.parametrize("how", [{"trigger": "schedule"}, {"follow_champion": True}], ids=["the schedule", "make train"])
def test_the_schedule_and_make_train_retrain_the_champions_own_dataset(s3, trainer_settings, trained, how):
    _copy_dataset(s3, "datasets/cellar")
    assert trainer_train.run(trainer_settings.model_copy(update={"dataset_prefix": "datasets/cellar"}), s3).promoted
    again = trainer_train.run(trainer_settings, s3, **how)  # the settings' own prefix says datasets/wine
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{again.version}/manifest.json")["Body"].read())
    assert manifest["dataset"]["prefix"] == "datasets/cellar"


def test_numeric_features_the_pipeline_imputes_may_be_null_or_absent(deps, trained, example):
    features = {**example, "ash": None}
    del features["hue"]
    status, body, _ = call(deps, "POST", "/predict", {"features": features})
    assert status == 200, body
    record = call(deps, "GET", "/predictions/{id}", path_params={"id": body["prediction_id"]})[1]["prediction"]
    assert record["input"]["ash"] is None and "hue" not in record["input"]
    model = call(deps, "GET", "/model")[1]
    assert all(f.get("imputed") == "median" for f in model["features"] if f["type"] == "numeric")


@pytest.mark.parametrize("prediction_id", ["", "x" * 2049, "é" * 1025])
def test_an_id_that_cannot_be_a_key_is_not_found_not_an_error(deps, trained, prediction_id):
    # an empty id or one over DynamoDB's 2048-byte key limit: the emulator (and AWS) refuse the lookup itself
    deps.reader._ddb = None  # any call to DynamoDB would now fail: the answer must come before it
    status, body, _ = call(deps, "POST", "/feedback", {"prediction_id": prediction_id, "label": "class_0"})
    assert status == 404 and body["error"]["code"] == "prediction_not_found"
    status, body, _ = call(deps, "GET", "/predictions/{id}", path_params={"id": prediction_id})
    assert status == 404 and body["error"]["code"] == "prediction_not_found"


def test_the_emf_sink_writes_metrics_as_embedded_metric_format_lines_and_calls_nothing(deps, trained, example, capsys):
    class NoCalls:
        def put_metric_data(self, **_):
            raise AssertionError("the emf sink made a PutMetricData call")

    deps.metrics = Metrics(NoCalls(), "Test", 0.6, sink="emf")
    capsys.readouterr()
    assert call(deps, "POST", "/predict", {"instances": [example] * 5})[0] == 200
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert docs and all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Test" for d in docs)
    for d in docs:  # every document carries its dimensions, and each metric at most 100 values
        spec = d["_aws"]["CloudWatchMetrics"][0]
        assert all(dim in d for dim in spec["Dimensions"][0])
        assert all(1 <= len(d[m["Name"]]) <= 100 for m in spec["Metrics"])
    assert sum(len(d["PredictionConfidence"]) for d in docs if "PredictionConfidence" in d) == 5
    Metrics(NoCalls(), "Test", 0.6, sink="emf").publish(
        [{"MetricName": "Latency", "Unit": "Milliseconds", "Values": [1.0, 2.0], "Counts": [100.0, 50.0]}])
    split = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(d["Latency"]) for d in split] == [100, 50]  # repeated values, at most 100 a document
    requests_ = [d for d in docs if d.get("Route") == "/predict" and "Requests" in d]
    assert requests_ and requests_[0]["Requests"] == [1]


def test_an_input_outside_the_training_data_is_answered_and_said(deps, trained, example):
    """Issue 37: an input unlike anything trained on was answered like any other. A number beyond the range the training
    rows had (within the spec's bounds, so valid) comes back flagged, in words; an ordinary record carries no flag."""
    status, body, _ = call(deps, "POST", "/predict", {"features": example})
    assert status == 200 and "unusual" not in body
    status, body, _ = call(deps, "POST", "/predict", {"features": {**example, "ash": 9.5}})
    assert status == 200, body
    (flag,) = body["unusual"]
    assert flag == {"feature": "ash", "message": "9.5 is outside the range training saw (1.36 to 3.23)"}
    status, body, _ = call(deps, "POST", "/predict", {"instances": [example, {**example, "ash": 0.5, "proline": 5000}]})
    assert "unusual" not in body["predictions"][0]
    assert [u["feature"] for u in body["predictions"][1]["unusual"]] == ["ash", "proline"]


@pytest.mark.parametrize("what", ["prediction_id", "feature name", "path"])
def test_a_refusal_quotes_a_bounded_part_of_what_was_sent(deps, trained, example, what):
    """Issue 52 (4): a 1 MB prediction_id came back in a 404 of 1,048,712 bytes; a 1 MB feature name in a 400 of 2 MB."""
    huge = "x" * 1_048_576
    if what == "prediction_id":
        status, body, _ = call(deps, "POST", "/feedback", {"prediction_id": huge, "label": "class_0"})
    elif what == "feature name":
        status, body, _ = call(deps, "POST", "/predict", {"features": {**example, huge: 1}})
    else:
        status, body, _ = call(deps, "GET", "/" + huge)
    assert status in (400, 404) and len(json.dumps(body)) < 2_000, len(json.dumps(body))
    said = body["error"]["message"]
    assert "characters left out ...]" in said and said.startswith(("no prediction with id 'xxx", "features.xxx", "no route GET /xxx"))
    if what == "feature name":  # what is wrong, at the end of the message and in the detail, is kept
        assert said.endswith("is not a feature of this model") and body["error"]["details"][0]["message"] == "is not a feature of this model"

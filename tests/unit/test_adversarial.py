"""What an adversarial run against the API found (issue 15): each case answers a 4xx in the
documented shape, reads are bounded, feedback is atomic, and a key sees only its own data."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from predictor import records

from .conftest import DATASET_BUCKET
from .test_api import _predict, call, ddb, deps  # noqa: F401  (fixtures)


def _token(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("method", "path", "kw", "status"), [
    ("POST", "/feedback", {"body": {"prediction_id": "", "label": "class_0"}}, 404),
    ("POST", "/feedback", {"body": {"prediction_id": "x" * 2049, "label": "class_0"}}, 404),
    ("GET", "/predictions/{id}", {"path_params": {"id": "x" * 2049}}, 404),
    ("GET", "/predictions", {"query": {"since": "2026-11-24T00:00:00Z", "until": "2026-11-23T00:00:00Z"}}, 400),
    ("GET", "/predictions", {"query": {"since": "0001-01-01T00:00:00+01:00"}}, 400),
    ("GET", "/predictions", {"query": {"until": "9999-12-31T23:59:59-01:00"}}, 400),
    ("GET", "/predictions", {"query": {"limit": "²"}}, 400),
    ("GET", "/predictions", {"query": {"next_token": _token({"prediction_id": "a", "record_type": "other", "history_sk": "b"})}}, 400),
    ("GET", "/predictions", {"query": {"next_token": _token({"index": "history", "day": "2026-13-45", "key": None})}}, 400),
    ("GET", "/predictions", {"query": {"model_version": ""}}, 400),
])
def test_inputs_that_answered_500_answer_4xx_in_the_documented_shape(deps, trained, method, path, kw, status):  # noqa: F811
    code, body, _ = call(deps, method, path, **kw)
    assert code == status, body
    assert set(body) == {"error", "request_id"} and body["error"]["code"] and body["error"]["message"]


@pytest.mark.parametrize("value", [1e-200, 5e-324, 1e-140, 123.45678901234567])
def test_numbers_dynamodb_cannot_hold_are_recorded_as_sent(deps, ddb, trained, example, value):  # noqa: F811
    status, body, _ = call(deps, "POST", "/predict", {"features": {**example, "proline": value}})
    assert status == 200, body
    stored = call(deps, "GET", "/predictions/{id}", path_params={"id": body["prediction_id"]})[1]["prediction"]
    assert stored["input"]["proline"] == value


def test_an_error_body_lists_at_most_100_problems_and_says_how_many(deps, trained, example):  # noqa: F811
    junk = {**example, **{f"unknown_{i}": 1 for i in range(100)}}
    status, body, _ = call(deps, "POST", "/predict", {"instances": [junk] * 5})
    assert status == 400
    assert len(body["error"]["details"]) == 100 and body["error"]["details_total"] == 500
    assert "(and 499 more problems)" in body["error"]["message"]


def test_a_history_query_makes_a_bounded_number_of_reads_and_hands_back_a_token(deps, ddb, trained, example, monkeypatch):  # noqa: F811
    _predict(deps, example, 3)
    queries = []
    real = ddb.query
    monkeypatch.setattr(deps.reader, "_ddb", type("Counting", (), {"query": lambda self, **kw: queries.append(kw) or real(**kw),
                                                                   "get_item": ddb.get_item})())
    status, body, _ = call(deps, "GET", "/predictions", query={"limit": "100", "since": "2000-01-01T00:00:00Z"})
    assert status == 200 and len(queries) <= records.MAX_QUERIES
    assert len(body["predictions"]) == 3 and body["next_token"] is None  # the prediction TTL bounds how far back it looks
    queries.clear()
    status, body, _ = call(deps, "GET", "/predictions", query={"limit": "1", "model_version": "nope"})
    assert status == 200 and body["predictions"] == [] and len(queries) == 1


def test_each_key_sees_and_labels_only_its_own_predictions(deps, trained, example):  # noqa: F811
    mine = call(deps, "POST", "/predict", {"features": example}, key_id="key-a")[1]["prediction_id"]
    theirs = call(deps, "POST", "/predict", {"features": example}, key_id="key-b")[1]["prediction_id"]
    listed = [p["prediction_id"] for p in call(deps, "GET", "/predictions", key_id="key-a")[1]["predictions"]]
    assert mine in listed and theirs not in listed
    assert call(deps, "GET", "/predictions/{id}", path_params={"id": theirs}, key_id="key-a")[0] == 404
    assert call(deps, "POST", "/feedback", {"prediction_id": theirs, "label": "class_0"}, key_id="key-a")[0] == 404
    assert call(deps, "GET", "/predictions/{id}", path_params={"id": theirs}, key_id="key-b")[0] == 200
    page = call(deps, "GET", "/predictions", query={"limit": "1"}, key_id="key-b")[1]
    if page["next_token"]:  # a token issued to one key opens nothing for another
        assert call(deps, "GET", "/predictions", query={"next_token": page["next_token"]}, key_id="key-a")[0] in (200, 400)


class Atomic:
    """A client whose every call is atomic, as each S3 and DynamoDB request is in AWS (and in MiniStack's event loop);
    moto's are not under threads. The interleaving between calls, which is what feedback's protocol must survive,
    stays concurrent."""

    _lock = threading.Lock()

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with Atomic._lock:
                return attr(*args, **kwargs)

        return call


def test_concurrent_feedback_leaves_s3_and_the_record_agreeing(deps, s3, ddb, trained, example, monkeypatch):  # noqa: F811
    monkeypatch.setattr(deps.feedback, "_s3", Atomic(s3))
    monkeypatch.setattr(deps.reader, "_ddb", Atomic(ddb))
    for round_ in range(5):
        pid = _predict(deps, example)[0]
        labels = ["class_0", "class_1", "class_2"] * 7
        def give(label: str, pid: str = pid) -> int:
            return call(deps, "POST", "/feedback", {"prediction_id": pid, "label": label})[0]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(give, labels[:20]))
        assert statuses.count(201) == 1 and set(statuses) <= {201, 409}, (round_, statuses)
        record = call(deps, "GET", "/predictions/{id}", path_params={"id": pid})[1]["prediction"]
        row = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key=record["feedback"]["object_key"])["Body"].read())
        assert row["label"] == record["feedback"]["label"], round_


def test_feedback_retried_after_a_crash_between_its_two_writes_completes(deps, s3, trained, example, monkeypatch):  # noqa: F811
    pid = _predict(deps, example)[0]
    monkeypatch.setattr(deps.reader, "add_feedback", lambda *a: (_ for _ in ()).throw(RuntimeError("killed")))
    assert call(deps, "POST", "/feedback", {"prediction_id": pid, "label": "class_2"})[0] == 500  # the process "dies" here
    monkeypatch.undo()
    status, body, _ = call(deps, "POST", "/feedback", {"prediction_id": pid, "label": "class_2"})
    assert status == 201 and body["feedback"]["label"] == "class_2"
    assert call(deps, "POST", "/feedback", {"prediction_id": pid, "label": "class_1"})[0] == 409


def test_a_refused_champion_degrades_the_service_instead_of_taking_it_down(deps, s3, trainer_settings, trained, example):  # noqa: F811
    from trainer import train as trainer_train

    from .conftest import MODEL_BUCKET

    newer = trainer_train.run(trainer_settings, s3)
    key = f"models/{newer.version}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=key)["Body"].read())
    manifest["artifacts"]["pipeline"]["sha256"] = "0" * 64
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=json.dumps(manifest).encode())
    status, body, _ = call(deps, "GET", "/health")
    assert (status, body["status"], body["model_version"]) == (200, "degraded", trained.version)
    assert newer.version in body["reason"]
    status, body, _ = call(deps, "POST", "/predict", {"features": example})
    assert status == 200 and body["model_version"] == trained.version


def _strict(text: str) -> dict:
    """JSON as a browser's JSON.parse takes it: no Infinity, no NaN."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"the body holds {name}, which is not JSON"))


@pytest.mark.parametrize(("value", "said"), [
    ("1e309", "infinity"), ("-1e309", "-infinity"), ("9" * 401, "401 digits"), ("9" * 4000, "4000 digits"), ("2e15", "2000000000000000.0"),
])
def test_a_number_beyond_any_bound_is_a_400_naming_its_field_on_a_model_whose_spec_has_none(deps, trained, example, value, said):  # noqa: F811
    """Issue 36: a spec without a maximum (every inferred one, then) took 1e309 as infinity, stored it, and broke every history
    page; an integer of 401 digits was a 500 (OverflowError in the featurizer). Every number is now bounded: the spec's
    bounds, else what can be trained on."""
    from sommelier_contract.records import RecordValidator

    model = deps.store.current()
    model.validator = RecordValidator([{k: v for k, v in f.items() if k not in ("minimum", "maximum")} for f in model.features])
    raw = json.dumps({"features": {**example, "proline": 1}}).replace('"proline": 1', f'"proline": {value}')
    status, body, _ = call(deps, "POST", "/predict", raw=raw)
    assert status == 400, body
    (detail,) = body["error"]["details"]
    assert detail["field"] == "features.proline" and said in detail["message"]


def test_a_stored_record_holding_infinity_reads_as_missing_and_every_body_stays_json(deps, ddb, trained, example):  # noqa: F811
    """Records written before numbers were bounded may hold Infinity or 1e309: history answers valid JSON, the value as null."""
    from .test_api import TABLE

    recorder = records.PredictionRecorder(ddb, TABLE, ttl_days=30)
    prediction = {"label": "class_0", "confidence": 0.9, "probabilities": {"class_0": 0.9}}
    for text in ("Infinity", "1e309", "1e308"):
        _, items = recorder.items(caller="key-1", model_version=trained.version, now=1_800_000_000, predictions=[prediction],
                                  inputs=[{**example, "proline": 12345.5}], context={})
        items[0]["predictions"]["S"] = items[0]["predictions"]["S"].replace("12345.5", text)
        recorder.put(items)
    with pytest.raises(ValueError):  # and none is written any more
        recorder.items(caller="key-1", model_version=trained.version, now=1_800_000_000, predictions=[prediction],
                       inputs=[{**example, "proline": float("inf")}], context={})
    event = {"httpMethod": "GET", "resource": "/predictions", "path": "/predictions", "queryStringParameters": {"limit": "10"},
             "requestContext": {"requestId": "r", "identity": {"apiKeyId": "key-1"}}}
    from predictor.api import handle

    page = _strict(handle(event, "l", deps)["body"])
    assert [p["input"]["proline"] for p in page["predictions"]] == [None, None, None]

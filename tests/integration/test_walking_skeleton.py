"""A prediction flows through API Gateway -> Lambda -> DynamoDB, with the model from S3."""

from __future__ import annotations

import hashlib
import json

import pytest

pytestmark = pytest.mark.smoke  # `make deploy` runs these against what it deployed


def test_health_needs_no_key(stack):
    resp = stack.get("/health", key=None)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


def test_predict_answers_with_label_probabilities_and_ids(stack, example):
    resp = stack.post("/predict", {"features": example})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["label"] in body["probabilities"]
    assert set(body["probabilities"]) == {"class_0", "class_1", "class_2"}
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
    assert body["model_version"] and body["prediction_id"] and body["request_id"]
    assert resp.headers["X-Request-Id"] == body["request_id"]


def test_the_prediction_is_recorded_in_dynamodb(stack, example, eventually):
    body = stack.post("/predict", {"features": {**example, "proline": 500.0}}).json()

    def recorded():
        found = stack.stored(body["prediction_id"])
        assert found, f"prediction {body['prediction_id']} not in {stack.outputs['PredictionsTableName']}"
        return found

    item, entry = eventually(recorded)
    assert item["request_id"]["S"] == body["request_id"]
    assert item["model_version"]["S"] == body["model_version"]
    assert entry["label"] == body["label"]
    assert entry["input"]["proline"] == 500.0  # the input as sent
    assert item["caller_key_id"]["S"]  # whose prediction it is (test_api: other keys cannot see it)
    assert entry["probabilities"] == body["probabilities"]
    assert item["created_at"]["S"].endswith("Z") and int(item["expires_at"]["N"]) > 0


def test_artifacts_in_the_versioned_model_bucket_match_their_manifest(stack):
    s3 = stack.client("s3")
    bucket = stack.outputs["ModelBucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    champion = json.loads(s3.get_object(Bucket=bucket, Key="champion.json")["Body"].read())
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=champion["manifest_key"])["Body"].read())
    assert manifest["version"] == champion["version"]
    for name in ("pipeline", "label_encoder"):
        meta = manifest["artifacts"][name]
        body = s3.get_object(Bucket=bucket, Key=meta["key"], VersionId=meta["version_id"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == meta["sha256"]


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_predict_without_a_valid_key_is_403(stack, example, key):
    assert stack.post("/predict", {"features": example}, key=key).status_code == 403


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda f: {**f, "ash": True}, "features.ash", "must be a number or null, got boolean"),
        (lambda f: {**f, "alcohol": "strong"}, "features.alcohol", "must be a number or null, got string"),
        (lambda f: {**f, "vintage": 1999}, "features.vintage", "is not a feature of this model"),
        (lambda f: {**f, "magnesium": -3}, "features.magnesium", "must be >= 0"),
    ],
)
def test_bad_features_are_400_naming_the_field(stack, example, mutate, field, fragment):
    resp = stack.post("/predict", {"features": mutate(example)})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert {"field": field, "message": error["details"][0]["message"]} in error["details"]
    assert fragment in error["details"][0]["message"]


def test_a_body_that_is_not_json_is_400(stack):
    resp = stack.post("/predict", data="alcohol=13")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_json"


def test_a_warm_up_wave_meets_as_many_workers_as_it_has_calls(stack):
    """Issue 39: `make up` warms the pool with direct invocations of the API's alias, each holding its worker, so the
    calls of a wave cannot share one (it left 9 of 16 warm when each /health call was done before the next arrived)."""
    from concurrent.futures import ThreadPoolExecutor

    lam, name = stack.client("lambda"), stack.outputs["PredictorFunctionName"]
    champion = stack.get("/health").json()["model_version"]

    def call(_: int) -> dict:
        resp = lam.invoke(FunctionName=name, Qualifier="live", Payload=json.dumps({"sommelier_warmup": {"hold_ms": 800}}).encode())
        return json.loads(resp["Payload"].read())

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(call, range(4)))
    assert {a["model_version"] for a in answers} == {champion} and {a["status"] for a in answers} == {"ok"}, answers
    assert len({a["worker"] for a in answers}) == 4, answers

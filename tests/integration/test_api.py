"""The full API through API Gateway -> Lambda on the running stack."""

from __future__ import annotations

import json

import pytest


def test_openapi_and_health_need_no_key(stack):
    doc = stack.get("/openapi.json", key=None)
    assert doc.status_code == 200 and "/predict" in doc.json()["paths"]


def test_model_info_gives_the_schema_and_a_working_example(stack):
    info = stack.get("/model").json()
    assert info["version"] and info["classes"] == ["class_0", "class_1", "class_2"]
    assert len(info["features"]) == 13 and info["metrics"]["holdout"]["accuracy"] > 0.8
    assert stack.post("/predict", {"features": info["example"]}).status_code == 200


def test_a_batch_of_1000_is_answered_and_1001_is_413(stack, example):
    resp = stack.post("/predict", {"instances": [example] * 1000})
    assert resp.status_code == 200, resp.text[:500]
    body = resp.json()
    assert body["count"] == 1000 and len({p["prediction_id"] for p in body["predictions"]}) == 1000
    assert stack.post("/predict", {"instances": [example] * 1001}).json()["error"]["code"] == "batch_too_large"


def test_a_bad_record_in_a_batch_is_named_by_index(stack, example):
    resp = stack.post("/predict", {"instances": [example, {**example, "hue": "pale"}, example]})
    assert resp.status_code == 400
    assert resp.json()["error"]["details"] == [{"field": "instances[1].hue", "message": "must be a number or null, got string"}]


def test_a_missing_or_null_numeric_is_imputed_as_in_training(stack, example):
    partial = {k: v for k, v in example.items() if k != "ash"} | {"hue": None}
    resp = stack.post("/predict", {"features": partial})
    assert resp.status_code == 200, resp.text
    assert stack.post("/predict", {"features": {}}).json()["error"]["details"] == [
        {"field": "features", "message": "has no feature values: give at least one"}]


def test_history_newest_first_with_pages_and_lookup_by_id(stack, example):
    ids = [p["prediction_id"] for p in stack.post("/predict", {"instances": [example] * 3}).json()["predictions"]]
    first = stack.get("/predictions?limit=2").json()
    assert [p["prediction_id"] for p in first["predictions"]] == ids[::-1][:2]
    second = stack.get(f"/predictions?limit=2&next_token={first['next_token']}").json()
    assert second["predictions"][0]["prediction_id"] == ids[0]
    one = stack.get(f"/predictions/{ids[1]}")
    assert one.status_code == 200 and one.json()["prediction"]["input"] == example
    assert stack.get("/predictions/no-such-id").status_code == 404
    bad = stack.get("/predictions?limit=500")
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "limit"


def test_each_key_sees_only_its_own_predictions(stack, example):
    other = stack.key_value("FrontendApiKeyId")
    mine = stack.post("/predict", {"features": example}).json()["prediction_id"]
    theirs = stack.post("/predict", {"features": example}, key=other).json()["prediction_id"]
    listed = [p["prediction_id"] for p in stack.get("/predictions?limit=100").json()["predictions"]]
    assert mine in listed and theirs not in listed
    assert stack.get(f"/predictions/{theirs}").status_code == 404
    assert stack.post("/feedback", {"prediction_id": theirs, "label": "class_0"}).status_code == 404
    assert stack.get(f"/predictions/{theirs}", key=other).status_code == 200


def test_a_revoked_key_is_refused(stack):
    """Revoking a key: deleting it works on every runtime (MiniStack ignores `enabled=false` set after creation, a gap
    the README names; API Gateway honours both)."""
    gateway = stack.client("apigateway")
    plan = next(p for p in gateway.get_usage_plans()["items"] if any(s.get("apiId") for s in p.get("apiStages", [])))
    key = gateway.create_api_key(name="revoked-by-test", enabled=True)
    gateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    assert stack.get("/model", key=key["value"]).status_code == 200
    gateway.delete_api_key(apiKey=key["id"])
    assert stack.get("/model", key=key["value"]).status_code == 403


def test_feedback_is_recorded_and_lands_in_the_dataset_bucket(stack, example):
    pid = stack.post("/predict", {"features": example}).json()["prediction_id"]
    assert stack.post("/feedback", {"prediction_id": pid, "label": "merlot"}).status_code == 400
    resp = stack.post("/feedback", {"prediction_id": pid, "label": "class_0"})
    assert resp.status_code == 201, resp.text
    key = resp.json()["feedback"]["object_key"]
    row = json.loads(stack.client("s3").get_object(Bucket=stack.outputs["DatasetBucketName"], Key=key)["Body"].read())
    assert row["label"] == "class_0" and row["features"] == example
    assert stack.get(f"/predictions/{pid}").json()["prediction"]["feedback"]["label"] == "class_0"
    assert stack.post("/feedback", {"prediction_id": pid, "label": "class_1"}).status_code == 409
    assert stack.post("/feedback", {"prediction_id": "nope", "label": "class_0"}).status_code == 404


@pytest.mark.parametrize("path", ["/predictions", "/model", "/feedback"])
def test_every_keyed_route_is_403_without_a_key(stack, path):
    call = stack.post if path == "/feedback" else stack.get
    kwargs = {"body": {"prediction_id": "x", "label": "y"}} if path == "/feedback" else {}
    assert call(path, key=None, **kwargs).status_code == 403


def test_cors_preflight_is_answered_without_a_key(stack):
    import requests

    resp = requests.options(f"{stack.api_url}/predict", headers={"Origin": "http://localhost:8080",
                            "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}, timeout=10)
    assert resp.status_code in (200, 204)
    assert "x-api-key" in resp.headers.get("Access-Control-Allow-Headers", "").lower()


def test_gateway_errors_carry_cors_headers_and_the_error_shape(stack, example):
    resp = stack.post("/predict", {"features": example}, key="wrong-key")
    assert resp.status_code == 403
    assert resp.headers.get("Access-Control-Allow-Origin") == "*"
    body = resp.json()
    assert body["error"]["code"] and body["error"]["message"] and body["request_id"]

"""Model monitoring on the running stack: the monitoring function (the one its hourly rule runs) compares the
champion's recent predictions with the baseline it was trained with; a sample of its own training rows is no drift,
a shifted one is named in the signed report, and the drift alarm goes to ALARM; feedback sent here is the accuracy
the report measures."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from sommelier_contract import layout


def _monitor(stack, since: str) -> dict:
    resp = stack.client("lambda", read_timeout=330).invoke(FunctionName=stack.outputs["MonitorFunctionName"],
                                                           Payload=json.dumps({"since": since}))
    report = json.loads(resp["Payload"].read())
    assert not resp.get("FunctionError"), report
    return report


def _since() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def training_rows(stack) -> tuple[dict, pd.DataFrame]:
    """The champion's manifest and 60 rows of the very data it was trained on."""
    s3 = stack.client("s3")
    bucket = stack.outputs["ModelBucketName"]
    version = json.loads(s3.get_object(Bucket=bucket, Key=layout.CHAMPION_KEY)["Body"].read())["version"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=layout.manifest_key(version))["Body"].read())
    data = next(s for s in manifest["dataset"]["sources"] if s["key"].endswith("data.csv"))
    body = s3.get_object(Bucket=data["bucket"], Key=data["key"], VersionId=data["version_id"])["Body"].read()
    return manifest, pd.read_csv(io.BytesIO(body)).sample(60, random_state=7)


def _post(stack, eventually, path: str, body: dict, status: int, key: str = "default") -> dict:
    """A request (with `key`: the stack's own by default), sent again while the usage plan throttles it (429), then held to `status`."""

    def once():
        resp = stack.post(path, body, key=key)
        assert resp.status_code != 429, "throttled"
        return resp

    resp = eventually(once, timeout=30)
    assert resp.status_code == status, resp.text
    return resp.json()


def _predict(stack, eventually, records: list[dict], version: str, key: str = "default") -> dict:
    """The batch answered by the champion: just after another test promoted it, a worker may still serve the model before
    for a moment (its predictions the monitor leaves out, counted), so the batch goes again until the champion answers."""

    def by_champion():
        answer = _post(stack, eventually, "/predict", {"instances": records}, 200, key)
        assert answer["model_version"] == version, f"answered by {answer['model_version']}, not the champion {version}"
        return answer

    return eventually(by_champion, timeout=60)


def _records(manifest: dict, rows: pd.DataFrame, scale: float = 1.0) -> list[dict]:
    out = []
    for row in rows.to_dict("records"):
        record = {}
        for f in manifest["features"]:
            value = row.get(f["name"])
            if value is None or (isinstance(value, float) and value != value):
                continue
            record[f["name"]] = float(value) * scale if f["type"] == "numeric" else str(value)
        out.append(record)
    return out


def test_training_rows_are_no_drift_and_feedback_is_the_accuracy_measured(stack, training_rows, eventually):
    manifest, rows = training_rows
    since = _since()
    answer = _predict(stack, eventually, _records(manifest, rows), manifest["version"])
    truth = [str(t) for t in rows[manifest["target"]]]
    for p, label in list(zip(answer["predictions"], truth, strict=True))[:40]:
        _post(stack, eventually, "/feedback", {"prediction_id": p["prediction_id"], "label": label}, 201)
    right = sum(p["label"] == t for p, t in list(zip(answer["predictions"], truth, strict=True))[:40])

    report = _monitor(stack, since)
    assert report["status"] == "ok", report["message"]
    assert report["model"]["version"] == manifest["version"] and report["predictions"] == 60
    assert report["drifted_features"] == [], report["message"]
    assert report["accuracy"]["window"]["n"] == 40  # the feedback on this window's predictions
    assert report["accuracy"]["window"]["accuracy"] == round(right / 40, 4)
    assert report["accuracy"]["overall"]["n"] >= 40  # and any earlier feedback within the accuracy window
    day = report["accuracy"]["days"][-1]
    assert day["low"] <= day["accuracy"] <= day["high"]
    assert 0 < report["prediction_drift"]["estimated_accuracy"]["value"] <= 1


def test_a_shifted_sample_is_named_in_the_signed_report_and_alarmed(stack, training_rows, eventually):
    manifest, rows = training_rows
    numeric = [f["name"] for f in manifest["features"] if f["type"] == "numeric"]
    since = _since()
    _predict(stack, eventually, _records(manifest, rows, scale=1.6), manifest["version"])

    report = _monitor(stack, since)
    assert report["status"] == "ok", report["message"]
    assert report["drifted_features"] and set(report["drifted_features"]) <= set(numeric), report["message"]
    for name in report["drifted_features"]:
        assert name in report["message"]

    s3 = stack.client("s3")
    latest = json.loads(s3.get_object(Bucket=stack.outputs["ModelBucketName"], Key=layout.MONITORING_LATEST)["Body"].read())
    assert latest["key"] == report["key"] and latest["drifted_features"] == report["drifted_features"]
    signature = s3.get_object(Bucket=stack.outputs["ModelBucketName"], Key=layout.report_signature_key(report["key"]))
    assert json.loads(signature["Body"].read())["signature"]

    def served():  # what the page's Monitoring panel reads: this API key's own report of the same pass, verified
        resp = stack.get("/monitoring")
        assert resp.status_code == 200, resp.text
        return resp.json()["report"]

    shown = eventually(served, timeout=30)
    assert shown["at"] == report["at"] and shown["key"] != report["key"] and "of this API key" in shown["message"]
    assert shown["drifted_features"] and set(shown["drifted_features"]) <= set(numeric), shown["message"]

    cloudwatch = stack.client("cloudwatch")

    def alarming():
        state = cloudwatch.describe_alarms(AlarmNames=[stack.outputs["DriftAlarmName"]])["MetricAlarms"][0]["StateValue"]
        assert state == "ALARM"

    eventually(alarming, timeout=30)


def test_a_window_without_predictions_is_not_enough_data(stack):
    report = _monitor(stack, _since())
    assert report["status"] == "not enough data"
    assert report["message"].startswith("not enough data: 0 prediction(s)")

"""Custom metrics read back, an injected fault moves the 5xx alarm, and a bad release is survived."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest


def _sum(stack, name: str, dims: dict[str, str], stat: str = "Sum") -> float:
    now = datetime.now(UTC)
    result = stack.client("cloudwatch").get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": "Sommelier", "MetricName": name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}, "Period": 3600, "Stat": stat}}],
        StartTime=now - timedelta(hours=2), EndTime=now + timedelta(minutes=5),
    )["MetricDataResults"][0]
    return sum(result["Values"])


def test_request_and_prediction_counts_read_back(stack, example, eventually):
    version = stack.get("/model").json()["version"]
    before = (_sum(stack, "Requests", {"Route": "/predict"}), _sum(stack, "Predictions", {"ModelVersion": version, "Class": "class_0"}))
    for _ in range(3):
        assert stack.post("/predict", {"instances": [example, example]}).status_code == 200
    stack.post("/predict", {"features": {}})  # a 400 counts as a request and as an error

    def counted():
        after = (_sum(stack, "Requests", {"Route": "/predict"}), _sum(stack, "Predictions", {"ModelVersion": version, "Class": "class_0"}))
        assert after[0] - before[0] == 4 and after[1] - before[1] == 6, (before, after)

    eventually(counted)
    assert _sum(stack, "Errors", {"ErrorType": "validation_error"}) >= 1
    assert _sum(stack, "Latency", {"Route": "/predict"}, "SampleCount") >= 4


@pytest.fixture
def broken_release(stack):
    """Promote a model whose manifest disagrees with its pipeline (a bad release); restore the champion after."""
    s3, bucket = stack.client("s3"), stack.outputs["ModelBucketName"]
    champion = json.loads(s3.get_object(Bucket=bucket, Key="champion.json")["Body"].read())
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=champion["manifest_key"])["Body"].read())
    broken = f"broken-{uuid.uuid4().hex[:8]}"
    for art in manifest["artifacts"].values():
        key = art["key"].replace(f"models/{champion['version']}/", f"models/{broken}/")
        art["version_id"] = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": art["key"]}).get("VersionId")
        art["key"] = key
    manifest["version"] = broken
    manifest["features"] = [*manifest["features"], {"name": "bogus", "type": "numeric"}]
    stack.put_signed_manifest(manifest)
    s3.put_object(Bucket=bucket, Key="champion.json", Body=json.dumps({**champion, "version": broken,
                  "manifest_key": f"models/{broken}/manifest.json"}).encode())
    yield broken
    s3.put_object(Bucket=bucket, Key="champion.json", Body=json.dumps(champion).encode())


def test_a_bad_release_moves_the_5xx_alarm_and_a_rollback_recovers(stack, example, broken_release, eventually):
    alarm = stack.outputs["ServerErrorAlarmName"]
    cloudwatch = stack.client("cloudwatch")

    def served_broken():
        resp = stack.post("/predict", {"features": {**example, "bogus": 1.0}})
        assert resp.status_code == 500, resp.text
        assert resp.json()["error"]["code"] == "internal_error" and resp.json()["request_id"]

    eventually(served_broken, timeout=20)  # the function re-reads the champion pointer every 2 s here

    def alarming():
        # keep failing: the rate over the alarm's minute includes every good request before this test
        assert stack.post("/predict", {"features": {**example, "bogus": 1.0}}).status_code == 500
        state = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]
        assert state == "ALARM", state

    eventually(alarming, timeout=60)
    # roll the pointer back by hand (the fixture restores it again afterwards either way)
    s3, bucket = stack.client("s3"), stack.outputs["ModelBucketName"]
    history = s3.list_object_versions(Bucket=bucket, Prefix="champion.json")["Versions"]
    previous = sorted(history, key=lambda v: v["LastModified"])[-2]
    s3.put_object(Bucket=bucket, Key="champion.json", Body=s3.get_object(Bucket=bucket, Key="champion.json",
                  VersionId=previous["VersionId"])["Body"].read())

    def recovered():
        assert stack.post("/predict", {"features": example}).status_code == 200

    eventually(recovered, timeout=20)


def test_a_window_that_straddles_a_period_boundary_is_read_whole(stack):
    """CloudWatch (and the emulator) cut a window into clock-aligned periods, so even a period longer than the
    window can come back as two datapoints: the canary's evidence and `make metrics`' totals add them all up."""
    from trainer.canary import gather  # what the canary evaluator reads, against the stack's real CloudWatch API

    cw, namespace, version = stack.client("cloudwatch"), f"SommelierTest{uuid.uuid4().hex[:8]}", "straddling"
    period = 360  # gather's period for a 300 s window
    start = datetime.fromtimestamp((int(datetime.now(UTC).timestamp()) - 150) // period * period - 150, UTC)
    at = [start + timedelta(seconds=s) for s in range(10, 300, 20)]  # 15 requests, 8 before the boundary, 7 after
    dims = [{"Name": "ModelVersion", "Value": version}]
    cw.put_metric_data(Namespace=namespace, MetricData=[
        m for i, t in enumerate(at) for m in ({"MetricName": "Requests", "Dimensions": dims, "Value": 1.0, "Timestamp": t},
                                              {"MetricName": "ServerError", "Dimensions": dims, "Value": float(i % 5 == 0), "Timestamp": t},
                                              {"MetricName": "Latency", "Dimensions": dims, "Value": 10.0 + i, "Timestamp": t})])
    evidence = gather(cw, namespace, version, start, start + timedelta(seconds=300))
    assert evidence.requests == 15 and evidence.error_rate == pytest.approx(3 / 15), evidence
    assert evidence.p99_ms is not None and evidence.p99_ms >= 20, evidence  # the later period's, where the slowest were

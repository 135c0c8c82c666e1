"""The model lifecycle on the running stack: the scheduled path and `make train`."""

from __future__ import annotations

import json

import pytest

SCHEDULE = "rate(1 minute)"


def _manifests(stack) -> list[dict]:
    s3, bucket = stack.client("s3"), stack.outputs["ModelBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="models/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed if o["Key"].endswith("manifest.json")]


def test_the_schedule_rule_targets_the_training_function(stack):
    events = stack.client("events")
    rule = events.describe_rule(Name=stack.outputs["TrainingScheduleRuleName"])
    assert rule["State"] == "ENABLED" and rule["ScheduleExpression"].startswith("rate(")
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    function = stack.client("lambda").get_function(FunctionName=stack.outputs["TrainerFunctionName"])
    assert [t["Arn"] for t in targets] == [function["Configuration"]["FunctionArn"]]


@pytest.fixture
def every_minute(stack):
    """The template's own rule, switched to fire every minute for this test (as an operator could), then back."""
    events = stack.client("events")
    name = stack.outputs["TrainingScheduleRuleName"]
    original = events.describe_rule(Name=name)["ScheduleExpression"]
    events.put_rule(Name=name, ScheduleExpression=SCHEDULE, State="ENABLED")
    yield
    events.put_rule(Name=name, ScheduleExpression=original, State="ENABLED")


def test_the_scheduled_rule_trains_a_new_version_and_the_gate_decides(stack, every_minute, eventually):
    def scheduled():
        runs = [m for m in _manifests(stack) if m["trigger"] == "schedule"]
        assert runs, "no model version from the scheduled training function yet"
        return runs[0]

    manifest = eventually(scheduled, timeout=180)  # a rate(1 minute) rule fires once a minute has passed since its creation
    gate = manifest["gate"]
    assert isinstance(gate["passed"], bool) and gate["reason"]
    assert gate["champion_before"]  # `make up` promoted a first model, so the gate compared against it
    assert manifest["metrics"]["champion_on_holdout"] is not None
    if gate["passed"]:
        assert "vs champion" in gate["reason"]


def test_make_train_compares_families_and_records_the_decision(stack):
    if stack.config is None:
        pytest.skip("runs the trainer CLI against the embedded stack this session started")
    before = {m["version"] for m in _manifests(stack)}
    stack.runtime.trainer(["train"])
    new = [m for m in _manifests(stack) if m["version"] not in before and m["trigger"] == "cli"]
    assert len(new) == 1
    assert len({r["family"] for r in new[0]["metrics"]["cv"].values()}) >= 3
    assert new[0]["gate"]["reason"]

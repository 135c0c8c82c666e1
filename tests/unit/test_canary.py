"""The model canary without a stack: the trainer proposes, the store routes, the evaluator decides."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from predictor.model_store import ModelStore
from sommelier_contract import artifacts, pointers
from trainer import train as trainer_train
from trainer.canary import Evidence, decide, evaluate

from .conftest import MODEL_BUCKET

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def canary_settings(trainer_settings):
    return trainer_settings.model_copy(update={"canary_percent": 25.0, "canary_min_requests": 10})


@pytest.fixture
def candidate(s3, trained, canary_settings):
    outcome = trainer_train.run(canary_settings, s3)
    return outcome


def test_a_challenger_that_passes_the_gate_goes_on_trial_not_live(s3, trained, candidate):
    assert not candidate.promoted and "candidate" in candidate.reason
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    pointer = pointers.read_candidate(s3, MODEL_BUCKET)
    assert (pointer.version, pointer.percent, pointer.champion) == (candidate.version, 25.0, trained.version)
    gate = artifacts.read_manifest(s3, MODEL_BUCKET, candidate.version).gate
    assert gate.candidate is True and gate.passed is True  # passed the gate; promotion waits for the trial


def test_the_first_model_is_promoted_at_once_even_with_a_canary(s3, canary_settings):
    outcome = trainer_train.run(canary_settings, s3)
    assert outcome.promoted and pointers.read_candidate(s3, MODEL_BUCKET) is None


def test_the_store_routes_its_share_to_the_candidate(s3, trained, candidate, signatures):
    store = ModelStore(s3, MODEL_BUCKET, 30, signatures)
    assert store.for_prediction(0.10).version == candidate.version  # under 25 %
    assert store.for_prediction(0.30).version == trained.version
    assert store.current().version == trained.version  # /health, /model: the champion
    assert store.candidate == (candidate.version, 25.0)


def test_a_candidate_that_fails_verification_is_not_served(s3, trained, candidate, signatures):
    key = f"models/{candidate.version}/pipeline.joblib"
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=b"tampered")
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{candidate.version}/manifest.json")["Body"].read())
    manifest["artifacts"]["pipeline"].pop("version_id")
    pointers.put_json(s3, MODEL_BUCKET, f"models/{candidate.version}/manifest.json", manifest)
    store = ModelStore(s3, MODEL_BUCKET, 30, signatures)
    assert store.for_prediction(0.0).version == trained.version and store.candidate is None


def _ev(requests=100, error_rate=0.0, p99=50.0, low=0.1, feedback=0, accuracy=None) -> Evidence:
    return Evidence(requests, error_rate, p99, low, feedback, accuracy)


@pytest.mark.parametrize(("candidate", "decision", "why"), [
    (_ev(requests=5), "wait", "candidate requests so far"),
    (_ev(error_rate=0.05), "rollback", "5xx rate"),
    (_ev(p99=200.0), "rollback", "p99 latency"),
    (_ev(low=0.5), "rollback", "low-confidence share"),
    (_ev(feedback=20, accuracy=0.7), "rollback", "accuracy from feedback"),
    (_ev(feedback=20, accuracy=0.88), "promote", "requests"),
    (_ev(), "promote", "requests"),
])
def test_the_rules(canary_settings, candidate, decision, why):
    champion = _ev(feedback=20, accuracy=0.9)
    got, reason = decide(candidate, champion, canary_settings)
    assert got == decision and why in reason


class FakeCloudWatch:
    """get_metric_data answering per ModelVersion from a table of datapoints (one value per clock-aligned
    period, as CloudWatch cuts a window), or failing."""

    def __init__(self, by_version: dict[str, dict[str, list[float]]] | None):
        self.by_version = by_version

    def get_metric_data(self, MetricDataQueries, StartTime, EndTime):  # noqa: N803 - boto3's names
        if self.by_version is None:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "GetMetricData")
        version = MetricDataQueries[0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        values = self.by_version.get(version, {})
        return {"MetricDataResults": [{"Id": q["Id"], "Values": values.get(q["Id"], [])} for q in MetricDataQueries]}


def _record(requests: list[float], errors: list[float], p99: list[float], low: list[float] | None = None) -> dict[str, list[float]]:
    """Per period: requests, 5xx among them, p99 ms, and low-confidence answers among them."""
    return {"requests": requests, "errors": errors, "errors_n": requests, "p99": p99,
            "lowconf": low or [0.0] * len(requests), "lowconf_n": requests}


def test_a_good_candidate_is_promoted_and_the_decision_recorded(s3, trained, candidate, canary_settings):
    cw = FakeCloudWatch({candidate.version: _record([40], [0], [30], [2]), trained.version: _record([120], [0], [30], [6])})
    outcome = evaluate(canary_settings, s3, cw, NOW)
    assert outcome["decision"] == "promote"
    assert pointers.read_champion(s3, MODEL_BUCKET).version == candidate.version
    assert pointers.read_candidate(s3, MODEL_BUCKET) is None
    assert artifacts.read_manifest(s3, MODEL_BUCKET, candidate.version).canary["decision"] == "promote"


def test_a_trial_across_periods_counts_every_period(s3, trained, candidate, canary_settings):
    """A trial that straddles a period boundary comes back as several datapoints: each alone is under the
    minimum (10 here) and has no error, together they are 12 requests with 4 errors (a third)."""
    cw = FakeCloudWatch({candidate.version: _record([6, 6], [0, 4], [30, 45]), trained.version: _record([60, 60], [0, 0], [30, 40])})
    outcome = evaluate(canary_settings, s3, cw, NOW)
    assert outcome["decision"] == "rollback" and "5xx rate 33.3%" in outcome["reason"], outcome
    assert outcome["evidence"]["candidate"]["requests"] == 12 and outcome["evidence"]["candidate"]["p99_ms"] == 45


def test_a_failing_candidate_is_rolled_back_and_the_champion_stays(s3, trained, candidate, canary_settings):
    cw = FakeCloudWatch({candidate.version: _record([40], [20], [30]), trained.version: _record([120], [0], [30])})
    outcome = evaluate(canary_settings, s3, cw, NOW)
    assert outcome["decision"] == "rollback" and "5xx rate 50.0%" in outcome["reason"]
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    assert pointers.read_candidate(s3, MODEL_BUCKET) is None
    assert "5xx" in artifacts.read_manifest(s3, MODEL_BUCKET, candidate.version).canary["reason"]


def test_unreadable_metrics_never_promote(s3, trained, candidate, canary_settings):
    outcome = evaluate(canary_settings, s3, FakeCloudWatch(None), NOW)
    assert outcome["decision"] == "wait" and "missing evidence" in outcome["reason"]
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    assert pointers.read_candidate(s3, MODEL_BUCKET).version == candidate.version
    assert artifacts.read_manifest(s3, MODEL_BUCKET, candidate.version).canary is None


def test_no_candidate_no_decision(s3, trained, canary_settings):
    assert evaluate(canary_settings, s3, FakeCloudWatch({}), NOW)["decision"] == "none"
    assert json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key="champion.json")["Body"].read())["version"] == trained.version

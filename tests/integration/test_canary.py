"""The model canary end to end: a candidate serves part of the traffic through the real API, and the
evaluator promotes a good one and rolls back a bad one, with no person deciding."""

from __future__ import annotations

import json
from collections import Counter

import pytest


def _s3(stack):
    return stack.client("s3"), stack.outputs["ModelBucketName"]


def _json(stack, key: str) -> dict | None:
    s3, bucket = _s3(stack)
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


@pytest.fixture
def runtime(stack, monkeypatch):
    if stack.runtime is None:
        pytest.skip("runs the trainer through the runtime of a stack this session started")
    monkeypatch.setenv("CANARY_PERCENT", "50")
    monkeypatch.setenv("CANARY_MIN_REQUESTS", "5")
    yield stack.runtime
    s3, bucket = _s3(stack)
    s3.delete_object(Bucket=bucket, Key="candidate.json")  # whatever happened, no trial outlives the test


def _traffic_until_both_answer(stack, example, candidate: str, eventually) -> Counter:
    seen: Counter = Counter()

    def both_answered():
        for _ in range(10):
            resp = stack.post("/predict", {"features": example})
            seen[(resp.json().get("model_version") if resp.ok else candidate, resp.status_code)] += 1
        answered = Counter(v for v, _ in seen.elements())
        # enough of each for the evaluator's minimum (CANARY_MIN_REQUESTS=5 here), with a margin
        assert len(answered) == 2 and answered[candidate] >= 8, f"answered by {dict(seen)}"

    eventually(both_answered, timeout=60)  # the function re-reads the pointers every 2 s here
    return seen


def _serving(stack, example, version: str, eventually) -> None:
    """The precondition of a trial: the function answers with the champion (a worker re-reads the pointers only every
    2 s here, so right after a promotion the previous champion may still answer, and would count as a third model)."""
    def champion_answers():
        for _ in range(5):
            resp = stack.post("/predict", {"features": example})
            assert resp.ok and resp.json()["model_version"] == version, (resp.status_code, resp.text[:300])

    eventually(champion_answers, timeout=30)


def _evaluate_until_decided(runtime, eventually) -> dict:
    def decided():
        outcome = json.loads(runtime.trainer(["canary-evaluate"]))
        assert outcome["decision"] in ("promote", "rollback"), outcome
        return outcome

    return eventually(decided, timeout=60)


def test_a_good_candidate_serves_a_share_and_is_promoted(stack, runtime, example, eventually):
    champion = _json(stack, "champion.json")["version"]
    _serving(stack, example, champion, eventually)
    trained = json.loads(runtime.trainer(["train"]))
    assert not trained["promoted"] and "candidate" in trained["reason"], trained
    candidate = trained["version"]
    assert _json(stack, "candidate.json")["version"] == candidate
    seen = _traffic_until_both_answer(stack, example, candidate, eventually)
    assert all(status == 200 for _, status in seen), seen
    outcome = _evaluate_until_decided(runtime, eventually)
    assert outcome["decision"] == "promote", outcome
    assert _json(stack, "champion.json")["version"] == candidate != champion
    assert _json(stack, "candidate.json") is None
    manifest = _json(stack, f"models/{candidate}/manifest.json")
    assert manifest["canary"]["decision"] == "promote" and manifest["canary"]["evidence"]["candidate"]["requests"] >= 5


def test_a_failing_candidate_is_rolled_back_and_the_champion_keeps_serving(stack, runtime, example, eventually):
    s3, bucket = _s3(stack)
    champion = _json(stack, "champion.json")
    _serving(stack, example, champion["version"], eventually)
    manifest = _json(stack, champion["manifest_key"])
    bad = f"bad-{champion['version']}"[:60]
    # a release that verifies (checksums match) but fails at predict time: its "pipeline" is the label encoder
    for name, source in (("pipeline", "label_encoder"), ("label_encoder", "label_encoder")):
        art = dict(manifest["artifacts"][source])
        key = f"models/{bad}/{name}.joblib"
        art["version_id"] = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": art["key"],
                                           **({"VersionId": art["version_id"]} if art.get("version_id") else {})}).get("VersionId")
        art["key"] = key
        manifest["artifacts"][name] = art
    manifest["artifacts"].pop("onnx", None)  # served by that broken pipeline, not by the champion's ONNX conversion
    manifest["version"] = bad
    stack.put_signed_manifest(manifest)
    s3.put_object(Bucket=bucket, Key="candidate.json", Body=json.dumps({"version": bad, "percent": 50, "since": champion["promoted_at"],
                                                                       "reason": "test", "champion": champion["version"]}).encode())
    seen = _traffic_until_both_answer(stack, example, bad, eventually)
    assert any(v == bad and status == 500 for v, status in seen), seen
    outcome = _evaluate_until_decided(runtime, eventually)
    assert outcome["decision"] == "rollback" and "5xx rate" in outcome["reason"], outcome
    assert _json(stack, "champion.json")["version"] == champion["version"]
    assert _json(stack, "candidate.json") is None
    assert _json(stack, f"models/{bad}/manifest.json")["canary"]["decision"] == "rollback"

    def champion_only():
        resp = stack.post("/predict", {"features": example})
        assert resp.ok and resp.json()["model_version"] == champion["version"], (resp.status_code, resp.text[:500])

    for _ in range(5):
        eventually(champion_only, timeout=20)

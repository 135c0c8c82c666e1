"""Issue 36: every small document the predictor, the monitor and the trainer read (pointers, signatures, the latest-report
pointer) goes through one guarded reader; a malformed one is a fallback or a 503 naming it, never a 500."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from predictor.service import build_deps
from sommelier_contract import layout, pointers
from sommelier_contract.monitoring import read_report

from .conftest import MODEL_BUCKET
from .test_api import call, ddb, deps  # noqa: F401  (fixtures)
from .test_monitoring import _record, _wine_inputs, monitoring, report_key  # noqa: F401  (fixtures)

MALFORMED = [b"<html>not json", b"{}", b"[1]", b'{"version": 7}', b'"champion"', b"\xff\xfe\x00"]


def worker(deps):  # noqa: F811
    """A new worker of the same function that re-reads the champion pointer on every request (a cold one, until it has served)."""
    return build_deps(replace(deps.settings, champion_refresh_seconds=0), deps.logger)


def _versions(s3, key: str) -> list[str]:
    return [v["VersionId"] for v in s3.list_object_versions(Bucket=MODEL_BUCKET, Prefix=key).get("Versions", []) if v["Key"] == key]


@pytest.mark.parametrize("body", MALFORMED)
def test_a_malformed_champion_pointer_leaves_warm_and_cold_workers_serving_the_last_good_champion(deps, s3, trained, example, body):  # noqa: F811
    warm = worker(deps)
    assert call(warm, "POST", "/predict", {"features": example})[0] == 200
    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY, Body=body)
    for serving in (warm, worker(deps)):
        status, answer, _ = call(serving, "POST", "/predict", {"features": example})
        assert (status, answer["model_version"]) == (200, trained.version), answer
        health = call(serving, "GET", "/health")[1]
        assert health["status"] == "degraded" and "the champion pointer was refused" in health["reason"], health


def test_a_malformed_pointer_with_no_good_champion_before_it_is_a_503_naming_it(deps, s3, trained, example):  # noqa: F811
    for version in _versions(s3, layout.CHAMPION_KEY):
        s3.delete_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY, VersionId=version)
    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY, Body=b"{}")
    cold = worker(deps)
    status, answer, _ = call(cold, "POST", "/predict", {"features": example})
    assert (status, answer["error"]["code"]) == (503, "no_model")
    assert "the champion pointer" in answer["error"]["message"] and "names no version" in answer["error"]["message"]
    assert call(cold, "GET", "/health")[0] == 200


def test_the_degraded_state_clears_when_the_pointer_reads_well_again(deps, s3, trained, example):  # noqa: F811
    """A bad pointer write undone by deleting its S3 version: the workers kept saying degraded (and counting every
    prediction as served by fallback) until a new pointer was written."""
    warm = worker(deps)
    assert call(warm, "GET", "/health")[1]["status"] == "ok"
    bad = s3.put_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY, Body=b"not json")["VersionId"]
    assert call(warm, "GET", "/health")[1]["status"] == "degraded"
    s3.delete_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY, VersionId=bad)
    health = call(warm, "GET", "/health")[1]
    assert (health["status"], health["model_version"]) == ("ok", trained.version), health


def _integer_signature(body: bytes) -> bytes:
    """The real signature document with its signature an integer: it names the right digest, so it reaches decoding."""
    return json.dumps({**json.loads(body), "signature": 5}).encode()


@pytest.mark.parametrize("malform", [lambda _: b"not json", lambda _: b"[1]", lambda _: b"{}", _integer_signature])
def test_a_malformed_manifest_signature_is_a_refusal_never_a_500(deps, s3, trained, example, malform):  # noqa: F811
    key = layout.signature_key(trained.version)
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=malform(s3.get_object(Bucket=MODEL_BUCKET, Key=key)["Body"].read()))
    cold = worker(deps)
    status, answer, _ = call(cold, "POST", "/predict", {"features": example})
    assert (status, answer["error"]["code"]) == (503, "no_model"), answer
    assert trained.version in answer["error"]["message"]
    status, health, _ = call(cold, "GET", "/health")
    assert (status, health["status"]) == (200, "degraded")


@pytest.fixture
def reporting(deps, report_key):  # noqa: F811
    return build_deps(replace(deps.settings, report_signing_key=report_key), deps.logger)


@pytest.mark.parametrize("malform", [lambda _: b"not json", lambda _: b"[1]", _integer_signature])
def test_a_malformed_report_signature_is_a_503_and_the_next_pass_repairs_it(monitoring, reporting, trained, ddb, malform):  # noqa: F811
    now = datetime.now(UTC)
    _record(trained.version, _wine_inputs(40), now - timedelta(minutes=1), ddb=ddb)
    monitoring(now=now)
    s3 = boto3.client("s3")
    key = layout.report_signature_key(layout.caller_report_key("key-1"))  # the report GET /monitoring shows key-1
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=malform(s3.get_object(Bucket=MODEL_BUCKET, Key=key)["Body"].read()))
    status, body, _ = call(reporting, "GET", "/monitoring")
    assert (status, body["error"]["code"]) == (503, "report_refused"), body
    later = monitoring(now=now + timedelta(seconds=1))
    status, body, _ = call(reporting, "GET", "/monitoring")
    assert (status, body["report"]["at"]) == (200, later["at"])
    assert [p["at"] for p in body["report"]["trend"]] == [later["at"]]  # the trend is not carried from a refused report


@pytest.mark.parametrize("pointer", [b"<html>not json", b"[1]", b"{}"])
def test_a_malformed_latest_pointer_does_not_wedge_the_monitor(monitoring, reporting, trained, ddb, pointer):  # noqa: F811
    now = datetime.now(UTC)
    _record(trained.version, _wine_inputs(40), now - timedelta(minutes=1), ddb=ddb)
    monitoring(now=now)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.MONITORING_LATEST, Body=pointer)
    assert call(reporting, "GET", "/monitoring")[0] == 503
    repaired = monitoring(now=now + timedelta(seconds=1))
    assert repaired["status"] == "ok" and repaired["drift_streak"] in (0, 1)
    assert read_report(s3, MODEL_BUCKET, monitoring.reports).key == repaired["key"]
    assert call(reporting, "GET", "/monitoring")[1]["report"]["at"] == repaired["at"]


def test_an_older_signed_report_named_by_a_rewritten_pointer_is_not_served_as_the_latest(monitoring, reporting, trained, ddb):  # noqa: F811
    now = datetime.now(UTC)
    _record(trained.version, _wine_inputs(40), now - timedelta(minutes=1), ddb=ddb)
    older = monitoring(now=now)
    monitoring(now=now + timedelta(seconds=1))
    s3 = boto3.client("s3")
    latest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=layout.MONITORING_LATEST)["Body"].read())
    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.MONITORING_LATEST, Body=json.dumps({**latest, "key": older["key"]}).encode())
    status, body, _ = call(reporting, "GET", "/monitoring")
    assert (status, body["error"]["code"]) == (503, "report_refused")
    assert "monitoring/latest.json is for another document" in body["error"]["message"]


def test_a_malformed_champion_pointer_leaves_the_monitor_and_the_trainer_on_the_last_good_champion(monitoring, trained, s3,  # noqa: F811
                                                                                                   trainer_settings):
    from trainer import train as trainer_train

    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY, Body=b"[1]")
    report = monitoring()
    assert report["status"] == "not enough data" and report["model"]["version"] == trained.version
    outcome = trainer_train.run(trainer_settings, s3)  # compared with the last good champion, not stopped by the bad write
    assert outcome.version != trained.version
    if outcome.promoted:  # a promotion writes a good pointer again
        assert pointers.read_champion(s3, MODEL_BUCKET).version == outcome.version
    else:
        assert "champion" in outcome.reason, outcome.reason

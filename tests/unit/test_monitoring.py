"""Model monitoring: the statistics (monitor/drift.py; the baseline: sommelier_contract/baseline.py) on real wine data
and messy reviews-like data, and a monitoring pass (monitor/report.py) on moto: the report, its signature, its metrics, and the faults the issue names."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from bench.training import reviews
from monitor import drift
from monitor import report as monitor
from predictor.records import PredictionRecorder
from predictor.service import build_deps
from sommelier_client.observe import _whole, fetch, summary
from sommelier_contract import baseline, layout, pointers
from sommelier_contract.artifacts import ArtifactRejected, Signatures, put_manifest, read_json
from sommelier_contract.baseline import Baseline, Frequencies
from sommelier_contract.manifest import Manifest
from sommelier_contract.monitoring import Report, public_view, read_report

from .conftest import MODEL_BUCKET, ROOT
from .test_api import TABLE, call, ddb, deps  # noqa: F401  (the predictions table and the predictor's wiring)

WINE_FEATURES = json.loads((ROOT / "data/wine.spec.json").read_text())["features"]
REVIEW_FEATURES = [{"name": "description", "type": "text"}, {"name": "points", "type": "numeric"},
                   {"name": "price", "type": "numeric"}, {"name": "variety", "type": "categorical"}]


def _wine() -> pd.DataFrame:
    data = load_wine(as_frame=True)
    return data.data.assign(cultivar=data.target.astype(str))


def _records(frame: pd.DataFrame, features: list[dict]) -> list[dict]:
    rows = frame[[f["name"] for f in features]].to_dict("records")
    return [{k: None if isinstance(v, float) and v != v else v for k, v in r.items()} for r in rows]


def _profiled(*args, **kwargs) -> Baseline:
    """A baseline as the monitor reads it: profiled, written as JSON (as the trainer signs it), parsed."""
    return Baseline.parse(json.loads(json.dumps(baseline.profile(*args, **kwargs))))


def _split(frame: pd.DataFrame, features: list[dict], seed: int) -> tuple[Baseline, list[dict]]:
    """A baseline from a random 80% of the rows, and the other 20% as records (a sample of the same distribution)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * 0.8)
    train, held = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
    base = _profiled(features, {f["name"]: train[f["name"]].tolist() for f in features}, predicted=["a"], confidence=[0.9],
                     correct=[True], classes=["a"], segments=[])
    return base, _records(held, features)


@pytest.mark.parametrize(("frame", "features"), [(_wine(), WINE_FEATURES), (reviews(1000, np.random.default_rng(3)), REVIEW_FEATURES)],
                         ids=["wine", "messy-reviews"])
def test_samples_of_the_training_distribution_raise_few_false_alarms(frame, features):
    """Measured over 100 random splits (each holdout an honest sample of the distribution the baseline saw): drift on any
    feature in under 5% of them, and a data-quality violation in under 5%. (Resampling one holdout with replacement is
    not such a sample: its repeated rows make every test see more agreement in them than there is.)"""
    drifted = violated = 0
    for seed in range(100):
        base, held = _split(frame, features, seed)
        found = drift.compare_features(base, held)
        drifted += any(f["drifted"] for f in found)
        violated += any(q["violated"] for q in drift.quality(base, held, found))
    assert drifted < 5, f"{drifted} of 100 samples of the training distribution were flagged as drifted"
    assert violated < 5, f"{violated} of 100 samples of the training distribution broke a data-quality check"


def _flagged(base: Baseline, records: list[dict]) -> tuple[set[str], set[tuple[str, str]]]:
    found = drift.compare_features(base, records)
    checks = drift.quality(base, records, found)
    json.dumps([found, checks], allow_nan=False)  # what the report holds is plain JSON (no numpy types, no NaN)
    return {f["feature"] for f in found if f["drifted"]}, {(q["check"], q["feature"]) for q in checks if q["violated"]}


def test_a_shifted_wine_sample_flags_the_shifted_feature():
    base, held = _split(_wine(), WINE_FEATURES, 1)
    assert _flagged(base, held) == (set(), set())  # as it was: nothing
    drifted, _ = _flagged(base, [{**r, "alcohol": r["alcohol"] + 1.5} for r in held])
    assert drifted == {"alcohol"}
    # the score puts every test on one scale, 1 at its threshold: the flagged feature is over it, the others under
    scores = {f["feature"]: f["score"] for f in drift.compare_features(base, [{**r, "alcohol": r["alcohol"] + 1.5} for r in held])}
    assert scores["alcohol"] > 1 and max(v for k, v in scores.items() if k != "alcohol") < 1


@pytest.mark.parametrize(("change", "feature", "check"), [
    (lambda r: {**r, "price": None if r["price"] is None else r["price"] * 2}, "price", None),
    (lambda r: {**r, "variety": "Xinomavro"}, "variety", "unseen_category"),
    (lambda r: {**r, "description": "Ein trockener Wein mit Noten von Kirsche und Leder, lange im Abgang, sehr elegant."},
     "description", "unfamiliar_text"),
], ids=["prices-doubled", "new-variety", "another-language"])
def test_a_shifted_reviews_sample_flags_the_right_feature(change, feature, check):
    base, held = _split(reviews(1000, np.random.default_rng(3)), REVIEW_FEATURES, 1)
    assert _flagged(base, held) == (set(), set())  # as it was: nothing
    drifted, violations = _flagged(base, [change(r) for r in held])
    assert feature in drifted
    assert drifted <= {feature, "variety"}, drifted  # (variety's mix moves when every value is one new variety)
    if check:
        assert (check, feature) in violations


def test_callers_who_send_the_description_alone_are_said_not_flagged():
    """Issue 50: a record that leaves a feature out is answered without it. The monitor says how many did, and judges
    missing values and drift on the records that carry the feature; before, every field left out counted as missing,
    and callers who send a review's words alone broke the missing-values check of every other feature."""
    base, held = _split(reviews(1000, np.random.default_rng(3)), REVIEW_FEATURES, 1)
    words_alone = [{"description": r["description"]} for r in held[:120]] + held[120:]
    found = drift.compare_features(base, words_alone)
    checks = drift.quality(base, words_alone, found)
    assert not any(q["violated"] for q in checks) and not any(f["drifted"] for f in found)
    share = 120 / len(held)
    absent = {q["feature"]: q for q in checks if q["check"] == "absent"}
    assert set(absent) == {"points", "price", "variety"} and all(abs(q["value"] - share) < 1e-3 for q in absent.values())
    assert absent["variety"]["message"] == f"{share:.0%} of records left it out (answered without it)"
    # the same records sent with those fields null are missing values, and the check says so
    nulls = [{**r, "points": None, "price": None, "variety": None} for r in held[:120]] + held[120:]
    assert {("missing", "variety")} <= _flagged(base, nulls)[1]


def test_the_public_view_shows_no_callers_inputs():
    """GET /monitoring serves the report to any API key: the aggregates stay, the values callers sent do not (a new
    variety, the names of stray fields, a segment bucket named by a value)."""
    frame = reviews(1000, np.random.default_rng(3))
    base, held = _split(frame, REVIEW_FEATURES, 1)
    segment = {"name": "variety", "feature": "variety"}
    base = replace(base, segments={"variety": Frequencies(**baseline.frequencies([str(v) for v in frame["variety"].dropna()]))})
    sent = [{**r, "variety": "Secret-Cuvee-42", "my_private_field": 1} for r in held]
    found = drift.compare_features(base, sent)
    quality = drift.quality(base, sent, found)
    report = Report.parse({"at": "2026-12-02T12:00:00.000Z", "window": {"since": "2026-12-01T12:00:00.000Z", "hours": 24}, "status": "ok",
                           "message": "", "quality": quality, "violations": [q for q in quality if q["violated"]],
                           "segments": drift.compare_segments(base, [segment], sent, [(sent[0], True)])})
    assert "Secret-Cuvee-42" in report.to_json().decode() and "my_private_field" in report.to_json().decode()  # the operators' report has them
    public = public_view(report).doc()
    assert "Secret-Cuvee-42" not in json.dumps(public) and "my_private_field" not in json.dumps(public)
    unseen = next(q for q in public["violations"] if q["check"] == "unseen_category")
    assert unseen["message"] == "100% of values are categories training never saw"
    assert next(q for q in public["quality"] if q["check"] == "schema")["message"].startswith("records carried fields the model does not know")
    buckets = {b["bucket"]: b for b in public["segments"][0]["buckets"]}
    assert buckets["(not in training)"]["share"] == 1.0 and buckets["(not in training)"]["feedback"] == 1


def test_large_samples_are_judged_by_a_distance_not_a_test():
    base, many = _split(reviews(6000, np.random.default_rng(5)), REVIEW_FEATURES, 0)
    assert len(many) > drift.SMALL  # 1,200 records: past SMALL, where a test's p-value would flag any tiny difference
    same = drift.compare_features(base, many)
    assert {t["test"] for f in same for t in f["tests"]} == {"wasserstein", "jensen-shannon"}
    assert not [f["feature"] for f in same if f["drifted"]]
    shifted = drift.compare_features(base, [{**r, "points": r["points"] + 4} for r in many])
    assert [f["feature"] for f in shifted if f["drifted"]] == ["points"]
    assert "standard deviations" in shifted[1]["tests"][0]["reason"]


def test_the_accuracy_estimate_follows_confidence_and_feedback_accuracy_has_an_interval():
    base = _profiled(WINE_FEATURES[:1], {"alcohol": [13.0] * 10}, predicted=["a"] * 100, classes=["a", "b"], segments=[],
                     confidence=[0.95] * 50 + [0.55] * 50, correct=[True] * 48 + [False] * 2 + [True] * 25 + [False] * 25)
    sure = drift.compare_predictions(base, ["a"] * 40, [0.95] * 40)["estimated_accuracy"]["value"]
    unsure = drift.compare_predictions(base, ["a"] * 40, [0.55] * 40)["estimated_accuracy"]["value"]
    assert sure > 0.9 > 0.6 > unsure > 0.4
    found = drift.accuracy([("2026-11-29", True)] * 45 + [("2026-11-29", False)] * 5 + [("2026-11-30", True)] * 3)
    day = found["days"][0]
    assert (day["day"], day["n"], day["accuracy"]) == ("2026-11-29", 50, 0.9)
    assert day["low"] < 0.9 < day["high"] and day["high"] - day["low"] < 0.2
    assert found["days"][1]["high"] - found["days"][1]["low"] > 0.4  # three labels say little, and the interval shows it


# ------------------------------------------------------------------------------------------------ a monitoring pass


@pytest.fixture
def report_key(aws) -> str:
    return boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]


class FakeLambda:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def invoke(self, **kwargs) -> dict:
        self.calls.append(kwargs)
        return {"StatusCode": 202}


@pytest.fixture
def monitoring(trained, ddb, signatures, report_key):  # noqa: F811
    settings = monitor.Settings(model_bucket=MODEL_BUCKET, predictions_table=TABLE, model_signing_key=signatures.key_id,
                                report_signing_key=report_key, metrics_namespace="Sommelier", retrain_on_drift=True, retrain_after=2,
                                trainer_function="unit-trainer")
    kms, lam = boto3.client("kms"), FakeLambda()
    reports = Signatures(kms, report_key, subject="monitoring report", signer="the monitor's key")

    def run(**kwargs) -> dict:
        """The pass's report as its JSON, what the function answers (and it reads back as the same report)."""
        report = monitor.run(settings, s3=boto3.client("s3"), dynamodb=ddb, cloudwatch=boto3.client("cloudwatch"),
                             model_signatures=signatures, report_signatures=reports, lam=lam, **kwargs)
        assert Report.parse(json.loads(json.dumps(report.doc()))) == report
        return report.doc()

    run.reports, run.lam = reports, lam  # type: ignore[attr-defined]
    return run


def _record(version: str, inputs: list[dict], now: datetime, labels: list[str] | None = None, feedback: list[bool] | None = None,
            ddb=None, caller: str = "key-1") -> None:  # noqa: F811
    recorder = PredictionRecorder(ddb, TABLE, ttl_days=30)
    predictions = [{"label": (labels or ["class_0"] * len(inputs))[i], "confidence": 0.9, "probabilities": {}} for i in range(len(inputs))]
    ids, items = recorder.items(caller=caller, model_version=version, now=now.timestamp(), predictions=predictions, inputs=inputs, context={})
    for i, right in enumerate(feedback or []):
        items[0]["feedback"]["M"][str(i)] = {"M": {"label": {"S": "x"}, "correct": {"BOOL": right}}}
    recorder.put(items)


def _wine_inputs(n: int, shift: float = 0.0) -> list[dict]:
    rows = _records(_wine().sample(n, replace=True, random_state=1), WINE_FEATURES)
    return [{**r, "alcohol": r["alcohol"] + shift} for r in rows]


def test_no_predictions_is_not_enough_data_and_no_verdict(monitoring, trained):
    report = monitoring()
    assert report["status"] == "not enough data"
    assert "not enough data: 0 prediction(s)" in report["message"]
    assert report["drifted_features"] == []
    names = {m["MetricName"] for m in boto3.client("cloudwatch").list_metrics(Namespace="Sommelier")["Metrics"]}
    assert "MonitoredPredictions" in names and "DriftedFeatures" not in names  # no data: never a false alarm


def test_a_drifted_sample_is_reported_signed_counted_and_retrained_on_when_it_lasts(monitoring, trained, ddb):  # noqa: F811
    now = datetime.now(UTC)
    _record(trained.version, _wine_inputs(80, shift=1.5), now - timedelta(minutes=5), ddb=ddb,
            feedback=[True] * 30 + [False] * 10)
    _record("an-earlier-champion", _wine_inputs(20), now - timedelta(minutes=4), ddb=ddb)
    _record(trained.version, _wine_inputs(10), now - timedelta(hours=30), ddb=ddb)  # outside the window
    first = monitoring(now=now)
    assert first["status"] == "ok", first["message"]
    assert first["predictions"] == 80 and first["left_out"] == {"an-earlier-champion": 20}
    assert "alcohol" in first["drifted_features"] and "alcohol" in first["message"]
    assert first["accuracy"]["overall"]["n"] == 40 and first["accuracy"]["overall"]["accuracy"] == 0.75
    assert first["prediction_drift"]["estimated_accuracy"]["method"].startswith("an estimate")
    assert first["retraining"] == {"started": False, "why": "drift in 1 report(s) in a row; retraining after 2"}

    s3 = boto3.client("s3")
    stored = read_report(s3, MODEL_BUCKET, monitoring.reports)  # the latest, its signature verified
    assert stored.key == first["key"] and list(stored.drifted_features) == first["drifted_features"]
    body = s3.get_object(Bucket=MODEL_BUCKET, Key=first["key"])["Body"].read()
    s3.put_object(Bucket=MODEL_BUCKET, Key=first["key"], Body=body.replace(b'"alcohol"', b'"malic_acid"'))
    with pytest.raises(ArtifactRejected, match="monitoring report .* is for another document"):
        read_report(s3, MODEL_BUCKET, monitoring.reports, first["key"])

    cw = boto3.client("cloudwatch")
    drifted = cw.get_metric_statistics(Namespace="Sommelier", MetricName="FeatureDrift", Dimensions=[{"Name": "Feature", "Value": "alcohol"}],
                                       StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1), Period=3600, Statistics=["Maximum"])
    assert drifted["Datapoints"][0]["Maximum"] == 1
    rows = dict(summary(fetch(cw, 1, now=now + timedelta(minutes=1))))  # what `make metrics` prints
    assert "alcohol" in rows["drifted features (model monitoring)"].split(", ")

    second = monitoring(now=now + timedelta(seconds=1))
    assert second["drift_streak"] == 2 and second["retraining"]["started"] is True
    # the trend is carried from report to report, but never from one whose signature fails (the first was rewritten)
    assert "the previous report was refused" in second["trend_note"] and [p["at"] for p in second["trend"]] == [second["at"]]
    third = monitoring(now=now + timedelta(seconds=2))
    assert [p["at"] for p in third["trend"]] == [second["at"], third["at"]] and "trend_note" not in third
    assert third["trend"][1]["classes"] == third["prediction_drift"]["classes"] and third["trend"][1]["drifted_features"] >= 1
    assert json.loads(monitoring.lam.calls[0]["Payload"])["trigger"] == "drift"
    assert monitoring.lam.calls[0]["InvocationType"] == "Event"  # started, not waited for: the gate decides later
    assert read_json(s3, MODEL_BUCKET, layout.MONITORING_LATEST)["drift_streak"] == 3


def test_get_monitoring_serves_the_latest_signed_report_and_refuses_a_rewritten_one(monitoring, trained, ddb, deps, report_key):  # noqa: F811
    assert call(deps, "GET", "/monitoring")[1]["error"]["code"] == "monitoring_not_configured"  # no key: no route, said so
    deps = build_deps(replace(deps.settings, report_signing_key=report_key), deps.logger)
    status, body, _ = call(deps, "GET", "/monitoring")
    assert (status, body["report"]) == (200, None) and body["message"].startswith("no monitoring report yet")
    now = datetime.now(UTC)
    _record(trained.version, [{**r, "colour_code": "x"} for r in _wine_inputs(40, shift=1.5)], now - timedelta(minutes=1), ddb=ddb)
    made = monitoring(now=now)
    status, body, _ = call(deps, "GET", "/monitoring", key_id="another-key")  # a key with no predictions in the window
    assert status == 200 and body["report"] is None and "found no predictions of this API key" in body["message"]
    status, body, _ = call(deps, "GET", "/monitoring")  # key-1 made them: its own report
    own = body["report"]
    assert status == 200 and (own["key"], own["at"]) == (layout.caller_report_key("key-1"), made["at"])
    assert "alcohol" in own["drifted_features"] and own["predictions"] == made["predictions"] == 40
    assert body["message"] == own["message"] and "of this API key" in own["message"] and own["trend"][-1]["at"] == made["at"]
    assert "colour_code" in json.dumps(made) and "colour_code" not in json.dumps(body)  # a caller's stray field stays private
    s3 = boto3.client("s3")
    monitoring(now=now + timedelta(seconds=1))
    key = layout.caller_report_key("key-1")
    stored = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=key)["Body"].read())
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=json.dumps({**stored, "drifted_features": []}).encode())
    status, body, _ = call(deps, "GET", "/monitoring")
    assert status == 503 and body["error"]["code"] == "report_refused"
    assert "monitoring report" in body["error"]["message"] and "signature" in body["error"]["message"]
    # a pointer written by anyone but the monitor (here to a report that is gone), or one that is not JSON: said in words,
    # never a traceback or a 500
    gone = layout.report_key("2026-01-01T00:00:00.000Z")
    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.MONITORING_LATEST, Body=json.dumps({"key": gone, "at": "2026-01-01T00:00:00.000Z"}))
    status, body, _ = call(deps, "GET", "/monitoring")
    assert (status, body["error"]["code"]) == (503, "report_refused") and "monitoring/latest.json is not signed" in body["error"]["message"]
    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.MONITORING_LATEST, Body=b"<html>not json")
    status, body, _ = call(deps, "GET", "/monitoring")
    assert (status, body["error"]["code"]) == (503, "report_refused") and "is not JSON" in body["error"]["message"]


def test_a_window_of_a_second_holds_the_predictions_made_in_it(monitoring, trained, ddb):  # noqa: F811
    made = datetime(2026, 11, 30, 12, 0, 0, 500_000, tzinfo=UTC)
    _record(trained.version, _wine_inputs(40), made, ddb=ddb)
    report = monitoring(now=made + timedelta(milliseconds=100), window_hours=0.3 / 3600)  # since 12:00:00.400
    assert report["predictions"] == 40, report["message"]


def test_a_model_without_a_baseline_is_skipped_with_words(monitoring, trained, ddb, signatures):  # noqa: F811
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=layout.manifest_key(trained.version))["Body"].read())
    del manifest["artifacts"]["baseline"]  # as a model trained before monitoring existed, signed by the trainer
    put_manifest(s3, MODEL_BUCKET, Manifest.from_json(json.dumps(manifest).encode()), signatures)
    _record(trained.version, _wine_inputs(40), datetime.now(UTC), ddb=ddb)
    report = monitoring()
    assert report["status"] == "no baseline"
    assert report["message"] == f"model {trained.version} has no baseline (it was trained before monitoring existed): retrain it to monitor it"
    assert read_report(s3, MODEL_BUCKET, monitoring.reports).status == "no baseline"


def test_a_baseline_is_used_only_as_signed(monitoring, trained, ddb):  # noqa: F811
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=layout.manifest_key(trained.version))["Body"].read())
    baseline = manifest["artifacts"]["baseline"]
    # an overwrite is a new object version: the manifest pins the one it signed, which still reads
    s3.put_object(Bucket=MODEL_BUCKET, Key=baseline["key"], Body=b'{"features": {}}')
    _record(trained.version, _wine_inputs(40), datetime.now(UTC), ddb=ddb)
    assert monitoring()["status"] == "ok"
    # a manifest pointed at other bytes no longer verifies
    manifest["artifacts"]["baseline"] = {**baseline, "version_id": None, "sha256": "0" * 64}
    s3.put_object(Bucket=MODEL_BUCKET, Key=layout.manifest_key(trained.version), Body=json.dumps(manifest).encode())
    report = monitoring()
    assert report["status"] == "no baseline" and report["drifted_features"] == []
    assert f"the baseline of model {trained.version} cannot be used: the signature" in report["message"]


def test_since_is_read_in_words():
    assert monitor.parse_since("24h") == 24 and monitor.parse_since("7d") == 168 and monitor.parse_since("90m") == 1.5
    assert monitor.parse_since("2026-11-30T10:00:00Z", now=datetime(2026, 11, 30, 12, tzinfo=UTC)) == 2
    with pytest.raises(ValueError, match="since must look like 24h, 7d, 90m or an ISO time, got 'yesterday'"):
        monitor.parse_since("yesterday")
    with pytest.raises(ValueError, match="at most 90 days"):
        monitor.parse_since("100d")
    with pytest.raises(ValueError, match="in the past"):
        monitor.parse_since("2026-12-01T00:00:00Z", now=datetime(2026, 11, 30, tzinfo=UTC))


def test_the_baseline_is_an_artifact_the_manifest_signs(trained):
    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=layout.manifest_key(trained.version))["Body"].read())
    baseline = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=manifest["artifacts"]["baseline"]["key"])["Body"].read())
    assert set(baseline["features"]) == {f["name"] for f in WINE_FEATURES}
    assert baseline["predictions"]["rows"] == manifest["metrics"]["holdout"]["rows"]
    assert {s for s in baseline["segments"]} == {"alcohol_level", "colour"}
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


def test_a_window_holding_infinity_or_huge_numbers_is_still_monitored(monitoring, trained, ddb):  # noqa: F811
    """Issue 36: one stored 1e309 (infinity once read), or two 1e308 (whose sum overflows), failed every monitoring pass over
    the window ("Out of range float values"). They are read as missing values, and the pass reports."""
    now = datetime.now(UTC)
    inputs = _wine_inputs(40)
    _record(trained.version, inputs, now - timedelta(minutes=3), ddb=ddb)
    recorder = PredictionRecorder(ddb, TABLE, ttl_days=30)
    for text in ("1e308", "1e308", "Infinity", "1e309"):
        _, items = recorder.items(caller="key-2", model_version=trained.version, now=(now - timedelta(minutes=2)).timestamp(),
                                  predictions=[{"label": "class_0", "confidence": 0.9, "probabilities": {}}],
                                  inputs=[{**inputs[0], "magnesium": 12345.5}], context={})
        items[0]["predictions"]["S"] = items[0]["predictions"]["S"].replace("12345.5", text)
        recorder.put(items)
    report = monitoring(now=now)
    assert report["status"] == "ok", report["message"]
    assert report["predictions"] == 44
    assert "Infinity" not in json.dumps(report)


def _means(view: dict) -> dict[str, tuple[float, int]]:
    """(mean, count) of each feature's recent values as GET /monitoring shows them: what the differencing attack reads."""
    return {f["feature"]: (t["mean"], t["n"]) for f in view["features"] for t in f["tests"] if t.get("mean") is not None}


def test_a_key_cannot_difference_the_monitoring_view_into_another_keys_inputs(monitoring, trained, ddb, deps, report_key):  # noqa: F811
    """Issue 36: with a mean and a count per feature over every key's predictions, 30 known predictions of one key and 1 of
    another gave back the other's 13 exact values ((mean * n - own) / 1). Each key now sees a report of its own predictions
    only: the same subtraction gives back nothing."""
    deps = build_deps(replace(deps.settings, report_signing_key=report_key), deps.logger)
    now = datetime.now(UTC)
    own = _wine_inputs(30)
    secret = {**_wine_inputs(1, shift=0.7)[0], "magnesium": 123.25}
    _record(trained.version, own, now - timedelta(minutes=2), ddb=ddb, caller="attacker")
    _record(trained.version, [secret], now - timedelta(minutes=1), ddb=ddb, caller="victim", labels=["class_2"])
    made = monitoring(now=now)
    assert made["predictions"] == 31 and made["caller_reports"] == 2  # the operator's report holds every key's predictions
    view = call(deps, "GET", "/monitoring", key_id="attacker")[1]["report"]
    assert view["predictions"] == 30
    means = _means(view)
    assert means, "the view shows per-feature means: the attack has something to read"
    for feature, (mean, n) in means.items():
        recovered = mean * n - sum(r[feature] for r in own)
        assert n == 30 and abs(recovered) < 1e-6 * max(1.0, abs(mean * n)), (feature, recovered, secret[feature])
    assert view["prediction_drift"]["classes"].get("class_2", 0) == 0  # nor the other key's answer
    victim = call(deps, "GET", "/monitoring", key_id="victim")[1]["report"]
    assert victim["predictions"] == 1 and victim["status"] == "not enough data"


def test_the_window_totals_add_up_every_period_it_came_back_as(s3):
    """`make metrics`' whole-window figures: an hour that straddles a clock hour comes back as two datapoints."""
    cw, now = boto3.client("cloudwatch"), datetime(2026, 11, 24, 12, 20, tzinfo=UTC)
    for at, errors in ((now - timedelta(minutes=40), [0, 0, 1]), (now - timedelta(minutes=10), [1, 0, 0, 0])):
        cw.put_metric_data(Namespace="Sommelier", MetricData=[
            {"MetricName": "Requests", "Dimensions": [{"Name": "Route", "Value": "/predict"}], "Value": 1.0, "Timestamp": at} for _ in errors] + [
            {"MetricName": "ServerError", "Value": float(e), "Timestamp": at} for e in errors])
    totals = fetch(cw, 1, now=now)["totals"]
    assert totals["requests"] == 7 and totals["errors5xx"] == pytest.approx(2 / 7) and totals["p99"] is None
    # moto aligns periods to the start time, CloudWatch and MiniStack to the clock: the same hour as two periods
    two = {"w_requests": {"Values": [3.0, 4.0]}, "w_errors5xx": {"Values": [1.0, 1.0]}, "n_errors5xx": {"Values": [3.0, 4.0]},
           "w_p99": {"Values": [40.0, 90.0]}}
    assert (_whole(two, "requests", "Sum"), _whole(two, "errors5xx", "Average"), _whole(two, "p99", "p99")) == (7.0, 2 / 7, 90.0)


def test_a_predictor_worker_starts_without_the_monitoring_report_module():
    """Issue 39: its dataclasses cost every worker's start ~24 ms for a route few calls; /monitoring imports it itself
    (the route's tests above run it)."""
    import subprocess
    import sys

    script = "import sys\nfrom predictor import api, service\nprint('sommelier_contract.monitoring' in sys.modules)"
    env = {"PYTHONPATH": f"{ROOT / 'services' / 'predictor'}:{ROOT / 'services' / 'contract'}", "PATH": "/usr/bin:/bin"}
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout.strip() == "False"

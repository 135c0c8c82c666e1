"""Model monitoring: the champion's recent predictions (DynamoDB) against the baseline it was trained with (a signed
artifact of its version), as a signed report in the model bucket, metrics and alarms in CloudWatch, and, when asked
for (RETRAIN_ON_DRIFT), a training run after sustained drift. The statistics are in monitor/drift.py.

It reads what serving wrote and never writes anything serving reads, so a monitor that fails leaves predictions as
they were. Predictions of other models (an earlier champion, a candidate on trial) are left out and counted: each
model is compared with its own baseline only.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor import drift
from sommelier_contract import layout, pointers
from sommelier_contract.artifacts import ArtifactNotListed, ArtifactRejected, Signatures, verified_artifact
from sommelier_contract.baseline import Baseline
from sommelier_contract.metric_names import Metric
from sommelier_contract.monitoring import Report, Retraining, TrendPoint, Window, publish, read_latest, read_report, write_report
from sommelier_contract.stored import expand

log = logging.getLogger("monitor")
TREND = 48  # reports carried in each report's trend: two days of the hourly schedule


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    model_bucket: str
    predictions_table: str
    model_signing_key: str = Field(description="the key the trainer signs manifests with (verifies the baseline's)")
    report_signing_key: str = Field(description="the KMS key (ECDSA P-256) monitoring reports are signed with; only the monitor signs")
    metrics_namespace: str = "Sommelier"
    monitor_window_hours: float = Field(24, gt=0, le=24 * 90, description="the predictions compared: those of the last hours")
    monitor_accuracy_days: float = Field(14, gt=0, le=90, description="accuracy from feedback per day over this many days")
    monitor_max_predictions: int = Field(100_000, ge=100, description="at most this many predictions are compared (a sample)")
    retrain_on_drift: bool = Field(False, description="start a training run after RETRAIN_AFTER reports in a row found drift")
    retrain_after: int = Field(3, ge=1)
    trainer_function: str = ""


def parse_since(text: str, now: datetime | None = None) -> float:
    """Hours from "24h", "7d", "90m", a number of hours, or an ISO time ("2026-11-30T12:00:00Z": since then)."""
    text = str(text).strip()
    units = {"m": 1 / 60, "h": 1, "d": 24}
    try:
        if "T" in text:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            hours = ((now or datetime.now(UTC)) - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds() / 3600
        elif text and text[-1].lower() in units:
            hours = float(text[:-1]) * units[text[-1].lower()]
        else:
            hours = float(text)
    except ValueError:
        raise ValueError(f"since must look like 24h, 7d, 90m or an ISO time, got {text!r}") from None
    if not 0 < hours <= 24 * 90:
        raise ValueError(f"since must be in the past and at most 90 days ago, got {text!r}")
    return hours


def read_predictions(dynamodb, table: str, since: str, cap: int) -> tuple[list[dict[str, Any]], bool]:
    """Every prediction made since `since` (ISO), up to `cap` of them, and whether the cap cut the scan short. A scan:
    the table's indexes are per API key, and monitoring looks at every key's predictions together."""
    out: list[dict[str, Any]] = []
    args: dict[str, Any] = {"TableName": table, "FilterExpression": "created_at >= :since",
                            "ExpressionAttributeValues": {":since": {"S": since}}}
    while True:
        page = dynamodb.scan(**args)
        for item in page.get("Items", []):
            out += expand(item)
        if len(out) >= cap:
            return out[:cap], True
        if "LastEvaluatedKey" not in page:
            return out, False
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _outcomes(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, bool]]:
    """(input, day of the prediction, right?) of each prediction that got feedback."""
    return [(r.get("input") or {}, r["created_at"][:10], bool(r["feedback"].get("correct")))
            for r in records if isinstance(r.get("feedback"), dict) and "correct" in r["feedback"]]


def assess(baseline: Baseline, manifest_segments: list[dict[str, Any]], recent: list[dict[str, Any]],
           labelled: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's findings: `recent` predictions of one model against its baseline; `labelled`, the same model's
    predictions (over the longer accuracy window) of which those with feedback count."""
    inputs = [r.get("input") or {} for r in recent]
    features = drift.compare_features(baseline, inputs)
    quality = drift.quality(baseline, inputs, features)
    predictions = drift.compare_predictions(baseline, [str(r.get("label")) for r in recent],
                                            [float(r.get("confidence") or 0) for r in recent])
    outcomes = _outcomes(labelled)
    segments = drift.compare_segments(baseline, manifest_segments, inputs, [(i, right) for i, _, right in outcomes])
    return {
        "features": features,
        "drifted_features": [f["feature"] for f in features if f["drifted"]],
        "quality": quality,
        "violations": [q for q in quality if q["violated"]],
        "prediction_drift": predictions,
        # per day over the accuracy window (labels come late), and of the compared predictions alone
        "accuracy": {**drift.accuracy([(day, right) for _, day, right in outcomes]),
                     "window": drift.accuracy([(day, right) for _, day, right in _outcomes(recent)])["overall"]},
        "segments": segments,
        "drifted_segments": [s["segment"] for s in segments if s["drifted"]],
    }


def _metrics(report: Report) -> list[dict[str, Any]]:
    def datum(name: str, value: float, unit: str = "None", **dims: str) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()], "Value": float(value), "Unit": unit}

    data = [datum(Metric.MONITORED_PREDICTIONS, report.predictions, "Count"), datum(Metric.MONITOR_FAILED, 0, "Count")]
    if report.status != "ok":
        return data  # no verdict without data: the alarms treat missing data as not breaching
    data.append(datum(Metric.DRIFTED_FEATURES, len(report.drifted_features), "Count"))
    for f in report.features:
        data.append(datum(Metric.FEATURE_DRIFT, 1 if f.drifted else 0, "Count", Feature=f.feature))
        if f.psi is not None:
            data.append(datum(Metric.FEATURE_PSI, f.psi, Feature=f.feature))
    data.append(datum(Metric.DATA_QUALITY_VIOLATIONS, len(report.violations), "Count"))
    for q in report.quality:
        data.append(datum(Metric.DATA_QUALITY_VIOLATIONS, 1 if q.violated else 0, "Count", Check=q.check))
    pred = report.prediction_drift
    if pred is not None:
        data.append(datum(Metric.PREDICTION_DRIFT, 1 if pred.drifted else 0, "Count"))
        if pred.estimated_accuracy:
            data.append(datum(Metric.ESTIMATED_ACCURACY, pred.estimated_accuracy.value))
    overall = report.accuracy.overall if report.accuracy else None
    if overall and overall.n >= drift.MIN_PREDICTIONS and report.model and report.model.holdout_accuracy is not None:
        data.append(datum(Metric.MONITORED_ACCURACY, overall.accuracy))
        data.append(datum(Metric.ACCURACY_DROP, round(report.model.holdout_accuracy - overall.accuracy, 4)))
    for s in report.segments:
        data.append(datum(Metric.SEGMENT_DRIFT, 1 if s.drifted else 0, "Count", Segment=s.segment))
        for b in s.buckets:
            if b.accuracy is not None:
                data.append(datum(Metric.SEGMENT_ACCURACY, b.accuracy, Segment=s.segment, Bucket=b.bucket))
    return data


def publish_metrics(cloudwatch, namespace: str, report: Report) -> None:
    data = _metrics(report)
    for i in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i:i + 1000])


def _streak(s3, bucket: str, signatures: Signatures, report: Report) -> int:
    """How many reports in a row, this one included, found drift (a report without data says nothing either way). A
    latest-report pointer that cannot be trusted counts nothing; this pass's pointer replaces it."""
    try:
        latest = read_latest(s3, bucket, signatures)
    except ArtifactRejected as err:
        log.warning("the streak starts again: %s", err)
        latest = None
    before = latest.drift_streak if latest else 0
    if report.status != "ok":
        return before
    return before + 1 if report.drifted_features else 0


def _retrain(settings: Settings, lam, report: Report) -> Retraining | None:
    """After `retrain_after` drifted reports in a row, a training run (asynchronous); the gate still decides."""
    if not (settings.retrain_on_drift and report.status == "ok" and report.drifted_features):
        return None
    streak = report.drift_streak or 0
    if streak < settings.retrain_after:
        return Retraining(started=False, why=f"drift in {streak} report(s) in a row; retraining after {settings.retrain_after}")
    why = (f"drift in {streak} reports in a row ({', '.join(report.drifted_features)}); "
           f"the quality gate decides whether the new model is promoted")
    if not settings.trainer_function:
        return Retraining(started=False, why=f"{why}, but no TRAINER_FUNCTION is set")
    lam.invoke(FunctionName=settings.trainer_function, InvocationType="Event",
               Payload=json.dumps({"trigger": "drift", "reason": why}).encode())
    log.info("retraining: %s", why)
    return Retraining(started=True, why=why)


def _stamp(at: datetime) -> str:
    """As the predictor writes created_at: the same format compares as strings."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run(settings: Settings, *, s3, dynamodb, cloudwatch, model_signatures: Signatures, report_signatures: Signatures,
        lam=None, now: datetime | None = None, window_hours: float | None = None) -> Report:
    """One monitoring pass: the report, also written (signed) to the model bucket at its key, with its metrics."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    hours = window_hours or settings.monitor_window_hours
    since = now - timedelta(hours=hours)
    accuracy_since = min(since, now - timedelta(days=settings.monitor_accuracy_days))
    report = findings(settings, s3, dynamodb, model_signatures, report_signatures,
                      Report(at=_stamp(now), window=Window(since=_stamp(since), hours=hours), status="", message=""), _stamp(accuracy_since))
    trend, note = _trend(s3, settings.model_bucket, report_signatures, report)
    report = replace(report, trend=trend, trend_note=note, key=layout.report_key(report.at))
    report = replace(report, drift_streak=_streak(s3, settings.model_bucket, report_signatures, report))
    report = replace(report, retraining=_retrain(settings, lam, report), seconds=round(time.perf_counter() - started, 3))
    publish(s3, settings.model_bucket, report, report_signatures)
    publish_metrics(cloudwatch, settings.metrics_namespace, report)
    log.info("monitoring: %s", report.message)
    return report


def findings(settings: Settings, s3, dynamodb, model_signatures: Signatures, report_signatures: Signatures, blank: Report,
             accuracy_since: str) -> Report:
    """The champion's predictions in `blank`'s window against its baseline: a verdict, or the reason there is none (no
    model, no baseline, not enough data). Also writes each active API key's own report."""
    def without(status: str, message: str, **more: Any) -> Report:
        return Report.parse({**blank.doc(), "status": status, "message": message, **more}, strict=True)

    try:
        champion = pointers.read_champion(s3, settings.model_bucket)
    except ArtifactRejected as err:
        return without("no model", f"the champion pointer cannot be read: {err}")
    if not champion:
        return without("no model", "there is no champion to monitor yet: train one (make train)")
    version = champion.version
    try:
        manifest, body = verified_artifact(s3, settings.model_bucket, version, "baseline", model_signatures)
    except ArtifactNotListed:
        return without("no baseline", f"model {version} has no baseline (it was trained before monitoring existed): retrain it to monitor it")
    except ArtifactRejected as err:
        return without("no baseline", f"the baseline of model {version} cannot be used: {err}")
    try:
        baseline = Baseline.parse(json.loads(body), f"the baseline of model {version}")
    except ValueError as err:  # signed, so written by the trainer: of a format this monitor does not read
        return without("no baseline", f"the baseline of model {version} cannot be used: {err}")
    model = {"version": version, "dataset": manifest.dataset.name, "family": manifest.model.family,
             "holdout_accuracy": manifest.metrics.holdout.accuracy}
    everything, sampled = read_predictions(dynamodb, settings.predictions_table, accuracy_since, settings.monitor_max_predictions)
    mine = [r for r in everything if r.get("model_version") == version]
    recent = [r for r in mine if r["created_at"] >= blank.window.since]
    others = Counter(r.get("model_version", "?") for r in everything if r.get("model_version") != version and r["created_at"] >= blank.window.since)
    common = Report.parse({**blank.doc(), "model": model}, strict=True)
    counted = {"model": model, "predictions": len(recent), "sampled": sampled, "left_out": dict(others),
               "caller_reports": caller_reports(settings, s3, report_signatures, baseline, manifest.segments, common, recent, mine)}
    if len(recent) < drift.MIN_PREDICTIONS:
        left = f"; {sum(others.values())} prediction(s) of other models left out" if others else ""
        return without("not enough data", f"not enough data: {len(recent)} prediction(s) of model {version} in the last "
                       f"{blank.window.hours:.4g} h; at least {drift.MIN_PREDICTIONS} are needed to compare{left}",
                       accuracy=drift.accuracy([(d, r) for _, d, r in _outcomes(mine)]), **counted)
    report = without("ok", "", **counted, **assess(baseline, manifest.segments, recent, mine))
    return replace(report, message=_verdict(report, "", version))


MAX_CALLER_REPORTS = 200  # the most active API keys in a window get a report of their own each pass


def _verdict(report: Report, whose: str, version: str) -> str:
    n = len(report.drifted_features)
    return (f"{n} feature(s) drifted: {', '.join(report.drifted_features)}" if n else "no feature drifted") + \
        f"; {len(report.violations)} data-quality violation(s); {report.predictions} prediction(s) of {whose}model {version}"


def caller_reports(settings: Settings, s3, signatures: Signatures, baseline: Baseline, segments: list[dict[str, Any]],
                   common: Report, recent: list[dict[str, Any]], mine: list[dict[str, Any]]) -> int:
    """Each API key's own report: the same findings over its own predictions only, signed, at layout.caller_report_key.
    GET /monitoring shows a key its own, never the report over every key's predictions: any aggregate over several keys'
    inputs (a mean and a count) can be differenced into one key's values by another that knows its own (issue 36).
    `common` holds the pass's time, window and model. Returns how many were written."""
    by_caller: dict[str, list[dict[str, Any]]] = {}
    for r in mine:
        by_caller.setdefault(str(r.get("caller_key_id") or "-"), []).append(r)
    since = common.window.since
    active = Counter({c: sum(r["created_at"] >= since for r in rows) for c, rows in by_caller.items()})
    version = common.model.version if common.model else "?"
    for caller, _ in active.most_common(MAX_CALLER_REPORTS):
        labelled = by_caller[caller]
        own = [r for r in labelled if r["created_at"] >= since]
        base = {**common.doc(), "key": layout.caller_report_key(caller), "scope": "the predictions of this API key only", "predictions": len(own)}
        if len(own) < drift.MIN_PREDICTIONS:
            report = Report.parse({**base, "status": "not enough data", "accuracy": drift.accuracy([(d, r) for _, d, r in _outcomes(labelled)]),
                                   "message": f"not enough data: {len(own)} prediction(s) of this API key with model {version} in the window; "
                                              f"at least {drift.MIN_PREDICTIONS} are needed to compare"}, strict=True)
        else:
            report = Report.parse({**base, "status": "ok", "message": "", **assess(baseline, segments, own, labelled)}, strict=True)
            report = replace(report, message=_verdict(report, "this API key with ", version))
        try:
            previous = read_report(s3, settings.model_bucket, signatures, report.key)
        except ArtifactRejected:  # none yet, or one that cannot be trusted: its trend starts again
            previous = None
        write_report(s3, settings.model_bucket, replace(report, trend=_carried(previous, report)), signatures)
    return min(len(active), MAX_CALLER_REPORTS)


def _trend(s3, bucket: str, signatures: Signatures, report: Report) -> tuple[tuple[TrendPoint, ...], str | None]:
    """The last TREND reports' points, this one's last: carried from the previous report, which is read only when its
    signature verifies (a trend that cannot be trusted starts again, and the report says why)."""
    try:
        previous = read_report(s3, bucket, signatures)
    except ArtifactRejected as err:
        return _carried(None, report), f"the trend starts again: the previous report was refused ({err})"
    return _carried(previous, report), None


def _carried(previous: Report | None, report: Report) -> tuple[TrendPoint, ...]:
    """The previous report's trend with this report's point added, the last TREND of them."""
    return (*(previous.trend if previous else ()), report.point())[-TREND:]

"""Model monitoring's report: one type, `Report`, that the monitor builds and signs and every reader (the CLI, the
monitor's own trend and streak, the API) gets back verified, and, for the API, its public view without what would show
one caller another caller's inputs. The drift statistics' own fields are typed too (`DriftTest`, `FeatureDrift`, ...):
nobody reaches into a report with string keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected, Signatures, missing, parse_document, read_json
from sommelier_contract.typed import build, omit, plain

FORMAT = 1
NEW_BUCKETS = "(not in training)"


@dataclass(frozen=True)
class DriftTest:
    """One measure of a feature (or of the predictions) against training: the test chosen for its sample size."""

    measure: str  # "values", "categories", "length in tokens", ...
    n: int
    psi: float
    test: str  # "kolmogorov-smirnov", "wasserstein", "chi-square", "jensen-shannon", or "none" (with the reason)
    drifted: bool
    reason: str
    mean: float | None = omit()  # numeric measures: of the recent values
    statistic: float | None = omit()
    p_value: float | None = omit()
    threshold: float | None = omit()

    @property
    def ran(self) -> bool:
        return self.test != "none"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    type: str  # numeric | categorical | text
    missing: float
    baseline_missing: float
    drifted: bool
    psi: float | None
    tests: tuple[DriftTest, ...] = ()
    score: float | None = omit()  # how far its tests went towards flagging it: 1 is a test's threshold
    absent: float | None = omit()  # share of records that left it out (the model answered without it); `missing` reads the rest
    note: str | None = omit()
    token_psi: float | None = omit()  # text: the top tokens' PSI
    unseen_words: float | None = omit()
    baseline_unseen_words: float | None = omit()


@dataclass(frozen=True)
class QualityCheck:
    check: str  # missing | absent (said, never violated) | out_of_range | unseen_category | unfamiliar_text | schema
    feature: str | None
    value: float
    baseline: float
    violated: bool
    message: str
    examples: tuple[str, ...] | None = omit()  # unseen categories: values callers sent (never in the public view)


@dataclass(frozen=True)
class EstimatedAccuracy:
    value: float
    holdout_accuracy: float
    method: str


@dataclass(frozen=True)
class PredictionDrift:
    classes: dict[str, float]
    baseline_classes: dict[str, float]
    class_mix: DriftTest
    confidence: DriftTest
    mean_confidence: float | None
    drifted: bool
    estimated_accuracy: EstimatedAccuracy | None = None


@dataclass(frozen=True)
class AccuracyFigure:
    """Accuracy from feedback with its 95% Wilson interval; `day`, the day of the predictions, in a per-day row."""

    n: int
    correct: int
    accuracy: float
    low: float
    high: float
    day: str | None = omit()


@dataclass(frozen=True)
class Accuracy:
    overall: AccuracyFigure | None
    days: tuple[AccuracyFigure, ...] = ()
    window: AccuracyFigure | None = omit()  # of the compared predictions alone (an "ok" report)


@dataclass(frozen=True)
class SegmentBucket:
    bucket: str
    share: float
    baseline_share: float
    feedback: int
    accuracy: float | None


@dataclass(frozen=True)
class SegmentDrift:
    segment: str
    feature: str
    drifted: bool
    mix: DriftTest
    buckets: tuple[SegmentBucket, ...] = ()


@dataclass(frozen=True)
class Window:
    since: str  # UTC, as the predictor writes created_at
    hours: float


@dataclass(frozen=True)
class MonitoredModel:
    version: str
    dataset: str | None = None
    family: str | None = None
    holdout_accuracy: float | None = None


@dataclass(frozen=True)
class Retraining:
    started: bool
    why: str


@dataclass(frozen=True)
class TrendPoint:
    """What one report adds to the trend: enough to draw class mix, drift and accuracy over time."""

    at: str
    status: str
    model_version: str | None
    predictions: int
    drifted_features: int
    violations: int
    classes: dict[str, float] | None = None
    mean_confidence: float | None = None
    estimated_accuracy: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True)
class Report:
    """One monitoring pass over one model's predictions (every API key's, or one key's: `scope`)."""

    at: str
    window: Window
    status: str  # "ok", "not enough data", "no baseline" or "no model"
    message: str
    predictions: int = 0
    drifted_features: tuple[str, ...] = ()
    violations: tuple[QualityCheck, ...] = ()
    format: int = FORMAT
    key: str = ""  # where it is (or will be) stored
    model: MonitoredModel | None = omit()
    scope: str | None = omit()
    sampled: bool | None = omit()
    left_out: dict[str, int] | None = omit()  # other models' predictions in the window, by version
    caller_reports: int | None = omit()
    features: tuple[FeatureDrift, ...] = omit(())
    quality: tuple[QualityCheck, ...] = omit(())
    prediction_drift: PredictionDrift | None = omit()
    accuracy: Accuracy | None = omit()
    segments: tuple[SegmentDrift, ...] = omit(())
    drifted_segments: tuple[str, ...] = omit(())
    trend: tuple[TrendPoint, ...] = ()
    trend_note: str | None = omit()
    drift_streak: int | None = omit()
    retraining: Retraining | None = omit()
    seconds: float | None = omit()

    @classmethod
    def parse(cls, doc: Any, where: str = "monitoring report", strict: bool = False) -> Report:
        """A report from its JSON values; ValueError says what is missing or malformed. The monitor builds its reports
        `strict`: a finding the type does not declare is an error, never silently left out of the report."""
        return build(cls, doc, where, strict)

    def doc(self) -> dict[str, Any]:
        return plain(self)

    def to_json(self) -> bytes:
        """The bytes written and signed: sorted keys, indented, no NaN."""
        return json.dumps(self.doc(), indent=1, sort_keys=True, allow_nan=False).encode()

    def point(self) -> TrendPoint:
        pred = self.prediction_drift
        return TrendPoint(at=self.at, status=self.status, model_version=self.model.version if self.model else None,
                          predictions=self.predictions, drifted_features=len(self.drifted_features), violations=len(self.violations),
                          classes=pred.classes if pred else None, mean_confidence=pred.mean_confidence if pred else None,
                          estimated_accuracy=pred.estimated_accuracy.value if pred and pred.estimated_accuracy else None,
                          accuracy=self.accuracy.window.accuracy if self.accuracy and self.accuracy.window else None)


@dataclass(frozen=True)
class Latest:
    """monitoring/latest.json: which report is the latest, and what the next pass needs of it (the drift streak)."""

    key: str
    at: str
    status: str | None = None
    drifted_features: tuple[str, ...] = ()
    drift_streak: int = 0

    def doc(self) -> dict[str, Any]:
        return plain(self)


class ReportMissing(ArtifactRejected):
    """The report asked for is not in the bucket (a key with no report of its own yet, or one the latest pointer names
    but that is gone)."""


def _pointer_body(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def write_latest(s3, bucket: str, latest: Latest, signatures: Signatures) -> None:
    """monitoring/latest.json: which report is the latest, signed with the monitor's key inside the one object, so a crash
    never leaves a pointer and a signature that disagree."""
    fields = latest.doc()
    doc = {**fields, "signature": signatures.sign(_pointer_body(fields))}
    s3.put_object(Bucket=bucket, Key=layout.MONITORING_LATEST, Body=json.dumps(doc, indent=1, sort_keys=True).encode(),
                  ContentType="application/json")


def read_latest(s3, bucket: str, signatures: Signatures) -> Latest | None:
    """monitoring/latest.json, verified with the monitor's key; None before the first report. A pointer that is not JSON,
    names no report or is not signed by the monitor (rewritten by hand, or written before pointers were signed) raises
    ArtifactRejected: an older report pointed to by anyone else is never served as the latest."""
    doc = read_json(s3, bucket, layout.MONITORING_LATEST, required=("key", "at"))
    if doc is None:
        return None
    fields = {k: v for k, v in doc.items() if k != "signature"}
    signature = doc.get("signature")
    signatures.verify(layout.MONITORING_LATEST, _pointer_body(fields), signature if isinstance(signature, dict) else None)
    streak = fields.get("drift_streak")
    try:  # a streak that is not a count (a pointer of an older format) counts nothing
        return build(Latest, {**fields, "drift_streak": streak if isinstance(streak, int) and streak >= 0 else 0}, layout.MONITORING_LATEST)
    except ValueError as err:
        raise ArtifactRejected(f"{layout.MONITORING_LATEST} is malformed: {err}") from err


def read_report(s3, bucket: str, signatures: Signatures, key: str | None = None) -> Report | None:
    """A report (the latest when `key` is None; None when there is none yet), refused unless its signature verifies
    with the monitor's key and, for the latest, unless it is the one the signed pointer names, written at its time."""
    expected: Latest | None = None
    if key is None:
        expected = read_latest(s3, bucket, signatures)
        if expected is None:
            return None
        key = expected.key
    if not key.startswith(layout.MONITORING):
        raise ArtifactRejected(f"{key!r} is not a monitoring report")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if missing(err):
            raise ReportMissing(f"the monitoring report {key}{' named as the latest' if expected else ''} is missing") from err
        raise
    signatures.verify(key, body, read_json(s3, bucket, layout.report_signature_key(key)))
    try:
        report = Report.parse(parse_document(body, key), key)
    except ValueError as err:
        raise ArtifactRejected(f"the monitoring report at {key} is malformed: {err}") from err
    if expected is not None and (report.key, report.at) != (key, expected.at):
        raise ArtifactRejected(f"the monitoring report at {key} is not the one {layout.MONITORING_LATEST} names (written {expected.at})")
    return report


def write_report(s3, bucket: str, report: Report, signatures: Signatures) -> None:
    """A report at its key with its signature beside it (a caller's report; the monitor's own goes through `publish`)."""
    body = report.to_json()
    s3.put_object(Bucket=bucket, Key=report.key, Body=body, ContentType="application/json")
    s3.put_object(Bucket=bucket, Key=layout.report_signature_key(report.key), Body=json.dumps(signatures.sign(body)).encode(),
                  ContentType="application/json")


def publish(s3, bucket: str, report: Report, signatures: Signatures) -> None:
    """The report (at its key), its signature, then the pointer to it: a crash in between leaves the previous report the
    latest."""
    write_report(s3, bucket, report, signatures)
    write_latest(s3, bucket, Latest(key=report.key, at=report.at, status=report.status, drifted_features=report.drifted_features,
                                    drift_streak=report.drift_streak or 0), signatures)


def _public_check(check: QualityCheck) -> QualityCheck:
    out = replace(check, examples=None)  # unseen categories: values callers sent
    if check.check == "schema" and check.violated:  # the unknown fields' names came from callers' records
        out = replace(out, message=f"records carried fields the model does not know ({check.value:.1%} per record)")
    return out


def _public_segment(segment: SegmentDrift) -> SegmentDrift:
    """A category bucket training never had is a value some caller sent: such buckets are pooled into one."""
    known = [b for b in segment.buckets if b.baseline_share > 0]
    new = [b for b in segment.buckets if b.baseline_share <= 0]
    if new:
        share, feedback = sum(b.share for b in new), sum(b.feedback for b in new)
        right = sum((b.accuracy or 0) * b.feedback for b in new)
        known.append(SegmentBucket(bucket=NEW_BUCKETS, share=round(share, 4), baseline_share=0.0, feedback=feedback,
                                   accuracy=round(right / feedback, 4) if feedback else None))
    return replace(segment, buckets=tuple(known))


def public_view(report: Report) -> Report:
    """The report for any API key: every aggregate, none of the inputs themselves (each key sees only its own data)."""
    return replace(report, quality=tuple(map(_public_check, report.quality)), violations=tuple(map(_public_check, report.violations)),
                   segments=tuple(map(_public_segment, report.segments)))

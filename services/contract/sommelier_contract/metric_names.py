"""Every custom metric's name, defined once (namespace: the template's METRICS_NAMESPACE, `Sommelier`). The predictor,
the trainer, the monitor and the canary write or read them by these names, the CLI charts them, and a unit test holds
the template's alarms and dashboard to this list (tests/unit/test_template.py)."""

from __future__ import annotations

from enum import StrEnum


class Metric(StrEnum):
    # the predictor, per request (dimensions: Route; ModelVersion; ErrorType for Errors)
    REQUESTS = "Requests"
    LATENCY = "Latency"
    SERVER_ERROR = "ServerError"
    ERRORS = "Errors"
    # the predictor, per prediction and per label sent back
    PREDICTIONS = "Predictions"
    PREDICTIONS_BY_SEGMENT = "PredictionsBySegment"
    PREDICTION_CONFIDENCE = "PredictionConfidence"
    LOW_CONFIDENCE = "LowConfidence"
    SERVED_BY_FALLBACK = "ServedByFallback"
    FEEDBACK_CORRECT = "FeedbackCorrect"
    FEEDBACK_CORRECT_BY_SEGMENT = "FeedbackCorrectBySegment"
    # the trainer, per run (dimension: Dataset)
    TRAINING_DURATION = "TrainingDuration"
    TRAINING_FAILED = "TrainingFailed"
    HOLDOUT_ACCURACY = "HoldoutAccuracy"
    HOLDOUT_F1_MACRO = "HoldoutF1Macro"
    MODEL_PROMOTED = "ModelPromoted"
    FEEDBACK_QUARANTINED = "FeedbackQuarantined"
    # the monitor, per pass
    MONITORED_PREDICTIONS = "MonitoredPredictions"
    MONITOR_FAILED = "MonitorFailed"
    DRIFTED_FEATURES = "DriftedFeatures"
    FEATURE_DRIFT = "FeatureDrift"
    FEATURE_PSI = "FeaturePSI"
    DATA_QUALITY_VIOLATIONS = "DataQualityViolations"
    PREDICTION_DRIFT = "PredictionDrift"
    ESTIMATED_ACCURACY = "EstimatedAccuracy"
    MONITORED_ACCURACY = "MonitoredAccuracy"
    ACCURACY_DROP = "AccuracyDrop"
    SEGMENT_DRIFT = "SegmentDrift"
    SEGMENT_ACCURACY = "SegmentAccuracy"


def over_periods(stat: str, values: list[float], counts: list[float] | None = None) -> float | None:
    """One window's value from the datapoints GetMetricData returned for it. CloudWatch (and MiniStack) cut a window
    into clock-aligned periods, so even a period longer than the window can come back as two datapoints: sums and
    counts add, an average is the total of its `Sum`s over the total of its `SampleCount`s (`values`, `counts`), and a
    percentile is the worst period's (percentiles do not add). None when there is no datapoint."""
    if stat == "Average":
        total = sum(counts or [])
        return sum(values) / total if total else None
    if not values:
        return None
    return sum(values) if stat in ("Sum", "SampleCount") else max(values)

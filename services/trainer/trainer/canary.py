"""The model canary's evaluator: promote the candidate or roll it back, on live evidence only.

The candidate and the champion are compared over the candidate's trial so far (CloudWatch, per
ModelVersion): 5xx rate, p99 latency, low-confidence share, and accuracy from feedback. Too few
candidate requests, or metrics that cannot be read, mean no decision: it never promotes on
missing evidence. The decision and its evidence go into the candidate's manifest.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sommelier_contract import pointers
from sommelier_contract.metric_names import Metric, over_periods
from trainer import artifacts
from trainer.config import Settings

log = logging.getLogger("trainer")


@dataclass(frozen=True)
class Evidence:
    requests: float
    error_rate: float | None
    p99_ms: float | None
    low_confidence: float | None
    feedback: float
    accuracy: float | None


def gather(cloudwatch, namespace: str, version: str, start: datetime, end: datetime) -> Evidence:
    """One model's live record between start and end (raises on unreadable metrics), every period the trial came back
    as counted (metric_names.over_periods)."""
    period = max(60, int((end - start).total_seconds()) // 60 * 60 + 60)
    queries = {
        "requests": (Metric.REQUESTS, "Sum"), "p99": (Metric.LATENCY, "p99"),
        "errors": (Metric.SERVER_ERROR, "Sum"), "errors_n": (Metric.SERVER_ERROR, "SampleCount"),
        "lowconf": (Metric.LOW_CONFIDENCE, "Sum"), "lowconf_n": (Metric.LOW_CONFIDENCE, "SampleCount"),
        "correct": (Metric.FEEDBACK_CORRECT, "Sum"), "feedback": (Metric.FEEDBACK_CORRECT, "SampleCount"),
    }
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": key, "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name,
                                                                 "Dimensions": [{"Name": "ModelVersion", "Value": version}]},
                                                      "Period": period, "Stat": stat}} for key, (name, stat) in queries.items()],
        StartTime=start, EndTime=end)
    values = {r["Id"]: r["Values"] for r in result["MetricDataResults"]}
    return Evidence(requests=over_periods("Sum", values["requests"]) or 0.0,
                    error_rate=over_periods("Average", values["errors"], values["errors_n"]), p99_ms=over_periods("p99", values["p99"]),
                    low_confidence=over_periods("Average", values["lowconf"], values["lowconf_n"]),
                    feedback=over_periods("SampleCount", values["feedback"]) or 0.0,
                    accuracy=over_periods("Average", values["correct"], values["feedback"]))


def decide(candidate: Evidence, champion: Evidence, settings: Settings) -> tuple[str, str]:
    """("promote" | "rollback" | "wait", why). Pure: the rules, with nothing to read."""
    if candidate.requests < settings.canary_min_requests:
        return "wait", f"{candidate.requests:.0f} candidate requests so far, {settings.canary_min_requests} needed"
    cand_err, champ_err = candidate.error_rate or 0.0, champion.error_rate or 0.0
    if cand_err > champ_err + settings.canary_max_error_rate_increase:
        return "rollback", f"5xx rate {cand_err:.1%} vs the champion's {champ_err:.1%}"
    if candidate.p99_ms is not None and champion.p99_ms is not None and \
            candidate.p99_ms > champion.p99_ms * settings.canary_latency_factor + 20:
        return "rollback", f"p99 latency {candidate.p99_ms:.0f} ms vs the champion's {champion.p99_ms:.0f} ms"
    if candidate.low_confidence is not None and champion.low_confidence is not None and \
            candidate.low_confidence > champion.low_confidence + settings.canary_max_low_confidence_increase:
        return "rollback", f"low-confidence share {candidate.low_confidence:.1%} vs the champion's {champion.low_confidence:.1%}"
    if min(candidate.feedback, champion.feedback) >= settings.canary_min_feedback and \
            (candidate.accuracy or 0.0) < (champion.accuracy or 0.0) - settings.canary_max_accuracy_drop:
        return "rollback", f"accuracy from feedback {candidate.accuracy:.1%} vs the champion's {champion.accuracy:.1%}"
    return "promote", (f"{candidate.requests:.0f} requests: 5xx {cand_err:.1%} (champion {champ_err:.1%}), "
                       f"p99 {candidate.p99_ms or 0:.0f} ms (champion {champion.p99_ms or 0:.0f} ms)")


def evaluate(settings: Settings, s3, cloudwatch, now: datetime) -> dict[str, Any]:
    bucket = settings.model_bucket
    candidate = pointers.read_candidate(s3, bucket)
    if candidate is None:
        return {"decision": "none", "reason": "no candidate on trial"}
    champion = pointers.read_champion(s3, bucket)
    start = datetime.fromisoformat(candidate.since or now.isoformat()) - timedelta(minutes=1)
    try:
        cand = gather(cloudwatch, settings.metrics_namespace, candidate.version, start, now)
        champ = gather(cloudwatch, settings.metrics_namespace, champion.version, start, now) if champion else Evidence(0, 0, None, None, 0, None)
    except (BotoCoreError, ClientError, KeyError) as err:
        log.warning("canary %s: metrics unreadable, no decision: %s", candidate.version, err)
        return {"decision": "wait", "version": candidate.version, "reason": f"metrics unreadable ({err}); never promoted on missing evidence"}
    decision, reason = decide(cand, champ, settings)
    outcome = {"decision": decision, "version": candidate.version, "reason": reason, "at": now.isoformat(),
               "evidence": {"candidate": asdict(cand), "champion": asdict(champ), "champion_version": champion and champion.version}}
    if decision == "promote":
        pointers.promote(s3, bucket, candidate.version, f"canary passed: {reason}", now.isoformat())
        pointers.withdraw(s3, bucket)
    elif decision == "rollback":
        pointers.withdraw(s3, bucket)
    if decision != "wait":
        artifacts.record_canary(s3, bucket, candidate.version, outcome, artifacts.signatures(settings))
    log.info("canary %s: %s (%s)", candidate.version, decision, reason)
    return outcome

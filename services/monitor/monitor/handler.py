"""The model monitoring function: an EventBridge rule invokes it hourly, `make monitor` / `sommelier monitor --since 24h`
on demand. Wiring only: monitor/report.py does the work. It imports no scikit-learn."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger

from monitor.report import Settings, parse_since, run
from sommelier_contract.artifacts import Signatures
from sommelier_contract.metric_names import Metric

logger = Logger(service="monitor")  # owns the "monitor" logger, so monitor/report.py logs JSON too
settings = Settings()
s3, dynamodb, cloudwatch, kms, lam = (boto3.client(name) for name in ("s3", "dynamodb", "cloudwatch", "kms", "lambda"))
model_signatures = Signatures(kms, settings.model_signing_key)
report_signatures = Signatures(kms, settings.report_signing_key, subject="monitoring report", signer="the monitor's key")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    try:
        hours = parse_since(event["since"]) if event.get("since") else None
    except ValueError as err:
        return {"status": "bad request", "message": str(err)}
    try:
        return run(settings, s3=s3, dynamodb=dynamodb, cloudwatch=cloudwatch, model_signatures=model_signatures,
                   report_signatures=report_signatures, lam=lam, window_hours=hours).doc()
    except Exception:
        logger.exception("monitoring failed")
        try:
            cloudwatch.put_metric_data(Namespace=settings.metrics_namespace,
                                       MetricData=[{"MetricName": Metric.MONITOR_FAILED, "Value": 1.0, "Unit": "Count"}])
        except Exception as err:  # the failure itself is what matters; it is already logged
            logger.warning("could not count the failure: %s", err)
        raise

"""The scheduled batch-training function: an EventBridge rule invokes it; it runs the same
training code as `make train` and the trainer container, and logs JSON."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger

from sommelier_contract import layout
from sommelier_contract.dataset import DataError, check_name
from sommelier_contract.results import TrainingResult
from trainer.config import Settings
from trainer.handover import hand_over
from trainer.publish import Unfinished
from trainer.train import dataset_settings, run

logger = Logger(service="trainer")  # owns the "trainer" logger, so the training code logs JSON too
settings = Settings()
s3 = boto3.client("s3")
cloudwatch = boto3.client("cloudwatch")
ecs = boto3.client("ecs")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    trigger = event.get("trigger", "schedule") if isinstance(event, dict) else "schedule"
    if isinstance(event, dict) and event.get("action") == "canary-evaluate":  # its own schedule rule
        from datetime import UTC, datetime

        from trainer.canary import evaluate

        return evaluate(settings, s3, cloudwatch, datetime.now(UTC))
    try:
        chosen = settings
        if isinstance(event, dict) and event.get("dataset"):  # `sommelier train --dataset NAME`
            chosen = settings.model_copy(update={"dataset_prefix": layout.dataset_prefix(check_name(str(event["dataset"])))})
        handed = hand_over(ecs, s3, dataset_settings(chosen, s3, trigger))  # too big for this function: the ECS task
        if handed:
            return handed
        outcome = run(chosen, s3, cloudwatch, trigger=trigger)
    except DataError as err:
        # Bad data will not improve on a retry; the failure is in the logs and the TrainingFailed metric.
        logger.error("training failed", extra={"error": str(err)})
        return TrainingResult(version=None, promoted=False, reason=f"training failed: {err}").doc()
    except Unfinished as err:  # S3 stopped answering while the version was written: what is known, not a stack trace
        logger.error("training stopped", extra={"error": str(err)})
        return TrainingResult(version=None, promoted=False, reason=f"training stopped: {err}").doc()
    result = TrainingResult(version=outcome.version, promoted=outcome.promoted, reason=outcome.reason,
                            quarantined=len(outcome.quarantined), model=outcome.model, unchecked=outcome.unchecked).doc()
    logger.info("training finished", extra=result)
    return result

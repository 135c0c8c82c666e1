"""Where a training run fits: the trainer function (Lambda: 900 s, 3,008 MB) or the trainer image as the ECS task.

A dataset past LAMBDA_MAX_ROWS rows is handed to the ECS task (RunTask, the dataset's prefix in its environment):
measured on this project's 2-core machines, the whole 130,000-row reviews file trains in 210-230 s with a 1.0 GiB
peak (bench/results), and memory grows with the rows, so the template's default (300,000) keeps the Lambda within
its 3,008 MB with room to spare. The function says what it did; the task's run is in its own logs and metrics.
"""

from __future__ import annotations

import logging
from typing import Any

from sommelier_contract import dataset as contract
from sommelier_contract.results import TrainingResult
from trainer.config import Settings

log = logging.getLogger("trainer")


def dataset_rows(s3, settings: Settings) -> int | None:
    """Rows of the dataset's current version, as pushed (None for files seeded without `dataset push`: small ones)."""
    pointer = contract.current(s3, settings.dataset_bucket, settings.dataset_prefix.strip("/"))
    return int(pointer["rows"]) if pointer and isinstance(pointer.get("rows"), int) else None


def hand_over(ecs: Any, s3, settings: Settings) -> dict[str, Any] | None:  # TrainingResult's document
    """Start the ECS task for a dataset too big for this function and say so; None to train here (small enough, or
    no task to hand it to, which is logged)."""
    rows = dataset_rows(s3, settings)
    if not settings.lambda_max_rows or rows is None or rows <= settings.lambda_max_rows:
        return None
    why = f"{rows:,} rows is past LAMBDA_MAX_ROWS ({settings.lambda_max_rows:,}), what this function's 900 s and 3,008 MB fit"
    subnets = [s for s in settings.task_subnets.split(",") if s.strip()]
    if not settings.task_definition or not subnets:
        log.warning("%s, but no ECS task is configured (%s): training here", why,
                    "no task definition: deployed without images" if not settings.task_definition else "no TaskSubnets")
        return None
    run = ecs.run_task(cluster=settings.task_cluster, taskDefinition=settings.task_definition, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "assignPublicIp": "ENABLED"}},
                       overrides={"containerOverrides": [{"name": "trainer", "environment": [
                           {"name": "DATASET_PREFIX", "value": settings.dataset_prefix}]}]})
    if run.get("failures") or not run.get("tasks"):
        log.error("%s; RunTask failed (%s): training here", why, run.get("failures"))
        return None
    task = run["tasks"][0]["taskArn"]
    reason = f"handed to the ECS training task {task.rsplit('/', 1)[-1]}: {why}"
    log.info("%s", reason)
    return TrainingResult(version=None, promoted=False, reason=reason, task=task).doc()

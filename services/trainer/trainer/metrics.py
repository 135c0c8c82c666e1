"""Training results as CloudWatch metrics. Publishing never fails a run: a failure is logged."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("trainer")


def publish(cloudwatch, namespace: str, dataset: str, values: dict[str, tuple[float, str]]) -> bool:
    dims = [{"Name": "Dataset", "Value": dataset}]
    data: list[dict[str, Any]] = [{"MetricName": n, "Dimensions": dims, "Value": float(v), "Unit": u} for n, (v, u) in values.items()]
    try:
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
        return True
    except (BotoCoreError, ClientError) as err:
        log.warning("could not publish training metrics: %s", err)
        return False

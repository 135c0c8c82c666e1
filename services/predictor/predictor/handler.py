"""Lambda entry point: wiring only. Clients, settings and the model cache live at module level,
built once per cold start (service.build_deps); the routes (predictor.api) do the work with them passed in."""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
import uuid
from typing import Any, Protocol

from predictor.api import handle
from predictor.config import Settings
from predictor.logs import Logger
from predictor.service import PredictionService, build_deps


class LambdaContext(Protocol):
    aws_request_id: str
    function_name: str


logger = Logger(service=os.environ.get("SERVICE_NAME", "predictor"))
deps = build_deps(Settings.from_env(), logger)
WORKER = uuid.uuid4().hex[:12]  # this execution environment, as a warm-up tells them apart
MAX_HOLD_MS = 2000


def _stop(signum: int, frame: Any) -> None:
    """A worker told to stop (SIGTERM) sends the metrics it still holds first, for up to two seconds."""
    deps.metrics.flush(2.0)
    raise SystemExit(0)


atexit.register(deps.metrics.flush, 2.0)
if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _stop)


def warm_up(spec: Any) -> dict[str, Any]:
    """A direct invocation (never through the API: it needs lambda:InvokeFunction) that loads the champion and keeps this
    worker busy for `hold_ms`, so the other invocations of the same wave start workers of their own: how `make up` warms
    a pool of them (in AWS, provisioned concurrency does). Answers which worker it was and the model it loaded."""
    hold = min(max(float(spec.get("hold_ms", 0)) if isinstance(spec, dict) else 0.0, 0.0), MAX_HOLD_MS) / 1000
    health = PredictionService(deps).health()
    time.sleep(hold)  # the point of the call: this worker stays taken while its wave arrives
    return {"worker": WORKER, "model_version": health["model_version"], "status": health["status"]}


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.invocation(context)
    if isinstance(event, dict) and "sommelier_warmup" in event:
        return warm_up(event["sommelier_warmup"])
    return handle(event, context.aws_request_id, deps)

"""Lambda entry point: wiring only. Clients, settings and the model cache live at module level,
built once per cold start (service.build_deps); the routes (predictor.api) do the work with them passed in."""

from __future__ import annotations

import atexit
import os
import signal
import threading
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from predictor.api import handle
from predictor.config import Settings
from predictor.service import build_deps

logger = Logger(service=os.environ.get("SERVICE_NAME", "predictor"))
deps = build_deps(Settings.from_env(), logger)


def _stop(signum: int, frame: Any) -> None:
    """A worker told to stop (SIGTERM) sends the metrics it still holds first, for up to two seconds."""
    deps.metrics.flush(2.0)
    raise SystemExit(0)


atexit.register(deps.metrics.flush, 2.0)
if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _stop)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context.aws_request_id, deps)

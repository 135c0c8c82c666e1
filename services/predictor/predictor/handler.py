"""Lambda entry point: wiring only. Clients, settings and the model cache live at module level,
built once per cold start (service.build_deps); the routes (predictor.api) do the work with them passed in.

With SnapStart (a published version of the zip function, `SnapStart: ApplyOn: PublishedVersions` in the template), the
init runs once and every new execution environment resumes from its snapshot. The runtime hooks: before the snapshot,
the champion is loaded and answers one prediction of its example record (nothing recorded), the predictions table is read
once (no such prediction: its client's first call is made in the snapshot), the metrics thread ends and
every client's connections are closed (a snapshot carries neither a thread nor a socket two restored workers could
share); after each restore, this worker gets its own id and random state, the metrics thread starts again, connections
are opened afresh when used, and the champion pointer is read at the next request unless the snapshot read it less than
CHAMPION_REFRESH_SECONDS ago (by the wall clock), so a model promoted after the snapshot is served as soon as by any warm
worker. Credentials need nothing: in AWS they come from the runtime's credential endpoint through botocore's
refreshing provider. Without SnapStart (the image, `$LATEST`, tests) the hooks are never called.
"""

from __future__ import annotations

import atexit
import os
import random
import signal
import threading
import time
import uuid
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from snapshot_restore_py import register_after_restore, register_before_snapshot

from predictor import serving
from predictor.api import handle
from predictor.config import Settings
from predictor.logs import Logger
from predictor.model_store import ModelUnavailable
from predictor.records import NotFound
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


@register_before_snapshot
def before_snapshot() -> None:
    try:
        model = deps.store.current()  # none promoted yet: a restored worker loads it when there is one
    except ModelUnavailable:
        model = None
    example = model.manifest.example if model is not None else None
    if model is not None and example is not None:
        serving.predict(model, serving.decode({"features": example}, model, 1))
    try:  # the table's client makes its first call here (no such prediction), not in each restored worker
        deps.reader.get("snapshot", None)
    except (NotFound, BotoCoreError, ClientError):
        pass
    deps.metrics.pause()
    for client in deps.clients:
        client.close()
    logger.info("ready for the snapshot", extra={"model_version": model.version if model else None})


@register_after_restore
def after_restore() -> None:
    global WORKER
    WORKER = uuid.uuid4().hex[:12]
    random.seed()  # connections: the snapshot closed them all, so this worker opens its own when it calls
    deps.metrics.resume()
    deps.store.restored()


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

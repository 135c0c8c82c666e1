"""The predictor's SnapStart runtime hooks (predictor/handler.py) on moto, with real forks: the snapshot carries no metrics
thread and the champion loaded; each restored worker gets its own worker id and random state, its metrics thread again,
and serves (issue 51 (1), (4)). The forks themselves, sockets included, are tested on the emulator (test_snapstart.py)."""

from __future__ import annotations

import importlib
import json
import os
import sys

import pytest
from snapshot_restore_py import get_after_restore, get_before_snapshot

from .conftest import DATASET_BUCKET, MODEL_BUCKET, PREFIX
from .test_api import TABLE, ddb, deps  # noqa: F401  (fixtures)


@pytest.fixture
def handler(monkeypatch, deps, signatures):  # noqa: F811
    for name, value in {"MODEL_BUCKET": MODEL_BUCKET, "MODEL_SIGNING_KEY": signatures.key_id, "PREDICTIONS_TABLE": TABLE,
                        "DATASET_BUCKET": DATASET_BUCKET, "DATASET_PREFIX": PREFIX, "METRICS_NAMESPACE": "Test"}.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("predictor.handler", None)
    module = importlib.import_module("predictor.handler")
    module.deps.metrics.pause()  # its own wiring from the environment: replaced by the test's (with a clock of its own)
    monkeypatch.setattr(module, "deps", deps)
    yield module
    sys.modules.pop("predictor.handler", None)


def restored_worker(handler, request_id: str, example: dict) -> dict:
    """Fork as the emulator does from a snapshot; the child runs the after-restore hooks and one prediction, and says what
    it saw."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            handler.after_restore()
            context = type("Context", (), {"aws_request_id": request_id, "function_name": "predictor"})()
            event = {"httpMethod": "POST", "resource": "/predict", "path": "/predict", "body": json.dumps({"features": example}),
                     "requestContext": {"requestId": request_id, "identity": {"apiKeyId": "key-1"}}}
            answer = handler.lambda_handler(event, context)
            import random

            seen = {"worker": handler.WORKER, "random": random.random(), "status": answer["statusCode"],
                    "body": json.loads(answer["body"]), "metrics_thread": handler.deps.metrics._buffer._thread.is_alive()}
            os.write(write, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def test_the_snapshot_holds_the_champion_and_no_thread_and_each_restored_worker_is_its_own(handler, trained, example):
    assert (handler.before_snapshot, (), {}) in get_before_snapshot()
    assert (handler.after_restore, (), {}) in get_after_restore()
    handler.before_snapshot()
    assert handler.deps.store.loaded_version == trained.version, "the champion is in the snapshot"
    assert not handler.deps.metrics._buffer._thread.is_alive(), "a fork would inherit a thread that does not run"

    first, second = restored_worker(handler, "req-a", example), restored_worker(handler, "req-b", example)
    for seen, request_id in ((first, "req-a"), (second, "req-b")):
        assert seen["status"] == 200, seen["body"]
        assert seen["body"]["model_version"] == trained.version and seen["body"]["request_id"] == request_id
        assert seen["metrics_thread"], "the restored worker's metrics are sent again"
    assert first["worker"] != second["worker"] != handler.WORKER
    assert first["random"] != second["random"], "two restored workers drew the same random numbers"

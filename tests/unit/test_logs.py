"""The predictor's log lines (predictor/logs.py): JSON that CloudWatch Logs Insights and `make logs` read, each line of an
invocation naming it, the model store's lines too, the last invocation's keys gone when the next starts."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from devstack.logview import render
from predictor.logs import Logger


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_each_line_is_json_naming_its_invocation_and_only_that_one(capsys, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "info")
    logger = Logger("predictor-test")
    logger.invocation(SimpleNamespace(aws_request_id="lambda-1", function_name="fn"))
    logger.append_keys(request_id="req-1")
    logger.info("request", extra={"route": "/predict", "status": 200, "latency_ms": 12.5})
    logging.getLogger("predictor-test.model_store").warning("champion %s refused", "v3")  # a module's own logger
    logger.invocation(SimpleNamespace(aws_request_id="lambda-2", function_name="fn"))
    try:
        raise KeyError("features")
    except KeyError:
        logger.exception("unhandled error")
    first, store, second = lines(capsys.readouterr().out)
    assert first["message"] == "request" and first["request_id"] == "req-1" and first["route"] == "/predict"
    assert (first["level"], first["service"], first["function_request_id"], first["cold_start"]) == ("INFO", "predictor-test", "lambda-1", True)
    assert store["message"] == "champion v3 refused" and store["request_id"] == "req-1" and store["level"] == "WARNING"
    assert second["function_request_id"] == "lambda-2" and second["cold_start"] is False and "request_id" not in second
    assert second["exception_name"] == "KeyError" and "raise KeyError" in second["exception"]
    assert render(json.dumps(first)).split()[1:3] == ["INFO", "req-1"]  # make logs reads the time, level and request


def test_the_level_comes_from_log_level_and_a_word_that_is_no_level_means_info(capsys, monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    quiet = Logger("predictor-quiet")
    quiet.info("not shown")
    quiet.warning("shown")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    loud = Logger("predictor-loud")
    loud.info("shown too")
    assert [d["message"] for d in lines(capsys.readouterr().out)] == ["shown", "shown too"]


def test_a_line_glued_to_the_runtimes_end_line_still_renders():
    line = {"level": "INFO", "message": "request", "request_id": "req-9", "timestamp": "2026-12-03 00:32:10,660+0000",
            "method": "POST", "route": "/predict", "status": 200, "latency_ms": 26.7, "model_version": "v1"}
    rendered = render(json.dumps(line) + "END RequestId: 46b1ce67-ee5d-45d0-82ef-f31bd3efe6b0")
    assert rendered is not None and not rendered.startswith("{")
    assert "POST" in rendered and "/predict" in rendered and " 200 " in rendered and "model v1" in rendered
    assert render("END RequestId: 46b1ce67") is None

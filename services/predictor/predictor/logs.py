"""The predictor's log: one JSON object per line (what CloudWatch Logs Insights and `make logs`, devstack/logview.py,
read), every line of an invocation naming its request, the model store's lines included.

Powertools' Logger wrote this shape (the same keys: level, location, message, timestamp, service, cold_start,
function_request_id, and the extras); importing it was ~60-80 ms of a worker's cold start on 2 cores, a tenth of the
predictor's imports (issue 39, `python -X importtime`), so the predictor logs with the standard library. The trainer
and the monitor, whose cold starts nobody waits on, keep Powertools."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

_OWN = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}  # a LogRecord's own attributes: not extras


class JsonLines(logging.Formatter):
    converter = staticmethod(time.gmtime)  # UTC, as the +0000 says

    def __init__(self, service: str):
        super().__init__()
        self.service = service
        self.keys: dict[str, Any] = {}  # on every line until the next invocation starts

    def format(self, record: logging.LogRecord) -> str:
        doc = {"level": record.levelname, "location": f"{record.funcName}:{record.lineno}", "message": record.getMessage(),
               "timestamp": f"{self.formatTime(record, '%Y-%m-%d %H:%M:%S')},{int(record.msecs):03d}+0000", "service": self.service,
               **self.keys, **{k: v for k, v in vars(record).items() if k not in _OWN}}
        if record.exc_info and record.exc_info[0]:
            doc["exception_name"] = record.exc_info[0].__name__
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class Logger:
    """The logger named `service` (the predictor's modules log under it), writing JsonLines to stdout, which Lambda sends
    to CloudWatch Logs; its level is LOG_LEVEL (INFO when unset or not a level). Everything else is logging.Logger's."""

    def __init__(self, service: str):
        self.formatter = JsonLines(service)
        self.log = logging.getLogger(service)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(self.formatter)
        self.log.handlers[:] = [handler]
        self.log.propagate = False  # the Lambda runtime's root handler would write each line a second time
        level = os.environ.get("LOG_LEVEL", "INFO").upper()
        self.log.setLevel(level if isinstance(logging.getLevelName(level), int) else logging.INFO)
        self.cold_start = True

    def invocation(self, context: Any) -> None:
        """An invocation starts: the keys the last one appended go, and its lines name this one."""
        self.formatter.keys = {"function_name": getattr(context, "function_name", None), "function_request_id": context.aws_request_id,
                               "cold_start": self.cold_start}
        self.cold_start = False

    def append_keys(self, **keys: Any) -> None:
        self.formatter.keys.update(keys)

    def __getattr__(self, name: str) -> Any:  # info, exception, warning, ...
        return getattr(self.log, name)

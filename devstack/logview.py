"""The predictor's structured (JSON) log lines, rendered for a person at a terminal."""

from __future__ import annotations

import json
import re
from typing import Any

_TIME = re.compile(r"(\d{2}:\d{2}:\d{2})(?:[.,](\d{1,3}))?")
# the runtime's own lines around each invocation: noise at a terminal (the request line has the latency)
_PLATFORM = ("START RequestId", "END RequestId", "REPORT RequestId")


def _time(doc: dict[str, Any]) -> str:
    match = _TIME.search(str(doc.get("timestamp", "")))
    if not match:
        return " " * 12
    return f"{match.group(1)}.{(match.group(2) or '0').ljust(3, '0')}"


def render(message: str) -> str | None:
    """One readable line (None for a line not worth showing): time, level, request id, then the
    request's route, status, latency and model for the per-request line, the message otherwise."""
    text = message.rstrip()
    if not text or text.startswith(_PLATFORM):
        return None
    # The compose stack's image functions: the line and the runtime's END line reach the container's log as separate
    # writes, and one event was seen holding both ('{...}END RequestId: ...', CI 2026-12-03 00:32 UTC); the line is ours.
    glued = min((at for at in (text.find(marker) for marker in _PLATFORM) if at > 0), default=-1)
    if glued > 0:
        text = text[:glued].rstrip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if not isinstance(doc, dict):
        return text
    request_id = str(doc.get("request_id") or doc.get("function_request_id") or "-")
    head = f"{_time(doc)} {str(doc.get('level', '')):<7} {request_id[:36]:<36}"
    if doc.get("message") == "request" and "route" in doc:
        latency = doc.get("latency_ms")
        latency_text = f"{latency:8.1f} ms" if isinstance(latency, int | float) else "       ? ms"
        records = doc.get("records")
        extra = f"  {records} records" if isinstance(records, int) and records > 1 else ""
        outcome = "" if doc.get("outcome") in (None, "ok") else f"  {doc['outcome']}"
        return (f"{head} {doc.get('method', ''):<6} {doc.get('route', ''):<20} {doc.get('status', '')} {latency_text}"
                f"  model {doc.get('model_version') or '-'}{outcome}{extra}")
    line = f"{head} {doc.get('message', '')}"
    if doc.get("exception"):
        line += f"\n{' ' * 57}{str(doc['exception']).strip().splitlines()[-1]}"
    return line

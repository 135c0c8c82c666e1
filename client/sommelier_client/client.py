"""A small client: one method a route, errors raised as ApiError with the API's message."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    details: list[dict[str, str]] = field(default_factory=list)
    request_id: str | None = None

    def __str__(self) -> str:
        if self.status == 0:  # nothing answered: no HTTP status or request id to quote
            return self.message
        lines = [f"{self.message} (HTTP {self.status}, {self.code}" + (f", request {self.request_id})" if self.request_id else ")")]
        lines += [f"  - {d['field']}: {d['message']}" for d in self.details]
        return "\n".join(lines)


def find_connection(api_url: str | None = None, api_key: str | None = None) -> tuple[str, str]:
    """Flags, then SOMMELIER_API_URL/SOMMELIER_API_KEY, then the running local stack's stack.json."""
    url, key = api_url or os.environ.get("SOMMELIER_API_URL"), api_key or os.environ.get("SOMMELIER_API_KEY")
    if url and key:
        return url.rstrip("/"), key
    info = _stack_info()
    if info:
        return (url or info["api_url"]).rstrip("/"), key or info["api_key"]
    raise ApiError(0, "not_configured", "no API found: run `make up`, or set SOMMELIER_API_URL and SOMMELIER_API_KEY "
                   "(or pass --api-url/--api-key)")


def _stack_info() -> dict[str, Any] | None:
    """The local stack's stack.json: named by SOMMELIER_STACK_INFO, else in the state folder `make up` was given
    (SOMMELIER_STATE_DIR, as the Makefile reads it), else in .sommelier/ here or above."""
    candidates = [Path(os.environ["SOMMELIER_STACK_INFO"])] if os.environ.get("SOMMELIER_STACK_INFO") else []
    if os.environ.get("SOMMELIER_STATE_DIR"):
        candidates.append(Path(os.environ["SOMMELIER_STATE_DIR"]) / "stack.json")
    here = Path.cwd().resolve()
    candidates += [d / ".sommelier" / "stack.json" for d in (here, *here.parents)]
    for path in candidates:
        if path.is_file():
            return json.loads(path.read_text())
    return None


def unreachable_message(url: str, err: Exception) -> str:
    """One line: what did not answer, and (for the local stack) the command that fixes it."""
    reason = "connection refused" if "refused" in str(err) or "Could not connect" in str(err) else type(err).__name__
    info = _stack_info()
    if info and info.get("aws_endpoint") and url.startswith(info["aws_endpoint"]):
        return f"the local stack does not answer at {info['aws_endpoint']} ({reason}): start it with `make up`"
    return f"cannot reach the API at {url} ({reason})"


def stack_output(name: str) -> str | None:
    """An output of the running local stack (e.g. DatasetBucketName), if there is one."""
    return ((_stack_info() or {}).get("outputs") or {}).get(name)


def aws_connection() -> dict[str, Any]:
    """boto3 client arguments: the local stack's emulator when one is found and AWS_ENDPOINT_URL is unset, else boto3's own."""
    info = _stack_info()
    if info and info.get("aws_endpoint") and not os.environ.get("AWS_ENDPOINT_URL"):
        return {"endpoint_url": info["aws_endpoint"], "region_name": info["region"],
                "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return {}


class Client:
    def __init__(self, api_url: str, api_key: str, timeout: float = 30, session: requests.Session | None = None):
        self.api_url = api_url.rstrip("/")
        self._session = session or requests.Session()
        self._session.headers.update({"x-api-key": api_key, "content-type": "application/json"})
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            resp = self._session.request(method, self.api_url + path, data=None if body is None else json.dumps(body),
                                         params={k: v for k, v in (params or {}).items() if v is not None}, timeout=self.timeout)
        except requests.RequestException as err:
            raise ApiError(0, "unreachable", unreachable_message(self.api_url, err)) from err
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if resp.ok:
            return payload
        error = (payload or {}).get("error") or {}
        messages = {403: "the API key was refused", 429: "too many requests: the usage plan's rate limit or quota was hit; retry later"}
        raise ApiError(resp.status_code, error.get("code", f"http_{resp.status_code}"),
                       error.get("message") or (payload or {}).get("message") or messages.get(resp.status_code, resp.reason),
                       error.get("details", []), (payload or {}).get("request_id") or resp.headers.get("X-Request-Id"))

    def predict(self, features: dict[str, Any], explain: bool = False) -> dict[str, Any]:
        return self._call("POST", "/predict", {"features": features}, params={"explain": "true"} if explain else None)

    def predict_batch(self, records: list[dict[str, Any]], explain: bool = False) -> dict[str, Any]:
        return self._call("POST", "/predict", {"instances": records}, params={"explain": "true"} if explain else None)

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        return self._call("GET", f"/predictions/{requests.utils.quote(prediction_id, safe='')}")["prediction"]

    def history(self, limit: int = 20, model_version: str | None = None, since: str | None = None, until: str | None = None,
                next_token: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/predictions", params={"limit": limit, "model_version": model_version, "since": since,
                                                         "until": until, "next_token": next_token})

    def iter_history(self, **filters: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.history(limit=100, next_token=token, **filters)
            yield from page["predictions"]
            token = page["next_token"]
            if not token:
                return

    def feedback(self, prediction_id: str, label: str) -> dict[str, Any]:
        return self._call("POST", "/feedback", {"prediction_id": prediction_id, "label": label})

    def model(self) -> dict[str, Any]:
        return self._call("GET", "/model")

    def monitoring(self) -> dict[str, Any]:
        """This API key's own model-monitoring report of the latest pass ("report" is None before the first, or when the key
        made no prediction in its window)."""
        return self._call("GET", "/monitoring")

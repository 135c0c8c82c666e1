"""The routes: the HTTP shape of the API (a Lambda proxy event in, a proxy response out). Each route reads its
request (the body as JSON; query parameters and bodies checked against the OpenAPI document's schemas), makes one
call to service.py (POST /predict: the service drives serving.py's four steps) and shapes the answer; `handle`
gives what was raised its HTTP status and code from one table (STATUS: each kind of refusal, and the stores' own
failures), in the documented error shape, and publishes the request's metrics and its log line.

Powertools' event handler (APIGatewayRestResolver) would do the routing, CORS and error mapping; measured 2026-12-02 on
this 2-core machine it adds 35-36 ms to the function's imports (170 ms: its package imports its AppSync resolver, and
that asyncio), more than the 30 ms issue 38 set as the bar, against a cold start issue 39 asks to cut: so the routes
stay this small table."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from predictor.config import Settings
from predictor.document import body_schema, query_schema, query_values
from predictor.model_store import ModelUnavailable
from predictor.records import RecordWriteError, iso
from predictor.service import Deps, HistoryQuery, PredictionService
from predictor.serving import Conflicting, Invalid, NotAllowed, Refused, TooLarge, Unavailable, Unknown, invalid
from sommelier_contract.records import FieldError, SchemaValidator, json_type

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
_PUBLIC_RECORD = ("prediction_id", "request_id", "created_at", "model_version", "label", "confidence", "probabilities",
                  "input", "latency_ms", "batch_size", "batch_index", "feedback")

# The schemas are the OpenAPI document's (document.py); the words a person reads when one refuses are here.
FEEDBACK_BODY = SchemaValidator(body_schema("FeedbackRequest"), unknown="is not allowed; send prediction_id and label")
HISTORY_QUERY = SchemaValidator(query_schema("GET", "/predictions"), unknown="is not a query parameter of GET /predictions",
                                messages={"limit": "must be a whole number from 1 to 100", "model_version": "must be 1 to 1024 bytes",
                                          "next_token": "must be the next_token of the previous page, as it was given"})
PREDICT_QUERY = SchemaValidator(query_schema("POST", "/predict"), unknown="is not a query parameter of this route; it takes explain",
                                messages={"explain": "must be true or false"})


@dataclass
class Request:
    event: dict[str, Any]
    request_id: str
    lambda_request_id: str

    @property
    def query(self) -> dict[str, str]:
        return self.event.get("queryStringParameters") or {}

    @property
    def caller(self) -> str | None:
        """Whose data the request may see: the id of the API key API Gateway authenticated it with. An event
        without one (MiniStack 1.5 leaves `identity.apiKeyId` out) is known by a hash of the key it validated;
        the key itself is never stored or logged."""
        return caller(self.event)


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    model_version: str | None = None  # for the request's metrics and log line
    model_ms: float | None = None  # from the model's choice to the answer
    records: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)


def caller(event: dict[str, Any]) -> str | None:
    """Whose data a request may see: the id of the API key API Gateway authenticated it with. An event
    without one (MiniStack 1.5 leaves `identity.apiKeyId` out) is known by a hash of the key it validated;
    the key itself is never stored or logged."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    if identity.get("apiKeyId"):
        return identity["apiKeyId"]
    key = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "x-api-key" and v), None)
    return f"key-sha256:{hashlib.sha256(key.encode()).hexdigest()[:24]}" if key else None


def refuse(validator: SchemaValidator, doc: Any, where: str = "", sent: dict[str, Any] | None = None) -> None:
    """A 400 naming every problem of `doc`, the first in the message, when the validator refuses it (`sent`: the
    values as they came, when `doc` holds them converted)."""
    errors = validator.errors(doc, where)
    if errors:
        value = (sent if sent is not None else doc).get(errors[0].field) if isinstance(doc, dict) else None
        raise invalid(errors, said=f", got {value!r}" if isinstance(value, str) and errors[0].message.startswith("must") else "")


def checked_query(validator: SchemaValidator, query: dict[str, str]) -> dict[str, Any]:
    """The query as the document's types, or a 400 naming each problem (quoting the values as they were sent)."""
    values = query_values(query, validator.schema)
    refuse(validator, values, sent=query)
    return values


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid JSON number")


def parse_body(event: dict[str, Any]) -> Any:
    raw = event.get("body")
    if raw is None or raw == "":
        raise Invalid("empty_body", 'the request body is empty; send a JSON object such as {"features": {...}}')
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8", errors="replace")
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise TooLarge("body_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise Invalid("invalid_json", f"the body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from err
    except ValueError as err:
        raise Invalid("invalid_json", f"the body is not valid JSON: {err}") from err
    except RecursionError as err:
        raise Invalid("invalid_json", "the body is nested too deeply") from err


def _timestamp(params: dict[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return iso(parsed.timestamp())
    except (ValueError, OverflowError, OSError) as err:  # not a timestamp, or one that leaves years 1-9999 in UTC
        raise Invalid("validation_error", f"{name} must be an ISO 8601 timestamp such as 2026-11-22T10:00:00Z, got {raw!r}",
                       [FieldError(name, "must be an ISO 8601 timestamp between years 1 and 9999 in UTC")]) from err


def public_record(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in _PUBLIC_RECORD if k in record}


def predict(req: Request, service: PredictionService) -> Reply:
    explain = bool(checked_query(PREDICT_QUERY, req.query).get("explain", False))
    done = service.predict(parse_body(req.event), req.caller, {"request_id": req.request_id, "lambda_request_id": req.lambda_request_id},
                           explain)
    return Reply(200, done.answer, done.model_version, done.model_ms, done.records, done.metrics)


def get_prediction(req: Request, service: PredictionService) -> Reply:
    record = service.prediction(req.caller, (req.event.get("pathParameters") or {}).get("id", ""))
    return Reply(200, {"request_id": req.request_id, "prediction": public_record(record)})


def list_predictions(req: Request, service: PredictionService) -> Reply:
    params = req.query
    values = checked_query(HISTORY_QUERY, params)
    if len(params.get("model_version", "").encode()) > 1024:
        raise Invalid("validation_error", "model_version must be 1 to 1024 bytes", [FieldError("model_version", "must be 1 to 1024 bytes")])
    since, until = _timestamp(params, "since"), _timestamp(params, "until")
    if since and until and since > until:
        raise Invalid("validation_error", f"since ({since}) is later than until ({until})",
                       [FieldError("since", "must not be later than until")])
    query = HistoryQuery(limit=values.get("limit", 20), next_token=params.get("next_token"),
                         model_version=params.get("model_version"), since=since, until=until)
    items, token = service.history(req.caller, query)
    return Reply(200, {"request_id": req.request_id, "predictions": [public_record(i) for i in items], "next_token": token})


def feedback(req: Request, service: PredictionService) -> Reply:
    body = parse_body(req.event)
    if not isinstance(body, dict):
        raise Invalid("invalid_body", f'the body must be a JSON object with "prediction_id" and "label", got {json_type(body)}')
    refuse(FEEDBACK_BODY, body)
    entry, metrics = service.feedback(req.caller, body["prediction_id"], body["label"])
    return Reply(201, {"request_id": req.request_id, "prediction_id": body["prediction_id"], "feedback": entry}, metrics=metrics)


def model_info(req: Request, service: PredictionService) -> Reply:
    card = service.model_card()
    return Reply(200, {"request_id": req.request_id, **card}, card["version"])


def monitoring(req: Request, service: PredictionService) -> Reply:
    report, message = service.monitoring(req.caller)
    return Reply(200, {"request_id": req.request_id, "message": message, "report": report.doc() if report else None},
                 report.model.version if report and report.model else None)


def health(req: Request, service: PredictionService) -> Reply:
    answer = service.health()
    return Reply(200, answer, answer["model_version"])


def openapi(req: Request, service: PredictionService) -> Reply:
    return Reply(200, service.openapi())


ROUTES: dict[tuple[str, str], Callable[[Request, PredictionService], Reply]] = {
    ("POST", "/predict"): predict,
    ("GET", "/predictions"): list_predictions,
    ("GET", "/predictions/{id}"): get_prediction,
    ("POST", "/feedback"): feedback,
    ("GET", "/model"): model_info,
    ("GET", "/monitoring"): monitoring,
    ("GET", "/health"): health,
    ("GET", "/openapi.json"): openapi,
}
_PATHS = {path for _, path in ROUTES}


def _headers(settings: Settings, request_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Request-Id": request_id,
        "Access-Control-Allow-Origin": settings.cors_allow_origin,
        "Access-Control-Allow-Headers": "Content-Type,X-Api-Key",
        "Access-Control-Allow-Methods": "GET,POST,OPTIONS",
        "Access-Control-Expose-Headers": "X-Request-Id",
    }


# Every kind of refusal and failure a route may raise, and its HTTP status (and code, where the exception has none).
STATUS: dict[type[Exception], tuple[int, str | None]] = {
    Invalid: (400, None), Unknown: (404, None), NotAllowed: (405, None), Conflicting: (409, None), TooLarge: (413, None),
    Unavailable: (503, None), ModelUnavailable: (503, "no_model"), RecordWriteError: (503, "record_failed"),
}


def status_of(err: Exception) -> tuple[int, str]:
    """The HTTP status and error code of what a route raised (500, internal_error, for anything not in STATUS)."""
    for kind, (status, code) in STATUS.items():
        if isinstance(err, kind):
            return status, code or str(getattr(err, "code", "error"))
    return 500, "internal_error"


def _words(err: Exception, code: str) -> str:
    if isinstance(err, Refused):
        return err.message
    if code == "record_failed":
        return f"the prediction could not be recorded, so it was not returned: {err}"
    if code == "internal_error":
        return "internal error; quote the request id when reporting it"
    return str(err)


QUOTED = 120  # characters kept at each end of a refusal's text that quotes something long a caller sent


def bounded(text: str) -> str:
    """`text` as a refusal may say it: where it quotes a caller's megabyte-long name or id (a 1 MB id came back whole in a
    404, a 1 MB feature name twice in a 400), its middle is left out and counted, and its start and end, which say what
    is wrong, are kept, so no answer is larger than what it must say."""
    if len(text) <= 2 * QUOTED + 60:
        return text
    return f"{text[:QUOTED]} [... {len(text) - 2 * QUOTED:,} characters left out ...] {text[-QUOTED:]}"


def error_body(request_id: str, code: str, message: str, details: list[FieldError] | None = None, total: int = 0) -> dict[str, Any]:
    """Every refusal's body: its code, its message and the fields at fault, each bounded (whatever route or check wrote
    them, a value the caller sent is quoted at most QUOTED characters long)."""
    error: dict[str, Any] = {"code": code, "message": bounded(message)}
    if details:
        error["details"] = [{"field": bounded(d.field), "message": bounded(d.message)} for d in details]
        if total > len(details):
            error["details_total"] = total  # only the first MAX_DETAILS are listed
    return {"error": error, "request_id": request_id}


def handle(event: dict[str, Any], lambda_request_id: str, deps: Deps) -> dict[str, Any]:
    started = time.perf_counter()
    context = event.get("requestContext") or {}
    request_id = context.get("requestId") or lambda_request_id
    method = event.get("httpMethod", "")
    route = event.get("resource") or event.get("path") or ""
    path = event.get("path") or ""
    req = Request(event=event, request_id=request_id, lambda_request_id=lambda_request_id)
    if hasattr(deps.logger, "append_keys"):  # predictor.logs: every line of this request, the model store's too, names it
        deps.logger.append_keys(request_id=request_id)
    code = "ok"
    try:
        if method == "OPTIONS":
            reply = Reply(204, None)
        elif len(path) > 1 and path.endswith("/"):  # "/predictions/" is not "/predictions"
            raise Unknown("not_found", f"no route {method} {path}")
        elif (method, route) in ROUTES:
            reply = ROUTES[(method, route)](req, PredictionService(deps))
        elif route in _PATHS:
            raise NotAllowed("method_not_allowed", f"{method} is not allowed on {route}")
        else:
            raise Unknown("not_found", f"no route {method} {route}")
    except Exception as err:
        status, code = status_of(err)
        if code in ("record_failed", "internal_error"):  # ours to look at: the traceback goes to the log, never to the caller
            deps.logger.exception("prediction not recorded" if code == "record_failed" else "unhandled error", extra={"request_id": request_id})
        details = err.details if isinstance(err, Refused) else None
        reply = Reply(status, error_body(request_id, code, _words(err, code), details, err.total if isinstance(err, Refused) else 0),
                      getattr(err, "model_version", None))  # once a model answered, it counts against that model
    latency_ms = (time.perf_counter() - started) * 1000
    deps.metrics.publish(deps.metrics.request(route, reply.status, latency_ms, None if code == "ok" else code, reply.model_version,
                                              reply.model_ms) + reply.metrics)
    deps.logger.info(
        "request",
        extra={
            "request_id": request_id,
            "lambda_request_id": lambda_request_id,
            "method": method,
            "route": route,
            "status": reply.status,
            "outcome": code,
            "model_version": reply.model_version,
            "records": reply.records,
            "latency_ms": round(latency_ms, 3),
        },
    )
    headers = _headers(deps.settings, request_id)
    if reply.status == 405:  # RFC 9110: say what the resource does allow
        headers["Allow"] = ", ".join(sorted({m for m, p in ROUTES if p == route} | {"OPTIONS"}))
    return {
        "statusCode": reply.status,
        "headers": headers,
        "body": "" if reply.body is None else json.dumps(reply.body),
    }

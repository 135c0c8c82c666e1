"""Routing and request handling, free of Lambda wiring so tests can pass their own collaborators."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from predictor.config import Settings
from predictor.metrics import Metrics
from predictor.model_store import LoadedModel, ModelStore, ModelUnavailable
from predictor.records import BadToken, Conflict, NotFound, PredictionReader, PredictionRecorder, RecordTooLarge, RecordWriteError, iso
from sommelier_contract import layout
from sommelier_contract.records import FieldError, json_type, to_matrix

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
MAX_DETAILS = 100  # field errors listed in one response (the total is given too): an error body stays small
OPENAPI_FILE = Path(__file__).with_name("openapi.json")
_PUBLIC_RECORD = ("prediction_id", "request_id", "created_at", "model_version", "label", "confidence", "probabilities",
                  "input", "latency_ms", "batch_size", "batch_index", "feedback")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[FieldError] | None = None, total: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = (details or [])[:MAX_DETAILS]
        self.total = total if total is not None else len(details or [])


@dataclass
class Deps:
    settings: Settings
    store: ModelStore
    recorder: PredictionRecorder
    reader: PredictionReader
    s3: Any
    metrics: Metrics
    logger: Any
    clock: Callable[[], float] = time.time
    draw: Callable[[], float] = random.random  # which model answers a prediction when a candidate is on trial


def build_deps(settings: Settings, logger: Any, **overrides: Any) -> Deps:
    """The one place the predictor's collaborators are made: the handler (once per cold start), the unit tests
    (under moto, passing a clock or a logger of their own) and the bench all call it. Clients come from boto3,
    so the environment decides where they point (AWS_ENDPOINT_URL)."""
    import boto3
    from botocore.config import Config

    from predictor.metrics import Metrics
    from predictor.model_store import ModelStore
    from sommelier_contract.artifacts import Signatures

    s3 = boto3.client("s3")
    # Items are built by our own code; botocore's client-side validation of 1000-record batches was a
    # third of the batch latency (make bench profile), and DynamoDB validates again anyway.
    dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False, max_pool_connections=16))
    parts: dict[str, Any] = {
        "settings": settings,
        "store": ModelStore(s3, settings.model_bucket, settings.champion_refresh_seconds,
                            Signatures(boto3.client("kms"), settings.model_signing_key)),
        "recorder": PredictionRecorder(dynamodb, settings.predictions_table, settings.prediction_ttl_days),
        "reader": PredictionReader(dynamodb, settings.predictions_table),
        "s3": s3,
        # metrics are best effort: short timeouts, no retries, so they cannot slow a request much
        "metrics": Metrics(boto3.client("cloudwatch", config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})),
                           settings.metrics_namespace, settings.low_confidence_threshold, settings.metrics_sink),
        "logger": logger,
    }
    return Deps(**{**parts, **overrides})


@dataclass
class Request:
    event: dict[str, Any]
    request_id: str
    lambda_request_id: str
    deps: Deps
    model_version: str | None = None
    records: int = 0
    metric_data: list[dict[str, Any]] = field(default_factory=list)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid JSON number")


def parse_body(event: dict[str, Any]) -> Any:
    raw = event.get("body")
    if raw is None or raw == "":
        raise ApiError(400, "empty_body", 'the request body is empty; send a JSON object such as {"features": {...}}')
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8", errors="replace")
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from err
    except ValueError as err:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {err}") from err
    except RecursionError as err:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from err


def extract_records(body: Any, model: LoadedModel, max_batch: int) -> tuple[list[dict[str, Any]], bool]:
    """The records to predict and whether the request was a single record."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", f'the body must be a JSON object with "features" or "instances", got {json_type(body)}')
    unknown = sorted(set(body) - {"features", "instances"})
    if unknown:
        details = [FieldError(k, 'is not allowed; send "features" (one record) or "instances" (a batch)') for k in unknown]
        raise ApiError(400, "validation_error", f"unknown field {unknown[0]!r} in the body", details)
    if ("features" in body) == ("instances" in body):
        raise ApiError(400, "validation_error", 'send exactly one of "features" (one record) or "instances" (a batch)')
    if "features" in body:
        records, single, prefix = [body["features"]], True, "features"
    else:
        records, single = body["instances"], False
        if not isinstance(records, list) or not records:
            raise ApiError(400, "validation_error", '"instances" must be a non-empty array of records',
                           [FieldError("instances", f"must be a non-empty array, got {json_type(records)}")])
        if len(records) > max_batch:
            raise ApiError(413, "batch_too_large", f"a batch holds at most {max_batch} records, got {len(records)}")
    errors: list[FieldError] = []
    total = 0
    for i, record in enumerate(records):
        found = model.validator.errors(record, prefix if single else f"instances[{i}]")
        total += len(found)
        errors.extend(found[: MAX_DETAILS - len(errors)])
    if errors:
        first = errors[0]
        summary = f"{first.field} {first.message}" + (f" (and {total - 1} more problems)" if total > 1 else "")
        raise ApiError(400, "validation_error", summary, errors, total)
    return records, single


def _flag(req: Request, allowed: set[str], name: str) -> bool:
    """A true/false query parameter; unknown parameters are refused by name."""
    params = req.event.get("queryStringParameters") or {}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ApiError(400, "validation_error", f"unknown query parameter {unknown[0]!r}",
                       [FieldError(u, f"is not a query parameter of this route; it takes {', '.join(sorted(allowed))}") for u in unknown])
    raw = params.get(name, "false").lower()
    if raw not in {"true", "false", "1", "0"}:
        raise ApiError(400, "validation_error", f"{name} must be true or false, got {params[name]!r}", [FieldError(name, "must be true or false")])
    return raw in {"true", "1"}


def predict(req: Request) -> tuple[int, dict[str, Any]]:
    deps = req.deps
    wants_explanation = _flag(req, {"explain"}, "explain")
    body = parse_body(req.event)
    model = deps.store.for_prediction(deps.draw())
    req.model_version = model.version
    records, single = extract_records(body, model, deps.settings.max_batch)
    req.records = len(records)
    started = time.perf_counter()
    X = to_matrix(records, model.features)
    predictions = model.predict(X)
    predict_ms = (time.perf_counter() - started) * 1000
    if wants_explanation:
        from sommelier_contract.explain import explain  # deferred: most requests never ask

        explanations = explain(model.pipeline, model.features, X, [model.labels.index(p["label"]) for p in predictions])
    try:
        ids = deps.recorder.write(caller=caller(req), model_version=model.version, now=deps.clock(), predictions=predictions,
                                  inputs=records, context={"request_id": req.request_id, "lambda_request_id": req.lambda_request_id,
                                                           "latency_ms": round(predict_ms, 3)})
    except RecordTooLarge as err:
        where = "features" if single else f"instances[{err.index}]"
        raise ApiError(413, "record_too_large", f"{where}: {err}", [FieldError(where, str(err))]) from err
    results = [{"prediction_id": i, **p, **({"explanation": explanations[n]} if wants_explanation else {})}
               for n, (i, p) in enumerate(zip(ids, predictions, strict=True))]
    req.metric_data += deps.metrics.predictions(model.version, results, records, model.manifest.get("segments", []))
    if deps.store.degraded:  # answered by an earlier champion because the promoted one was refused
        req.metric_data += [{"MetricName": "ServedByFallback", "Dimensions": [{"Name": "ModelVersion", "Value": model.version}],
                             "Unit": "Count", "Value": float(len(results))}]
    if single:
        return 200, {"request_id": req.request_id, "model_version": model.version, **results[0]}
    return 200, {"request_id": req.request_id, "model_version": model.version, "count": len(results), "predictions": results}


def health(req: Request) -> tuple[int, dict[str, Any]]:
    """Loads the champion when no model is loaded yet, so /health tells whether predictions would work."""
    try:
        version = req.model_version = req.deps.store.current().version
    except ModelUnavailable as err:
        return 200, {"status": "degraded", "model_version": None, "reason": str(err)}
    if req.deps.store.degraded:
        return 200, {"status": "degraded", "model_version": version, "reason": req.deps.store.degraded}
    return 200, {"status": "ok", "model_version": version}


def public_record(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in _PUBLIC_RECORD if k in record}


def caller(req: Request) -> str | None:
    """Whose data the request may see: the id of the API key API Gateway authenticated it with. An event
    without one (MiniStack 1.5 leaves `identity.apiKeyId` out) is known by a hash of the key it validated;
    the key itself is never stored or logged."""
    identity = (req.event.get("requestContext") or {}).get("identity") or {}
    if identity.get("apiKeyId"):
        return identity["apiKeyId"]
    key = next((v for k, v in (req.event.get("headers") or {}).items() if k.lower() == "x-api-key" and v), None)
    return f"key-sha256:{hashlib.sha256(key.encode()).hexdigest()[:24]}" if key else None


def _prediction(req: Request, prediction_id: str) -> dict[str, Any]:
    """The caller's stored prediction, or a 404 naming the id (another key's predictions do not exist for it)."""
    try:
        return req.deps.reader.get(prediction_id, caller(req))
    except NotFound as err:
        raise ApiError(404, "prediction_not_found", f"no prediction with id {prediction_id!r}") from err


def get_prediction(req: Request) -> tuple[int, dict[str, Any]]:
    record = _prediction(req, (req.event.get("pathParameters") or {}).get("id", ""))
    return 200, {"request_id": req.request_id, "prediction": public_record(record)}


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
        raise ApiError(400, "validation_error", f"{name} must be an ISO 8601 timestamp such as 2026-11-22T10:00:00Z, got {raw!r}",
                       [FieldError(name, "must be an ISO 8601 timestamp between years 1 and 9999 in UTC")]) from err


def list_predictions(req: Request) -> tuple[int, dict[str, Any]]:
    params = req.event.get("queryStringParameters") or {}
    unknown = sorted(set(params) - {"limit", "next_token", "model_version", "since", "until"})
    if unknown:
        raise ApiError(400, "validation_error", f"unknown query parameter {unknown[0]!r}",
                       [FieldError(u, "is not a query parameter of GET /predictions") for u in unknown])
    raw_limit = params.get("limit", "20")
    if not re.fullmatch(r"[0-9]{1,3}", raw_limit) or not 1 <= int(raw_limit) <= 100:  # ASCII digits only: int() refuses "²"
        raise ApiError(400, "validation_error", f"limit must be a whole number from 1 to 100, got {raw_limit!r}",
                       [FieldError("limit", "must be a whole number from 1 to 100")])
    since, until = _timestamp(params, "since"), _timestamp(params, "until")
    if since and until and since > until:
        raise ApiError(400, "validation_error", f"since ({since}) is later than until ({until})",
                       [FieldError("since", "must not be later than until")])
    version = params.get("model_version")
    if version is not None and not 1 <= len(version.encode()) <= 1024:
        raise ApiError(400, "validation_error", "model_version must be 1 to 1024 bytes", [FieldError("model_version", "must be 1 to 1024 bytes")])
    now = datetime.fromtimestamp(req.deps.clock(), tz=UTC)
    try:
        items, token = req.deps.reader.history(caller(req), int(raw_limit), params.get("next_token"), version, since, until,
                                               now.date(), math.ceil(req.deps.settings.prediction_ttl_days))
    except BadToken as err:
        raise ApiError(400, "validation_error", str(err), [FieldError("next_token", str(err))]) from err
    return 200, {"request_id": req.request_id, "predictions": [public_record(i) for i in items], "next_token": token}


def feedback(req: Request) -> tuple[int, dict[str, Any]]:
    body = parse_body(req.event)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", f'the body must be a JSON object with "prediction_id" and "label", got {json_type(body)}')
    problems = [FieldError(k, "is required") for k in ("prediction_id", "label") if k not in body]
    problems += [FieldError(k, f"must be a string, got {json_type(body[k])}") for k in ("prediction_id", "label")
                 if k in body and not isinstance(body[k], str)]
    problems += [FieldError(k, "is not allowed; send prediction_id and label") for k in sorted(set(body) - {"prediction_id", "label"})]
    if problems:
        raise ApiError(400, "validation_error", f"{problems[0].field} {problems[0].message}", problems)
    record = _prediction(req, body["prediction_id"])
    classes = sorted(record["probabilities"])
    if body["label"] not in classes:
        raise ApiError(400, "validation_error", f"label {body['label']!r} is not a class of model {record['model_version']}",
                       [FieldError("label", f"must be one of {', '.join(classes)}")])
    if "feedback" in record:
        raise ApiError(409, "feedback_exists", f"feedback for {body['prediction_id']} was already given: {record['feedback']['label']!r}")
    now = iso(req.deps.clock())
    settings = req.deps.settings
    # filed under the dataset of the model that made the prediction: that dataset's next training learns from it
    manifest = req.deps.store.manifest_of(record["model_version"]) or {}
    prefix = ((manifest.get("dataset") or {}).get("prefix") or settings.dataset_prefix).strip("/")
    key = layout.feedback_key(prefix, record["created_at"], record["prediction_id"])
    labelled = {"prediction_id": record["prediction_id"], "features": record["input"], "label": body["label"],
                "predicted_label": record["label"], "model_version": record["model_version"], "received_at": now}
    # The labelled row is written only if none exists (the first writer wins, so S3 and the record never disagree),
    # then the flag on the record. A retry after a crash between the two finds its own row and completes.
    written = _put_if_absent(req.deps.s3, settings.dataset_bucket, key, labelled)
    if written["label"] != body["label"]:
        raise ApiError(409, "feedback_exists", f"feedback for {body['prediction_id']} was already given: {written['label']!r}")
    entry = {"label": body["label"], "correct": body["label"] == record["label"], "received_at": written["received_at"], "object_key": key}
    try:
        req.deps.reader.add_feedback(record["prediction_id"], entry)
    except Conflict as err:
        # The record has another label: the row in S3 follows the record (a store whose conditional write is not atomic
        # could have let this request's row land after the winner's; AWS S3's is, so this rewrite is only a safety net).
        recorded = (req.deps.reader.get(record["prediction_id"], caller(req)).get("feedback") or {}).get("label")
        if recorded and recorded != body["label"]:
            req.deps.s3.put_object(Bucket=settings.dataset_bucket, Key=key, ContentType="application/json",
                                   Body=json.dumps({**labelled, "label": recorded, "received_at": now}).encode())
        raise ApiError(409, "feedback_exists", f"feedback for {body['prediction_id']} was already given") from err
    segments = manifest.get("segments", [])
    req.metric_data += req.deps.metrics.feedback(record["model_version"], entry["correct"], record["input"], segments)
    return 201, {"request_id": req.request_id, "prediction_id": record["prediction_id"], "feedback": entry}


def _put_if_absent(s3, bucket: str, key: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Write `doc` at `key` unless an object is there; returns what is there afterwards."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc).encode(), ContentType="application/json", IfNoneMatch="*")
        return doc
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code == "ConditionalRequestConflict":  # another request is writing it right now
            raise ApiError(409, "feedback_exists", f"feedback for {doc['prediction_id']} is being given by another request") from err
        if code not in {"PreconditionFailed", "412"}:
            raise
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def model_info(req: Request) -> tuple[int, dict[str, Any]]:
    model = req.deps.store.current()
    m = model.manifest
    example = {f["name"]: f["example"] for f in m["features"] if "example" in f}
    return 200, {
        "request_id": req.request_id,
        "version": model.version,
        "created_at": m.get("created_at"),
        "trigger": m.get("trigger"),
        "model": {k: m.get("model", {}).get(k) for k in ("name", "family")},
        "classes": m["classes"],
        "target": m.get("target"),
        "features": m["features"],
        "segments": m.get("segments", []),
        "example": example if len(example) == len(m["features"]) else None,
        "metrics": {"holdout": m.get("metrics", {}).get("holdout"),
                    "cv": {n: {k: r[k] for k in ("family", "f1_macro_mean", "f1_macro_std", "accuracy_mean", "seconds", "skipped") if k in r}
                           for n, r in m.get("metrics", {}).get("cv", {}).items()}},
        "gate": m.get("gate"),
        "importances": m.get("importances"),
        "dataset": {k: (m.get("dataset") or {}).get(k) for k in ("name", "version", "rows")},
        "description": (m.get("spec") or {}).get("description"),
        "libraries": m.get("libraries"),
        "serving": {**(m.get("serving") or {}), "runtime": model.runtime},  # what this worker answers with
    }


def openapi(req: Request) -> tuple[int, dict[str, Any]]:
    """The document, with the promoted model's own record schema as `Features` when one is served: what
    POST /predict accepts, exactly (the file in the repo describes any model)."""
    doc = json.loads(OPENAPI_FILE.read_text())
    try:
        model = req.deps.store.current()
    except ModelUnavailable:
        return 200, doc
    doc["components"]["schemas"]["Features"] = {**model.validator.schema, "description": f"a record for model {model.version}"}
    doc["info"]["x-model-version"] = model.version
    return 200, doc


ROUTES: dict[tuple[str, str], Callable[[Request], tuple[int, dict[str, Any]]]] = {
    ("POST", "/predict"): predict,
    ("GET", "/predictions"): list_predictions,
    ("GET", "/predictions/{id}"): get_prediction,
    ("POST", "/feedback"): feedback,
    ("GET", "/model"): model_info,
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


def error_body(request_id: str, code: str, message: str, details: list[FieldError] | None = None, total: int = 0) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = [d.as_dict() for d in details]
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
    req = Request(event=event, request_id=request_id, lambda_request_id=lambda_request_id, deps=deps)
    if hasattr(deps.logger, "append_keys"):  # Powertools: every line of this request, the model store's too, names it
        deps.logger.append_keys(request_id=request_id)
    code = "ok"
    try:
        if method == "OPTIONS":
            status, body = 204, None
        elif len(path) > 1 and path.endswith("/"):  # "/predictions/" is not "/predictions"
            raise ApiError(404, "not_found", f"no route {method} {path}")
        elif (method, route) in ROUTES:
            status, body = ROUTES[(method, route)](req)
        elif route in _PATHS:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {route}")
        else:
            raise ApiError(404, "not_found", f"no route {method} {route}")
    except ApiError as err:
        status, code = err.status, err.code
        body = error_body(request_id, err.code, err.message, err.details, err.total)
    except ModelUnavailable as err:
        status, code = 503, "no_model"
        body = error_body(request_id, code, str(err))
    except RecordWriteError as err:
        deps.logger.exception("prediction not recorded", extra={"request_id": request_id})
        status, code = 503, "record_failed"
        body = error_body(request_id, code, f"the prediction could not be recorded, so it was not returned: {err}")
    except Exception:
        deps.logger.exception("unhandled error", extra={"request_id": request_id})
        status, code = 500, "internal_error"
        body = error_body(request_id, code, "internal error; quote the request id when reporting it")
    latency_ms = (time.perf_counter() - started) * 1000
    deps.metrics.publish(deps.metrics.request(route, status, latency_ms, None if code == "ok" else code, req.model_version)
                         + req.metric_data)
    deps.logger.info(
        "request",
        extra={
            "request_id": request_id,
            "lambda_request_id": lambda_request_id,
            "method": method,
            "route": route,
            "status": status,
            "outcome": code,
            "model_version": req.model_version,
            "records": req.records,
            "latency_ms": round(latency_ms, 3),
        },
    )
    headers = _headers(deps.settings, request_id)
    if status == 405:  # RFC 9110: say what the resource does allow
        headers["Allow"] = ", ".join(sorted({m for m, p in ROUTES if p == route} | {"OPTIONS"}))
    return {
        "statusCode": status,
        "headers": headers,
        "body": "" if body is None else json.dumps(body),
    }

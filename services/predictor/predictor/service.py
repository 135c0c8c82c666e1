"""The prediction service: what a request does with the stores, with every collaborator passed in (Deps, made by
build_deps): predict (serving.py's four steps, driven from here, with the record between predict and encode), read,
list, feedback and the model card. It knows nothing of HTTP: it raises the kinds of refusal serving.py defines
(Invalid, Unknown, Conflicting, ...), and the routes (api.py) turn a request into calls here and the result, or what
was raised, into a response. What it returns carries the metric data the call produced; nothing is collected behind
the caller's back.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from predictor import document, serving
from predictor.config import Settings
from predictor.metrics import Metrics
from predictor.model_store import ModelStore, ModelUnavailable
from predictor.records import NO_KEY, BadToken, Conflict, FeedbackStore, NotFound, PredictionReader, PredictionRecorder, RecordTooLarge, iso
from predictor.reports import CallerReports
from predictor.serving import Conflicting, Invalid, TooLarge, Unavailable, Unknown
from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected
from sommelier_contract.metric_names import Metric
from sommelier_contract.records import FieldError

if TYPE_CHECKING:
    from sommelier_contract.monitoring import Report


@dataclass
class Deps:
    settings: Settings
    store: ModelStore
    recorder: PredictionRecorder
    reader: PredictionReader
    feedback: FeedbackStore
    metrics: Metrics
    logger: Any
    reports: CallerReports | None = None  # None: no report signing key configured, so no monitoring route
    clock: Callable[[], float] = time.time
    draw: Callable[[], float] = random.random  # which model answers a prediction when a candidate is on trial
    clients: tuple[Any, ...] = ()  # the botocore clients above, whose connections a snapshot must not carry (handler.py)


def build_deps(settings: Settings, logger: Any, **overrides: Any) -> Deps:
    """The one place the predictor's collaborators are made: the handler (once per cold start), the unit tests
    (under moto, passing a clock or a logger of their own) and the bench all call it. Clients come from botocore, so
    the environment decides where they point (AWS_ENDPOINT_URL); not boto3, whose session layer only adds imports
    (~80 ms of a cold start, issue 39). One session, so the clients share its loaded service models and credentials."""
    from botocore.config import Config
    from botocore.session import get_session

    from sommelier_contract.artifacts import Signatures

    session = get_session()
    s3 = session.create_client("s3")
    kms = session.create_client("kms")
    # Items are built by our own code; botocore's client-side validation of 1000-record batches was a
    # third of the batch latency (make bench profile), and DynamoDB validates again anyway.
    dynamodb = session.create_client("dynamodb", config=Config(parameter_validation=False, max_pool_connections=16))
    cloudwatch = session.create_client("cloudwatch", config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}))
    parts: dict[str, Any] = {
        "settings": settings,
        "store": ModelStore(s3, settings.model_bucket, settings.champion_refresh_seconds, Signatures(kms, settings.model_signing_key)),
        "recorder": PredictionRecorder(dynamodb, settings.predictions_table, settings.prediction_ttl_days),
        "reader": PredictionReader(dynamodb, settings.predictions_table),
        "feedback": FeedbackStore(s3, settings.dataset_bucket),
        # metrics are best effort: short timeouts, no retries, so they cannot slow a request much
        "metrics": Metrics(cloudwatch, settings.metrics_namespace, settings.low_confidence_threshold, settings.metrics_sink),
        "logger": logger,
        "reports": CallerReports(s3, settings.model_bucket, Signatures(kms, settings.report_signing_key, subject="monitoring report",
                                                                        signer="the monitor's key")) if settings.report_signing_key else None,
        "clients": (s3, kms, dynamodb, cloudwatch),
    }
    return Deps(**{**parts, **overrides})


@dataclass
class Predicted:
    model_version: str
    answer: dict[str, Any]  # the response's body
    records: int
    model_ms: float  # from the model's choice to the answer
    metrics: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryQuery:
    limit: int = 20
    next_token: str | None = None
    model_version: str | None = None
    since: str | None = None  # ISO timestamps, normalised to UTC milliseconds
    until: str | None = None


class PredictionService:
    def __init__(self, deps: Deps):
        self.deps = deps

    def predict(self, body: Any, caller: str | None, context: dict[str, Any], explain: bool = False) -> Predicted:
        """serving.py's four steps in order, and the record between predict and encode: the model that answers, the
        body's records decoded for it, their predictions, each recorded, the answer. Nothing is returned that was not
        recorded (a failed write raises RecordWriteError). Whatever is raised once a model answers names it
        (`model_version` on the exception): the refusal or failure counts against that model (a canary's 5xx rate)."""
        deps = self.deps
        model = serving.load(deps.store, deps.draw)  # may load a newly promoted model: not its serving time
        chosen = time.perf_counter()
        try:
            batch = serving.decode(body, model, deps.settings.max_batch)
            scored = serving.predict(model, batch, explain)
            try:
                ids = deps.recorder.write(caller=caller, model_version=model.version, now=deps.clock(), predictions=scored.predictions,
                                          inputs=batch.records, context={**context, "latency_ms": round(scored.predict_ms, 3)})
            except RecordTooLarge as err:
                where = "features" if batch.single else f"instances[{err.index}]"
                raise TooLarge("record_too_large", f"{where}: {err}", [FieldError(where, str(err))]) from err
        except Exception as err:
            err.model_version = model.version  # type: ignore[attr-defined]
            raise
        results = serving.results(ids, scored)
        answer = serving.encode({"request_id": context["request_id"], "model_version": model.version}, batch, results)
        metrics = deps.metrics.predictions(model.version, results, batch.records, model.manifest.segments)
        if deps.store.degraded:  # answered by an earlier champion because the promoted one was refused
            metrics += [{"MetricName": Metric.SERVED_BY_FALLBACK, "Dimensions": [{"Name": "ModelVersion", "Value": model.version}],
                         "Unit": "Count", "Value": float(len(results))}]
        return Predicted(model.version, answer, len(batch.records), (time.perf_counter() - chosen) * 1000, metrics)

    def prediction(self, caller: str | None, prediction_id: str) -> dict[str, Any]:
        """The caller's stored prediction, or a 404 naming the id (another key's predictions do not exist for it)."""
        try:
            return self.deps.reader.get(prediction_id, caller)
        except NotFound as err:
            raise Unknown("prediction_not_found", f"no prediction with id {prediction_id!r}") from err

    def history(self, caller: str | None, query: HistoryQuery) -> tuple[list[dict[str, Any]], str | None]:
        today: date = datetime.fromtimestamp(self.deps.clock(), tz=UTC).date()
        try:
            return self.deps.reader.history(caller, query.limit, query.next_token, query.model_version, query.since, query.until,
                                            today, math.ceil(self.deps.settings.prediction_ttl_days))
        except BadToken as err:
            raise Invalid("validation_error", str(err), [FieldError("next_token", str(err))]) from err

    def feedback(self, caller: str | None, prediction_id: str, label: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Label a prediction: the labelled row goes to the dataset of the model that made it (its next training learns
        from it), then the flag on the record. The first label wins, in S3 and on the record alike."""
        deps = self.deps
        record = self.prediction(caller, prediction_id)
        classes = sorted(record["probabilities"])
        if label not in classes:
            raise Invalid("validation_error", f"label {label!r} is not a class of model {record['model_version']}",
                           [FieldError("label", f"must be one of {', '.join(classes)}")])
        if "feedback" in record:
            raise Conflicting("feedback_exists", f"feedback for {prediction_id} was already given: {record['feedback']['label']!r}")
        manifest = deps.store.manifest_of(record["model_version"])
        prefix = ((manifest and manifest.dataset.prefix) or deps.settings.dataset_prefix).strip("/")
        key = layout.feedback_key(prefix, record["created_at"], record["prediction_id"])
        now = iso(deps.clock())
        # who sent it (the API key's id, never the key) and how sure the model was: the trainer screens feedback with them
        labelled = {"prediction_id": record["prediction_id"], "features": record["input"], "label": label,
                    "predicted_label": record["label"], "confidence": record["confidence"], "caller": caller or "none",
                    "model_version": record["model_version"], "received_at": now}
        # A retry after a crash between the two writes finds its own row and completes.
        written = deps.feedback.put_if_absent(key, labelled)
        if written is None:
            raise Conflicting("feedback_exists", f"feedback for {prediction_id} is being given by another request")
        if written["label"] != label:
            raise Conflicting("feedback_exists", f"feedback for {prediction_id} was already given: {written['label']!r}")
        entry = {"label": label, "correct": label == record["label"], "received_at": written["received_at"], "object_key": key}
        try:
            deps.reader.add_feedback(record["prediction_id"], entry)
        except Conflict as err:
            # The record has another label: the row in S3 follows the record (a store whose conditional write is not atomic
            # could have let this request's row land after the winner's; AWS S3's is, so this rewrite is only a safety net).
            recorded = (deps.reader.get(record["prediction_id"], caller).get("feedback") or {}).get("label")
            if recorded and recorded != label:
                deps.feedback.put(key, {**labelled, "label": recorded, "received_at": now})
            raise Conflicting("feedback_exists", f"feedback for {prediction_id} was already given") from err
        return entry, deps.metrics.feedback(record["model_version"], entry["correct"], record["input"], manifest.segments if manifest else [])

    def health(self) -> dict[str, Any]:
        """Loads the champion when no model is loaded yet, so /health tells whether predictions would work; degraded while
        the last prediction this worker was asked for could not be recorded (until one is)."""
        settings = self.deps.settings
        package = {"type": settings.package, **({"image_tag": settings.image_tag} if settings.image_tag else {})}
        try:
            version = self.deps.store.current().version
        except ModelUnavailable as err:
            return {"status": "degraded", "model_version": None, "reason": str(err), "package": package}
        if self.deps.store.degraded:
            return {"status": "degraded", "model_version": version, "reason": self.deps.store.degraded, "package": package}
        if self.deps.recorder.failing:  # this worker's last write failed (a full disk, a table gone): not a free-space guess
            return {"status": "degraded", "model_version": version, "reason": self.deps.recorder.failing, "package": package}
        return {"status": "ok", "model_version": version, "package": package}

    def monitoring(self, caller: str | None) -> tuple[Report | None, str]:
        """The caller's own monitoring report of the latest pass (its public view) and its verdict in words, or None and
        why there is none."""
        reports = self.deps.reports
        if reports is None:
            raise Unknown("monitoring_not_configured", "model monitoring is not configured for this API (no REPORT_SIGNING_KEY)")
        try:
            return reports.read(caller or NO_KEY)
        except ArtifactRejected as err:
            self.deps.logger.exception("monitoring report refused")
            raise Unavailable("report_refused", f"the latest monitoring report cannot be shown: {err}") from err

    def model_card(self) -> dict[str, Any]:
        model = self.deps.store.current()
        card = model.manifest.card()
        return {**card, "serving": {**card["serving"], "runtime": model.runtime}}  # what this worker answers with

    def openapi(self) -> dict[str, Any]:
        """The document, with the promoted model's own record schema as `Features` and its classes named beside the label
        POST /feedback takes, when one is served (the file in the repo describes any model)."""
        doc = document.fresh()
        try:
            model = self.deps.store.current()
        except ModelUnavailable:
            return doc
        doc["components"]["schemas"]["Features"] = {**model.validator.schema, "description": f"a record for model {model.version}"}
        doc["info"]["x-model-version"] = model.version
        # a label is checked, on the server, against the classes of the model that made the prediction (an earlier
        # champion's too), so the document does not enumerate today's: it names them, as an example
        label = doc["components"]["schemas"]["FeedbackRequest"]["properties"]["label"]
        label["description"] += f" (checked against that model's classes; model {model.version}'s: {', '.join(model.labels)})"
        return doc

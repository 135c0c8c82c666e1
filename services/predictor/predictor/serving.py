"""Serving a prediction as four steps with one job each: load the model that answers, decode and validate the
records for it, predict, encode the answer. Routing and the HTTP shape sit outside them (api.py calls them in
order), and so does keeping what was predicted (service.py records it between predict and encode).

A step that refuses raises a Refused of its kind (Invalid, TooLarge, ...): the documented error's code, message and the
fields at fault, without anything of HTTP in it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.model_store import LoadedModel, ModelStore
from sommelier_contract.records import FieldError, json_type, to_matrix, unusual, went_without

MAX_DETAILS = 100  # field errors listed in one response (the total is given too): an error body stays small


class Refused(Exception):
    """A request the API turns down, in the documented error's words: a code, a message, the fields at fault (and how
    many there were). What kind of refusal it is is its class below; the routes give each kind its HTTP status in one
    table (api.STATUS), so nothing here or in the service knows HTTP."""

    def __init__(self, code: str, message: str, details: list[FieldError] | None = None, total: int | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.details = (details or [])[:MAX_DETAILS]
        self.total = total if total is not None else len(details or [])


class Invalid(Refused):
    """The request is malformed: a body, a query parameter or a record the API does not take."""


class Unknown(Refused):
    """What the request names does not exist (for its caller: another key's predictions do not)."""


class NotAllowed(Refused):
    """The route exists, the method does not."""


class Conflicting(Refused):
    """It contradicts what is already stored (a second label for a prediction)."""


class TooLarge(Refused):
    """More than the API takes at once (a batch, a body, a record)."""


class Unavailable(Refused):
    """What it needs cannot be had now (a report that does not verify): another time it may."""


def invalid(errors: list[FieldError], total: int | None = None, said: str = "") -> Invalid:
    """The refusal for field errors: the first in the message (`said` adds to it), how many more, every one listed."""
    total = len(errors) if total is None else total
    first = errors[0]
    more = f" (and {total - 1} more problem{'s' if total > 2 else ''})" if total > 1 else ""
    return Invalid("validation_error", f"{first.field} {first.message}{said}{more}", errors, total)


# -- 1. load -------------------------------------------------------------------------------------------------------

def load(store: ModelStore, draw: Callable[[], float]) -> LoadedModel:
    """The model that answers the next prediction: the champion, or the candidate for its share of draws
    (the store verifies and swaps models; a refused new one never replaces the one being served)."""
    return store.for_prediction(draw())


# -- 2. decode and validate ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """The records of one request, valid for the model that answers it."""

    records: list[dict[str, Any]]
    single: bool  # sent as one record ("features"), answered as one


def decode(body: Any, model: LoadedModel, max_batch: int) -> Batch:
    """The records a decoded JSON body asks about, each checked against the model's record schema; every field at
    fault is named (instances[3].alcohol ...), up to MAX_DETAILS of them."""
    if not isinstance(body, dict):
        raise Invalid("invalid_body", f'the body must be a JSON object with "features" or "instances", got {json_type(body)}')
    unknown = sorted(set(body) - {"features", "instances"})
    if unknown:
        details = [FieldError(k, 'is not allowed; send "features" (one record) or "instances" (a batch)') for k in unknown]
        raise Invalid("validation_error", f"unknown field {unknown[0]!r} in the body", details)
    if ("features" in body) == ("instances" in body):
        raise Invalid("validation_error", 'send exactly one of "features" (one record) or "instances" (a batch)')
    if "features" in body:
        records, single, prefix = [body["features"]], True, "features"
    else:
        records, single = body["instances"], False
        if not isinstance(records, list) or not records:
            raise Invalid("validation_error", '"instances" must be a non-empty array of records',
                           [FieldError("instances", f"must be a non-empty array, got {json_type(records)}")])
        if len(records) > max_batch:
            raise TooLarge("batch_too_large", f"a batch holds at most {max_batch} records, got {len(records)}")
    errors: list[FieldError] = []
    total = 0
    for i, record in enumerate(records):
        found = model.validator.errors(record, prefix if single else f"instances[{i}]")
        total += len(found)
        errors.extend(found[: MAX_DETAILS - len(errors)])
    if errors:
        raise invalid(errors, total)
    return Batch(records, single)


# -- 3. predict ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scored:
    """What the model said of each record (label, confidence, probabilities), and why when asked."""

    predictions: list[dict[str, Any]]
    explanations: list[dict[str, Any]] | None
    predict_ms: float  # the model's own time, without explanations
    unusual: list[list[dict[str, Any]]] | None = None  # per record, what lies outside the training data
    absent: list[list[str]] | None = None  # per record, the features it did not carry: the prediction went without them


def predict(model: LoadedModel, batch: Batch, explain: bool = False) -> Scored:
    started = time.perf_counter()
    X = to_matrix(batch.records, model.features)
    predictions = model.predict(X)
    predict_ms = (time.perf_counter() - started) * 1000
    explanations = None
    if explain:
        from sommelier_contract.explain import explain as explain_rows  # deferred: most requests never ask

        explanations = explain_rows(model.pipeline_here, model.features, X, np.array([model.labels.index(p["label"]) for p in predictions]),
                                    model.predict_proba)
    words, learned = model.familiarity
    return Scored(predictions, explanations, predict_ms, unusual(batch.records, model.features, X, words, learned),
                  went_without(X, model.features))


# -- 4. encode -----------------------------------------------------------------------------------------------------

def results(ids: list[str], scored: Scored) -> list[dict[str, Any]]:
    """Each prediction under the id it was recorded with, with its explanation when one was asked for, and what of its
    input lies outside the training data ("unusual") when something does, and the features it went without ("absent":
    left out, or null where the model takes that as not given) when there are any."""
    return [{"prediction_id": i, **p, **({"explanation": scored.explanations[n]} if scored.explanations is not None else {}),
             **({"unusual": scored.unusual[n]} if scored.unusual and scored.unusual[n] else {}),
             **({"absent": scored.absent[n]} if scored.absent and scored.absent[n] else {})}
            for n, (i, p) in enumerate(zip(ids, scored.predictions, strict=True))]


def encode(head: dict[str, Any], batch: Batch, answered: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer's body: one record's prediction inline, a batch's as a counted list."""
    return {**head, **answered[0]} if batch.single else {**head, "count": len(answered), "predictions": answered}

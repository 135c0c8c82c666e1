"""The serving steps on their own, without HTTP or a table: load -> decode -> predict -> encode."""

from __future__ import annotations

import pytest

from predictor import serving
from predictor.model_store import ModelStore

from .conftest import MODEL_BUCKET


def test_the_four_steps_answer_a_batch_and_a_single_record(s3, trained, signatures, example):
    model = serving.load(ModelStore(s3, MODEL_BUCKET, 30, signatures), lambda: 0.5)
    assert model.version == trained.version
    batch = serving.decode({"instances": [example, {**example, "alcohol": 14.1}]}, model, max_batch=10)
    scored = serving.predict(model, batch, explain=True)
    assert len(scored.predictions) == 2 and scored.explanations and len(scored.explanations) == 2
    answered = serving.results(["a.0", "a.1"], scored)
    body = serving.encode({"model_version": model.version}, batch, answered)
    assert body["count"] == 2 and [p["prediction_id"] for p in body["predictions"]] == ["a.0", "a.1"]
    assert body["predictions"][0]["label"] in model.labels and "explanation" in body["predictions"][0]
    one = serving.decode({"features": example}, model, max_batch=10)
    single = serving.encode({}, one, serving.results(["b.0"], serving.predict(model, one)))
    assert single["prediction_id"] == "b.0" and "explanation" not in single and "count" not in single


@pytest.mark.parametrize(("body", "status", "words"), [
    ([1], 400, 'must be a JSON object with "features" or "instances", got array'),
    ({"instances": []}, 400, '"instances" must be a non-empty array'),
    ({"instances": [{}] * 11}, 413, "a batch holds at most 10 records, got 11"),
    ({"features": {"alcohol": "strong"}}, 400, "features.alcohol must be a number or null"),
])
def test_decode_refuses_saying_what_is_wrong_where(s3, trained, signatures, body, status, words):
    model = ModelStore(s3, MODEL_BUCKET, 30, signatures).current()
    from predictor.api import status_of

    with pytest.raises(serving.Refused) as refused:
        serving.decode(body, model, max_batch=10)
    assert status_of(refused.value)[0] == status and words in refused.value.message  # the status the routes give its kind

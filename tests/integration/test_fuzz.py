"""Property-based fuzzing of the API on the running stack: whatever arrives, no 5xx, and every
error has the documented shape. Bounded in examples and time; loopback only."""

from __future__ import annotations

import json
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code < 500, resp.text[:500]
    body = resp.json()
    if resp.status_code >= 400 and resp.status_code not in (403, 429):  # those two are API Gateway's own
        assert set(body) == {"error", "request_id"} and {"code", "message"} <= set(body["error"]), body
    return body


def _values(example: dict[str, float]):
    return st.fixed_dictionaries({k: st.one_of(st.just(v), JSON) for k, v in example.items()}) | st.dictionaries(st.text(max_size=30), JSON)


@FUZZ
@given(data=st.data())
def test_predict_never_fails_on_arbitrary_bodies(stack, example, data):
    body = data.draw(st.one_of(JSON, st.fixed_dictionaries({"features": _values(example)}),
                               st.fixed_dictionaries({"instances": st.lists(_values(example), max_size=3)})))
    _check(stack.post("/predict", data=json.dumps(body)))


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_predict_never_fails_on_arbitrary_bytes(stack, raw):
    _check(requests.post(f"{stack.api_url}/predict", data=raw, headers={"x-api-key": stack.api_key}, timeout=30))


@FUZZ
@given(body=JSON | st.fixed_dictionaries({"prediction_id": JSON, "label": JSON}))
def test_feedback_never_fails(stack, body):
    _check(stack.post("/feedback", data=json.dumps(body)))


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["limit", "next_token", "model_version", "since", "until", "other"]),
                              st.text(max_size=30), max_size=4),
       pid=st.text(alphabet=st.characters(codec="ascii", exclude_characters="/?#%"), min_size=1, max_size=40))
def test_reads_never_fail(stack, params, pid):
    _check(requests.get(f"{stack.api_url}/predictions", params=params, headers={"x-api-key": stack.api_key}, timeout=30))
    _check(requests.get(f"{stack.api_url}/predictions/{pid}", headers={"x-api-key": stack.api_key}, timeout=30))

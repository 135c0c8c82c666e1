"""The prediction layout (records.py): a request's predictions in a few items, each still read by id, listed
in history across pages that cut items anywhere, and given feedback one entry at a time; unprocessed batch
writes retried; records written before the layout still served."""

import json
from datetime import date

import pytest

from predictor import records
from predictor.records import BadToken, Conflict, NotFound, PredictionReader, PredictionRecorder, RecordTooLarge, RecordWriteError
from sommelier_contract.records import RecordValidator, feedback_problem

from .test_api import TABLE, ddb  # noqa: F401  (fixture)

NOW = 1_800_000_000.0
TODAY = date(2027, 1, 15)  # the day of NOW in UTC


class FlakyDynamo:
    """Leaves the last item of every batch unprocessed for the first `failures` calls."""

    def __init__(self, failures: int):
        self.failures, self.calls, self.written = failures, 0, []

    def batch_write_item(self, RequestItems):
        (table, requests), = RequestItems.items()
        self.calls += 1
        if self.calls <= self.failures:
            self.written += requests[:-1]
            return {"UnprocessedItems": {table: requests[-1:]}}
        self.written += requests
        return {"UnprocessedItems": {}}


def _request(n: int, caller: str = "key-1", version: str = "v1", now: float = NOW, text: str = "") -> dict:
    return {"caller": caller, "model_version": version, "now": now, "context": {"request_id": f"r-{now}"},
            "predictions": [{"label": "a", "confidence": 0.9, "probabilities": {"a": 0.9, "b": 0.1}} for _ in range(n)],
            "inputs": [{"x": i, **({"notes": text} if text else {})} for i in range(n)]}


def test_a_request_is_stored_in_items_of_at_most_chunk_records_and_every_id_names_its_place():
    ids, items = PredictionRecorder(None, TABLE, 1).items(**_request(250))
    assert [len(json.loads(i["predictions"]["S"])) for i in items] == [100, 100, 50]
    assert len(set(ids)) == 250 and [int(i.rsplit(".", 1)[1]) for i in ids] == list(range(250))
    assert {i.rsplit(".", 1)[0] for i in ids} == {i["prediction_id"]["S"] for i in items}


def test_items_are_cut_by_size_too_and_a_record_too_large_to_store_is_named_by_index():
    ids, items = PredictionRecorder(None, TABLE, 1).items(**_request(30, text="x" * 40_000))
    assert len(items) > 1 and all(len(i["predictions"]["S"]) <= records.CHUNK_BYTES for i in items)
    assert sum(len(json.loads(i["predictions"]["S"])) for i in items) == len(ids) == 30
    request = _request(3)
    request["inputs"][2] = {"notes": "x" * (records.CHUNK_BYTES + 1)}
    with pytest.raises(RecordTooLarge) as err:
        PredictionRecorder(None, TABLE, 1).items(**request)
    assert err.value.index == 2


def test_unprocessed_items_are_retried_until_written():
    flaky = FlakyDynamo(failures=3)
    ids = PredictionRecorder(flaky, "t", 1).write(**_request(3000))  # 30 items: two batch calls, overlapped
    assert len(ids) == 3000
    assert sorted(r["PutRequest"]["Item"]["prediction_id"]["S"] for r in flaky.written) == sorted({i.rsplit(".", 1)[0] for i in ids})


def test_a_write_that_never_goes_through_fails_the_request():
    with pytest.raises(RecordWriteError, match="could not record 300 prediction"):
        PredictionRecorder(FlakyDynamo(failures=100), "t", 1).write(**_request(300))


def _all_pages(reader: PredictionReader, limit: int, **kw) -> list[str]:
    seen, token = [], None
    for _ in range(1000):
        page, token = reader.history("key-1", limit, token, kw.get("model_version"), None, None, TODAY, 30)
        seen += [r["prediction_id"] for r in page]
        if token is None:
            return seen
    raise AssertionError("history never ended")


@pytest.mark.parametrize("limit", [1, 7, 100])
@pytest.mark.parametrize("model_version", [None, "v1"])
def test_history_pages_cut_items_anywhere_and_list_every_prediction_once_newest_first(ddb, limit, model_version):  # noqa: F811
    recorder, reader = PredictionRecorder(ddb, TABLE, 30), PredictionReader(ddb, TABLE)
    written = []
    for n, size in enumerate((3, 150, 1, 40)):
        written = recorder.write(**_request(size, now=NOW + n))[::-1] + written  # newest request first, its last record first
    recorder.write(**_request(5, caller="key-2", now=NOW + 9))  # another key's: never listed
    if limit == 1 and model_version is None:
        assert _all_pages(reader, limit)[:3] == written[:3]
    assert _all_pages(reader, limit, model_version=model_version) == written


def test_a_prediction_is_read_by_id_and_its_feedback_is_one_entry_of_its_item(ddb):  # noqa: F811
    recorder, reader = PredictionRecorder(ddb, TABLE, 30), PredictionReader(ddb, TABLE)
    ids = recorder.write(**_request(120))
    assert reader.get(ids[117], "key-1")["input"] == {"x": 117}
    with pytest.raises(NotFound):
        reader.get(ids[117], "key-2")  # another key's prediction does not exist for it
    with pytest.raises(NotFound):
        reader.get(ids[117].rsplit(".", 1)[0] + ".120", "key-1")  # past the end of its item
    reader.add_feedback(ids[117], {"label": "b"})
    reader.add_feedback(ids[3], {"label": "a"})
    with pytest.raises(Conflict):
        reader.add_feedback(ids[117], {"label": "a"})
    assert reader.get(ids[117], "key-1")["feedback"] == {"label": "b"}
    assert "feedback" not in reader.get(ids[116], "key-1")


def test_records_of_the_layout_before_chunks_are_still_read_listed_and_given_feedback(ddb):  # noqa: F811
    legacy = {"prediction_id": {"S": "0b0e3c1e-6c7f-4a57-9a43-5d1c6a1f0001"}, "caller_key_id": {"S": "key-1"},
              "created_at": {"S": "2027-01-15T08:00:00.000Z"}, "model_version": {"S": "v0"}, "label": {"S": "a"},
              "input": {"S": '{"x":1}'}, "probabilities": {"S": '{"a":1.0}'}, "history_pk": {"S": "key-1#2027-01-15"},
              "model_pk": {"S": "key-1#v0"}, "history_sk": {"S": "2027-01-15T08:00:00.000Z|00000|0b0e"}}
    ddb.put_item(TableName=TABLE, Item=legacy)
    reader = PredictionReader(ddb, TABLE)
    record = reader.get(legacy["prediction_id"]["S"], "key-1")
    assert record["input"] == {"x": 1} and record["label"] == "a"
    assert _all_pages(reader, 10) == [legacy["prediction_id"]["S"]]
    reader.add_feedback(record["prediction_id"], {"label": "a"})
    assert reader.get(record["prediction_id"], "key-1")["feedback"] == {"label": "a"}


def test_a_token_cannot_open_another_keys_item(ddb):  # noqa: F811
    recorder, reader = PredictionRecorder(ddb, TABLE, 30), PredictionReader(ddb, TABLE)
    recorder.write(**_request(50, caller="key-2"))
    _, token = PredictionReader(ddb, TABLE).history("key-2", 10, None, "v1", None, None, TODAY, 30)
    with pytest.raises(BadToken):
        reader.history("key-1", 10, token, "v1", None, None, TODAY, 30)
    _, token = PredictionReader(ddb, TABLE).history("key-2", 10, None, None, None, None, TODAY, 30)
    with pytest.raises(BadToken):
        reader.history("key-1", 10, token, None, None, None, TODAY, 30)


def test_declared_categories_are_enforced():
    validator = RecordValidator([{"name": "variety", "type": "categorical", "categories": ["Merlot", "Syrah"]}])
    assert validator.errors({"variety": "Syrah"}, "features") == []
    (error,) = validator.errors({"variety": "Cola"}, "features")
    assert error.field == "features.variety" and error.message == "must be one of Merlot, Syrah; got 'Cola'"


@pytest.mark.parametrize(("price", "problem"), [
    (25.0, None),
    (None, None),
    (1e308, "features.price must be <= 1e+15, got 1e+308"),
    (-2e15, "features.price must be >= -1e+15, got -2000000000000000.0"),
    (float("inf"), "features.price must be <= 1e+15, got a number too large to hold (infinity)"),
    (10**400, "features.price must be <= 1e+15, got 10000000... (a number of 401 digits)"),
])
def test_feedback_with_a_number_too_large_to_train_on_is_refused_naming_the_field(price, problem):
    """1e308 as training data overflowed the scaler, every column NaN, and the run crashed (seen on a stack that
    schemathesis had sent feedback to); a record schema bounds every number (a spec without a maximum: 1e15), so
    stored feedback holding one, or infinity, or a 401-digit integer, is refused with the same words as the API's."""
    validator = RecordValidator([{"name": "price", "type": "numeric", "imputed": "median"}, {"name": "variety", "type": "categorical"}])
    doc = {"features": {"price": price, "variety": "Zinfandel"}, "label": "US"}
    assert feedback_problem(doc, validator, {"US", "Italy"}) == problem

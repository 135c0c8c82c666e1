"""Batch writes retry what DynamoDB leaves unprocessed, and fail loudly when it never goes through."""

import pytest

from predictor.records import PredictionRecorder, RecordWriteError
from sommelier_contract.records import RecordValidator


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


def _records(n):
    return [{"prediction_id": f"p{i}", "created_at": "2026-11-22T00:00:00.000Z", "batch_index": i, "label": "a",
             "model_version": "v1"} for i in range(n)]


def test_unprocessed_items_are_retried_until_written():
    ddb = FlakyDynamo(failures=3)
    PredictionRecorder(ddb, "t", 1).write(_records(30))
    assert sorted(r["PutRequest"]["Item"]["prediction_id"]["S"] for r in ddb.written) == sorted(f"p{i}" for i in range(30))


def test_a_write_that_never_goes_through_fails_the_request():
    with pytest.raises(RecordWriteError, match="could not record 30 prediction"):
        PredictionRecorder(FlakyDynamo(failures=100), "t", 1).write(_records(30))


def test_declared_categories_are_enforced():
    validator = RecordValidator([{"name": "variety", "type": "categorical", "categories": ["Merlot", "Syrah"]}])
    assert validator.errors({"variety": "Syrah"}, "features") == []
    (error,) = validator.errors({"variety": "Cola"}, "features")
    assert error.field == "features.variety" and error.message == "must be one of Merlot, Syrah; got 'Cola'"

"""Custom CloudWatch metrics, never failing a request, through one of two sinks the template chooses
(METRICS_SINK): `api`, PutMetricData calls (what the emulators turn into metrics), made by a background thread
from a bounded buffer so that no call sits on the request path (MetricBuffer: flushed on shutdown, and what it
ever has to drop is counted and logged); or `emf`, CloudWatch's embedded metric format: JSON lines on stdout that
Lambda ships with the logs and CloudWatch turns into metrics (AWS, where a frozen worker's thread would wait).

Rates are published as 0/1 values (ServerError, LowConfidence, FeedbackCorrect), so their
Average is the rate over any period: alarms and dashboards need no metric math, and the
emulator, which evaluates plain alarms only, behaves as AWS does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sommelier_contract.metric_names import Metric
from sommelier_contract.records import bucket_counts, bucket_of

log = logging.getLogger(__name__)
_MAX_VALUES = 150  # CloudWatch's limit of values in one datum


def segment_of(segment: dict[str, Any], record: dict[str, Any]) -> str | None:
    """The bucket a record falls in for one segment of the dataset spec, e.g. "12-13" or "Merlot"."""
    return bucket_of(segment, record.get(segment["feature"]))


def _datum(name: str, dims: dict[str, str], unit: str, values: list[float]) -> list[dict[str, Any]]:
    dimensions = [{"Name": k, "Value": v} for k, v in dims.items()]
    tally = Counter(values)
    items = list(tally.items())
    return [
        {"MetricName": name, "Dimensions": dimensions, "Unit": unit,
         "Values": [float(v) for v, _ in items[i:i + _MAX_VALUES]], "Counts": [float(c) for _, c in items[i:i + _MAX_VALUES]]}
        for i in range(0, len(items), _MAX_VALUES)
    ]


def emf_print(namespace: str, data: list[dict[str, Any]]) -> None:
    """PutMetricData entries printed as embedded-metric-format documents by Powertools (one metric set per dimension
    set; Powertools prints a document whenever a metric reaches 100 values, EMF's limit). Values/Counts become
    repeated values. Lambda ships stdout to CloudWatch Logs, which turns the documents into metrics."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit  # deferred: only the emf sink needs it

    groups: dict[tuple[tuple[str, str], ...], list[tuple[str, str, float]]] = {}
    for d in data:
        values = [v for v, n in zip(d["Values"], d["Counts"], strict=True) for _ in range(int(n))] if "Values" in d else [d["Value"]]
        dims = tuple((x["Name"], x["Value"]) for x in d.get("Dimensions", []))
        unit = d.get("Unit", "None")
        groups.setdefault(dims, []).extend((d["MetricName"], "NoUnit" if unit == "None" else unit, v) for v in values)
    for dims, points in groups.items():
        metrics = EphemeralMetrics(namespace=namespace)
        for dimension, label in dims:
            metrics.add_dimension(name=dimension, value=label)
        for name, unit, value in points:
            metrics.add_metric(name=name, unit=MetricUnit[unit], value=value)
        metrics.flush_metrics()


# How long the thread gathers data before it sends: requests a few ms apart then share one PutMetricData instead of one
# each. Each call costs the emulator's one event loop ~7 ms and this process's CPU to serialize, both taken from the
# requests in flight (measured 2026-12-02: a request's DynamoDB write took 17-19 ms inside the handler, 1.5 ms alone).
LINGER = 0.5


class MetricBuffer:
    """Metric data handed over by requests and sent by one daemon thread: it takes whatever has queued up (so a burst
    of requests becomes a few PutMetricData calls of up to 1,000 data each) and sends it. At most `limit` data wait;
    beyond that new data are dropped, counted in `dropped` and logged, never blocking a request. `flush` waits until
    everything handed over so far is sent (shutdown, tests)."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], None], limit: int = 50_000, linger: float = LINGER):
        self._send, self.limit, self.linger = send, limit, linger
        self._hurry = threading.Event()  # a flush is waiting: send what is there without lingering
        self._queue: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()  # None: close
        self._done = threading.Condition()
        self._waiting = 0  # data handed over and not yet sent (or failed)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._thread.start()

    def put(self, data: list[dict[str, Any]]) -> None:
        if not data:
            return
        with self._done:
            if self._waiting + len(data) > self.limit:
                self.dropped += len(data)
                log.warning("metrics buffer full (%d data waiting): dropped %d (%d so far)", self._waiting, len(data), self.dropped)
                return
            self._waiting += len(data)
        self._queue.put(data)

    def _run(self) -> None:
        closing = False
        while not closing:
            batch = self._queue.get()
            if batch is None:
                return
            deadline = time.monotonic() + self.linger
            while len(batch) < 1000:
                try:
                    more = self._queue.get(timeout=max(deadline - time.monotonic(), 0)) if not self._hurry.is_set() else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch = batch + more
            if not batch:  # a flush's wake-up, nothing waiting
                continue
            try:
                self._send(batch)
            finally:
                with self._done:
                    self._waiting -= len(batch)
                    self._done.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait (at most `timeout` seconds) until every datum handed over so far has been sent; False if some still wait."""
        self._hurry.set()
        self._queue.put([])  # wakes the thread if it lingers
        try:
            with self._done:
                return self._done.wait_for(lambda: self._waiting == 0, timeout)
        finally:
            self._hurry.clear()

    def close(self, timeout: float = 5.0) -> bool:
        """Send what was handed over, then end the thread: for a process that builds many buffers (the unit tests built
        one a test, each thread keeping its test's clients and model alive). True if the thread ended in `timeout`."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def reopen(self) -> None:
        """A thread again after `close` (a SnapStart restore: a fork carries no thread, and the snapshot closed it)."""
        if not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
            self._thread.start()


class Metrics:
    def __init__(self, cloudwatch, namespace: str, low_confidence: float, sink: str = "api"):
        if sink not in ("api", "emf"):
            raise ValueError(f"METRICS_SINK must be api or emf, got {sink!r}")
        self._cw = cloudwatch
        self.namespace = namespace
        self.low_confidence = low_confidence
        self.sink = sink
        self.failures = 0
        self._buffer = MetricBuffer(self._put) if sink == "api" else None
        if sink == "emf":  # imported during the function's init, not on its first request
            import aws_lambda_powertools.metrics  # noqa: F401

    def request(self, route: str, status: int, latency_ms: float, error_code: str | None,
                model_version: str | None = None, model_ms: float | None = None) -> list[dict[str, Any]]:
        """The request's own metrics; per model (`model_ms`: the time from the model's choice to the answer, so a
        canary compares what the models cost to serve, not the load a worker does on its first request) too."""
        data = _datum(Metric.REQUESTS, {"Route": route}, "Count", [1])
        data += _datum(Metric.LATENCY, {"Route": route}, "Milliseconds", [round(latency_ms, 3)])
        data += _datum(Metric.SERVER_ERROR, {}, "Count", [1 if status >= 500 else 0])
        if model_version and route == "/predict":  # per model: what a canary evaluation compares
            version = {"ModelVersion": model_version}
            data += _datum(Metric.REQUESTS, version, "Count", [1])
            data += _datum(Metric.LATENCY, version, "Milliseconds", [round(latency_ms if model_ms is None else model_ms, 3)])
            data += _datum(Metric.SERVER_ERROR, version, "Count", [1 if status >= 500 else 0])
        if error_code:
            data += _datum(Metric.ERRORS, {"ErrorType": error_code}, "Count", [1])
        return data

    def predictions(self, model_version: str, results: list[dict[str, Any]], records: list[dict[str, Any]],
                    segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        confidences = [r["confidence"] for r in results]
        data = _datum(Metric.PREDICTION_CONFIDENCE, {"ModelVersion": model_version}, "None", [round(c, 3) for c in confidences])
        data += _datum(Metric.LOW_CONFIDENCE, {}, "Count", [1 if c < self.low_confidence else 0 for c in confidences])
        data += _datum(Metric.LOW_CONFIDENCE, {"ModelVersion": model_version}, "Count", [1 if c < self.low_confidence else 0 for c in confidences])
        for label, n in Counter(r["label"] for r in results).items():
            data += [{"MetricName": Metric.PREDICTIONS, "Dimensions": [{"Name": "ModelVersion", "Value": model_version},
                      {"Name": "Class", "Value": label}], "Unit": "Count", "Value": float(n)}]
        for seg in segments:
            for bucket, n in bucket_counts(seg, [rec.get(seg["feature"]) for rec in records]).items():  # missing left out
                data += [{"MetricName": Metric.PREDICTIONS_BY_SEGMENT, "Dimensions": [{"Name": "Segment", "Value": seg["name"]},
                          {"Name": "Bucket", "Value": bucket}], "Unit": "Count", "Value": float(n)}]
        return data

    def feedback(self, model_version: str, correct: bool, record: dict[str, Any], segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        data = _datum(Metric.FEEDBACK_CORRECT, {"ModelVersion": model_version}, "Count", [1 if correct else 0])
        data += _datum(Metric.FEEDBACK_CORRECT, {}, "Count", [1 if correct else 0])
        for seg in segments:
            bucket = segment_of(seg, record)
            if bucket is not None:
                data += _datum(Metric.FEEDBACK_CORRECT_BY_SEGMENT, {"Segment": seg["name"], "Bucket": bucket}, "Count", [1 if correct else 0])
        return data

    def publish(self, data: list[dict[str, Any]]) -> None:
        """Hand the data to the sink; returns at once with `api` (the buffer's thread sends them)."""
        if self._buffer is not None:
            self._buffer.put(data)
            return
        try:
            emf_print(self.namespace, data)
        except Exception as err:  # metrics must never fail a prediction
            self._failed(len(data), err)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the data published so far are sent (the `api` sink); False when some still wait after `timeout`."""
        return self._buffer.flush(timeout) if self._buffer is not None else True

    def pause(self) -> None:
        """Send what waits and end the buffer's thread (before a SnapStart snapshot: a forked process has no threads)."""
        if self._buffer is not None:
            self._buffer.close(2.0)

    def resume(self) -> None:
        """The buffer's thread again, after `pause` (in each worker restored from the snapshot)."""
        if self._buffer is not None:
            self._buffer.reopen()

    @property
    def dropped(self) -> int:
        return self._buffer.dropped if self._buffer is not None else 0

    def _put(self, data: list[dict[str, Any]]) -> None:
        for i in range(0, len(data), 1000):
            try:
                self._cw.put_metric_data(Namespace=self.namespace, MetricData=data[i:i + 1000])
            except Exception as err:  # metrics must never fail a prediction, nor stop the buffer's thread
                self._failed(len(data[i:i + 1000]), err)

    def _failed(self, count: int, err: Exception) -> None:
        self.failures += 1
        log.warning("could not publish %d metric data (%d failures so far): %s", count, self.failures, err)

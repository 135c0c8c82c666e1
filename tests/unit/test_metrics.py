"""The `api` metrics sink off the request path: a request hands its data to a buffer and returns; a thread sends them,
a burst in few calls; nothing handed over is lost, on shutdown either; what a full buffer cannot take is counted."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from predictor.metrics import MetricBuffer, Metrics

from .conftest import ROOT


def _datum(name: str = "Requests") -> dict:
    return {"MetricName": name, "Unit": "Count", "Value": 1.0}


class Recording:
    """put_metric_data that records each call, and can be held until released."""

    def __init__(self) -> None:
        self.calls: list[list[dict]] = []
        self.release = threading.Event()
        self.release.set()

    def put_metric_data(self, Namespace: str, MetricData: list[dict]) -> None:  # noqa: N803 - boto3's names
        self.release.wait(10)
        self.calls.append(MetricData)


def test_publishing_returns_before_cloudwatch_answers_and_loses_nothing():
    cloudwatch = Recording()
    cloudwatch.release.clear()  # CloudWatch hangs
    metrics = Metrics(cloudwatch, "Test", 0.6)
    for _ in range(50):
        metrics.publish([_datum(), _datum("Latency")])  # returns at once: nothing waits for the hung call
    assert not metrics.flush(0.05)  # still held
    cloudwatch.release.set()
    assert metrics.flush(5)
    assert sum(len(c) for c in cloudwatch.calls) == 100 and metrics.dropped == 0 and metrics.failures == 0
    assert len(cloudwatch.calls) <= 3  # what queued while the first call hung went in one or two more calls


def test_a_burst_goes_in_calls_of_at_most_1000_data():
    cloudwatch = Recording()
    cloudwatch.release.clear()
    metrics = Metrics(cloudwatch, "Test", 0.6)
    for _ in range(600):
        metrics.publish([_datum()] * 4)
    cloudwatch.release.set()
    assert metrics.flush(5)
    assert sum(len(c) for c in cloudwatch.calls) == 2400 and max(len(c) for c in cloudwatch.calls) <= 1000


def test_a_full_buffer_drops_new_data_counts_them_and_never_blocks(caplog):
    held = threading.Event()
    sent: list[int] = []

    def send(batch: list[dict]) -> None:
        held.wait(10)
        sent.append(len(batch))

    buffer = MetricBuffer(send, limit=10)
    for _ in range(8):
        buffer.put([_datum(), _datum()])  # 16 data against room for 10
    assert buffer.dropped == 6 and "metrics buffer full" in caplog.text
    held.set()
    assert buffer.flush(5) and sum(sent) == 10


def test_data_handed_over_close_together_share_one_call_and_a_flush_does_not_wait_out_the_linger():
    sent: list[int] = []
    buffer = MetricBuffer(lambda batch: sent.append(len(batch)), linger=30)
    for _ in range(5):
        buffer.put([_datum()])
    started = time.monotonic()
    assert buffer.flush(5) and time.monotonic() - started < 5
    assert sent == [5]  # one PutMetricData for the five requests, not five


def test_a_closed_buffer_sends_what_it_was_handed_and_its_thread_ends():
    held = threading.Event()
    sent: list[int] = []

    def send(batch: list[dict]) -> None:
        held.wait(10)
        sent.append(len(batch))

    buffer = MetricBuffer(send)
    for _ in range(3):
        buffer.put([_datum()])
    threads = threading.active_count()
    held.set()
    assert buffer.close(5) and sum(sent) == 3 and threading.active_count() == threads - 1


def test_a_failing_cloudwatch_is_counted_and_the_thread_goes_on(caplog):
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def put_metric_data(self, **_) -> None:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("cloudwatch is down")

    cloudwatch = Flaky()
    metrics = Metrics(cloudwatch, "Test", 0.6)
    metrics.publish([_datum()])
    assert metrics.flush(5) and metrics.failures == 1 and "could not publish 1 metric data" in caplog.text
    metrics.publish([_datum()])
    assert metrics.flush(5) and cloudwatch.calls == 2 and metrics.failures == 1


class _CloudWatch(http.server.BaseHTTPRequestHandler):
    """Records each PutMetricData body; holds the answer to the first (a slow CloudWatch) for a second."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        _CloudWatch.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        if len(_CloudWatch.bodies) == 1:
            threading.Event().wait(1.0)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_) -> None:
        pass


def test_a_worker_told_to_stop_sends_what_it_still_holds(tmp_path: Path):
    """The predictor's Lambda module in a process of its own, its CloudWatch slow to answer a first call: a second
    datum still waits in the buffer when SIGTERM comes, and reaches CloudWatch before the process ends."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CloudWatch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = (
        "import os, signal\n"
        "from predictor import handler\n"
        "metrics = handler.deps.metrics\n"
        "metrics._buffer.linger = 0\n"  # the first call goes out alone, so the second datum waits behind it
        "metrics.publish([{'MetricName': 'FirstCall', 'Unit': 'Count', 'Value': 1.0}])\n"
        "while not metrics._buffer._queue.empty(): pass\n"  # the thread has taken it, and waits for CloudWatch
        "metrics.publish([{'MetricName': 'ShutdownProbe', 'Unit': 'Count', 'Value': 1.0}])\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "raise SystemExit(3)\n"  # not reached: the signal's handler ends the process
    )
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "MODEL_BUCKET": "m", "MODEL_SIGNING_KEY": "k",
           "PREDICTIONS_TABLE": "t", "DATASET_BUCKET": "d", "DATASET_PREFIX": "p", "METRICS_NAMESPACE": "Test",
           "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("services/predictor", "services/contract"))}
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert [b"FirstCall" in b for b in _CloudWatch.bodies] == [True, False]
    assert b"ShutdownProbe" in _CloudWatch.bodies[1]

"""The floors and the peer of `make bench` (issue 16): each part of a request measured on its own against the
same emulator, so a figure through API Gateway is shown next to what it is made of, and next to the same
model behind a plain gunicorn + Flask endpoint (bench/peer.py).

- transport: a trivial function (returns a constant) behind its own REST API on the same emulator, called
  with the same body: API Gateway + the Lambda runtime, nothing of ours;
- predict: validation, the matrix and the model, in this process, on the model the stack serves;
- record: PredictionRecorder.write of the same predictions to the same table (one round trip for one
  record; the batch layout's writes for 1,000);
- metrics: what a request spends on its metrics: handing them to the `api` sink's buffer (the PutMetricData the
  buffer's thread then makes, off the request path, is measured beside it as `metrics_sent_ms`).
"""

from __future__ import annotations

import atexit
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from devstack.runtime import free_port

ROOT = Path(__file__).resolve().parents[1]
# It logs one line, as the predictor does: MiniStack waits up to 50 ms for a line from a worker that prints none.
# A warm-up call (as make up sends the predictor's) holds its worker and names it, so the warm-up's floor is measured
# the same way (warm_pool_seconds).
TRIVIAL = ("import sys, time, uuid\n\nWORKER = uuid.uuid4().hex\n\ndef handler(event, context):\n    print('trivial', file=sys.stderr)\n"
           "    if isinstance(event, dict) and 'sommelier_warmup' in event:\n"
           "        time.sleep(event['sommelier_warmup']['hold_ms'] / 1000)\n        return {'worker': WORKER}\n"
           "    return {'statusCode': 200, 'headers': {'Content-Type': 'application/json'}, 'body': '{}'}\n")


TRIVIAL_NAME = "bench-trivial"


@functools.cache
def shipped_code(function: str = "predictor") -> str:
    """A folder holding the function's code as the stack serves it: its zip (hooklib's, the modules with their compiled
    bytecode) unpacked, as the emulator unpacks it for each worker. A fresh process's cold start from it is the same
    code's as a worker's; from the source tree (no .pyc where PYTHONDONTWRITEBYTECODE is set) it compiled ~30 modules
    first. Removed when this process ends."""
    from hooklib import build_bundle, function_packages

    folder = tempfile.mkdtemp(prefix=f"bench-{function}-code-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    zipfile.ZipFile(io.BytesIO(build_bundle(function_packages(ROOT, function)))).extractall(folder)
    return folder


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _p50(ms: list[float]) -> float:
    return round(sorted(ms)[len(ms) // 2], 3)


def _client(cfg, service: str):
    return cfg.client(service)


def trivial_api(cfg) -> str:
    """A constant-answering function behind its own REST API (proxy integration) on the stack's emulator: its URL."""
    lam, apigw = _client(cfg, "lambda"), _client(cfg, "apigateway")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("trivial.py", TRIVIAL)
    arn = lam.create_function(FunctionName=TRIVIAL_NAME, Runtime="python3.12", Handler="trivial.handler", Code={"ZipFile": buf.getvalue()},
                              Role="arn:aws:iam::000000000000:role/bench", MemorySize=1024, Timeout=30)["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=TRIVIAL_NAME)
    api = apigw.create_rest_api(name="bench-trivial")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    resource = apigw.create_resource(restApiId=api, parentId=root, pathPart="predict")["id"]
    apigw.put_method(restApiId=api, resourceId=resource, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=resource, httpMethod="POST", type="AWS_PROXY", integrationHttpMethod="POST",
                          uri=f"arn:aws:apigateway:{cfg.region}:lambda:path/2015-03-31/functions/{arn}/invocations")
    apigw.create_deployment(restApiId=api, stageName="b")
    return f"{cfg.endpoint}/restapis/{api}/b/_user_request_"


def _retire_workers(lam, name: str) -> None:
    """A configuration change: the function's workers are replaced, so the next invocations start new ones."""
    env = (lam.get_function_configuration(FunctionName=name).get("Environment") or {}).get("Variables", {})
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {**env, "BENCH_NONCE": str(time.time())}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)


def cold_invoke(lam, name: str, event: dict[str, Any]) -> float:
    """ms of the first invocation after a configuration change: a cold start."""
    _retire_workers(lam, name)
    payload = json.dumps(event)
    return _timed(lambda: lam.invoke(FunctionName=name, Payload=payload)["Payload"].read())


def warm_pool_seconds(cfg, name: str, workers: int = 16, hold_ms: int = 250) -> float:
    """Seconds to start `workers` new workers of `name` the way make up warms the predictor's (devstack.runtime.warm_workers:
    waves of calls, each holding its worker `hold_ms`): for the predictor, most of make up; for the trivial function, the
    emulator's own floor under it."""
    from devstack.runtime import warm_workers

    lam = cfg.client("lambda", read_timeout=120, max_pool_connections=workers)
    _retire_workers(lam, name)
    payload = json.dumps({"sommelier_warmup": {"hold_ms": hold_ms}}).encode()

    def call() -> str:
        return str(json.loads(lam.invoke(FunctionName=name, Payload=payload)["Payload"].read())["worker"])

    started = time.perf_counter()
    warm_workers(call, workers)
    return round(time.perf_counter() - started, 2)


def in_process_parts(info: dict[str, Any], cfg, example: dict[str, Any], reps: int = 200) -> dict[str, dict[str, float]]:
    """p50 ms of each part for 1 record and for 1,000, on the model the stack serves and its table."""
    sys.path[:0] = [str(ROOT / "services" / "predictor"), str(ROOT / "services" / "contract")]
    from predictor.metrics import Metrics
    from predictor.model_store import ModelStore
    from predictor.records import PredictionRecorder
    from sommelier_contract.artifacts import Signatures
    from sommelier_contract.records import to_matrix

    out = info["outputs"]
    model = ModelStore(_client(cfg, "s3"), out["ModelBucketName"], 3600,
                       Signatures(_client(cfg, "kms"), out["ModelSigningKeyAlias"])).current()  # the champion, verified
    recorder = PredictionRecorder(_client(cfg, "dynamodb"), out["PredictionsTableName"], 1)
    metrics = Metrics(_client(cfg, "cloudwatch"), "SommelierBench", 0.6)
    parts: dict[str, dict[str, float]] = {}
    for size, n in ((1, reps), (1000, max(10, reps // 20))):
        records = [example] * size

        def predict(records: list = records) -> list:
            assert not [e for r in records for e in model.validator.errors(r, "features")]
            return model.predict(to_matrix(records, model.features))

        predictions = predict()
        data = metrics.request("/predict", 200, 10.0, None, model.version) + metrics.predictions(
            model.version, predictions, records, model.manifest.segments)
        parts[str(size)] = {
            "predict_ms": _p50([_timed(predict) for _ in range(n)]),
            "record_ms": _p50([_timed(lambda p=predictions, r=records: recorder.write(caller="bench-floor", model_version=model.version,
                                                                                       now=time.time(), predictions=p, inputs=r, context={}))
                               for _ in range(n)]),
            "metrics_ms": _p50([_timed(lambda d=data: metrics.publish(d)) for _ in range(n)]),
            "metrics_sent_ms": _p50([_timed(lambda d=data: (metrics.publish(d), metrics.flush(10))) for _ in range(n)]),
        }
    parts["runtime"] = model.runtime  # type: ignore[assignment]
    return parts


def transport(url: str, example: dict[str, Any], reps: int = 200) -> dict[str, float]:
    """p50 ms of the trivial function through API Gateway with a 1-record and a 1,000-record body, and the emulator's own
    burst: p99 ms of 160 requests 16 at a time once 16 of its workers are warm (the floor under the first burst)."""
    session = requests.Session()
    out = {}
    for size, n in ((1, reps), (1000, max(10, reps // 20))):
        body = json.dumps({"features": example} if size == 1 else {"instances": [example] * size})
        for _ in range(5):
            session.post(url + "/predict", data=body).raise_for_status()
        out[str(size)] = _p50([_timed(lambda b=body: session.post(url + "/predict", data=b).raise_for_status()) for _ in range(n)])
    burst(url, example, 160)  # starts its 16 workers; the second is the emulator's burst with them warm
    ms = sorted(_burst_ms(url, example, 160))
    out["burst_16_p99"] = round(ms[min(len(ms) - 1, int(0.99 * (len(ms) - 1)))], 3)
    return out


def _burst_ms(url: str, example: dict[str, Any], n: int) -> list[float]:
    single = json.dumps({"features": example})
    sessions = [requests.Session() for _ in range(16)]

    def one(i: int) -> float:
        return _timed(lambda: sessions[i % 16].post(url + "/predict", data=single, timeout=30).raise_for_status())

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(n)))


def burst(url: str, example: dict[str, Any], n: int) -> int:
    """`n` requests to the constant function's API, 16 at a time; how many were sent."""
    return len(_burst_ms(url, example, n))


def peer(info: dict[str, Any], cfg, example: dict[str, Any], reps: int = 300) -> dict[str, Any]:
    """The same model behind gunicorn + Flask (2 sync workers, one per core), writing to the same table: its first burst
    (160 requests, 16 at a time, right after it answered once), warm single, batch of 1,000 and 16 concurrent clients."""
    out = info["outputs"]
    port = free_port()
    env = {**os.environ, **cfg.aws_env(), "PEER_MODEL_BUCKET": out["ModelBucketName"], "PEER_SIGNING_KEY": out["ModelSigningKeyAlias"],
           "PEER_TABLE": out["PredictionsTableName"],
           "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("services/predictor", "services/contract", "."))}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                             "bench.peer:app"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/predict"
    try:
        session = requests.Session()
        deadline = time.monotonic() + 60
        while True:
            try:
                session.post(url, json={"features": example}, timeout=5).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the peer did not start") from None
                time.sleep(0.2)  # bounded by the deadline above: gunicorn's workers import the model
        single = json.dumps({"features": example})
        batch = json.dumps({"instances": [example] * 1000})
        headers = {"content-type": "application/json"}
        sessions = [requests.Session() for _ in range(16)]

        def one(i: int) -> float:
            return _timed(lambda: sessions[i % 16].post(url, data=single, headers=headers, timeout=30).raise_for_status())

        with ThreadPoolExecutor(16) as pool:  # its first burst, as the stack's is measured: 160 requests, 16 at a time
            first = sorted(pool.map(one, range(160)))
        result = {"first_burst_16_p99_ms": round(first[min(len(first) - 1, int(0.99 * (len(first) - 1)))], 3),
                  "single_p50_ms": _p50([_timed(lambda: session.post(url, data=single, headers=headers).raise_for_status())
                                         for _ in range(reps)]),
                  "batch_1000_p50_ms": _p50([_timed(lambda: session.post(url, data=batch, headers=headers).raise_for_status())
                                             for _ in range(10)])}
        with ThreadPoolExecutor(16) as pool:
            ms = sorted(pool.map(one, range(reps)))
        result["concurrency_16_p99_ms"] = round(ms[min(len(ms) - 1, int(0.99 * (len(ms) - 1)))], 3)
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def package_sizes() -> dict[str, float]:
    """MiB the predictor's dependencies take installed (what a Lambda zip or layer would carry; AWS allows 250 MB
    unzipped): the locked set, and the set an ONNX-only function needs (no scikit-learn, SciPy, joblib)."""
    locked = [line.split()[0] for line in (ROOT / "requirements" / "predictor.txt").read_text().splitlines()
              if line and not line.startswith((" ", "#"))]
    without = ("scikit-learn==", "scipy==", "joblib==", "threadpoolctl==")
    sizes = {}
    for name, pins in (("locked (joblib and onnx)", locked), ("onnx only", [p for p in locked if not p.startswith(without)])):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", d, *pins], check=True,
                           capture_output=True)
            sizes[name] = round(sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file()) / 2**20, 1)
    return sizes

"""`make bench`: measure the embedded stack next to its floors, in one run, on this machine.

Writes bench/results/latest.json, latest.md and latest.png. Targets are reported, never
asserted. Load stays on loopback and is bounded in count and time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests
from tqdm import tqdm

from bench import cpu, floors, snapstart
from devstack.compose import Compose
from devstack.config import StackConfig
from devstack.embedded import Embedded
from devstack.runtime import Runtime, free_port
from sommelier_contract.results import TrainingResult

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
EXAMPLE = json.loads((ROOT / "examples" / "predict.json").read_text())["features"]
ENVIRONMENT = dict(os.environ)  # as started: in_process_floor points this process at its stack (AWS_ENDPOINT_URL, ...)
PYTHONPATH = ":".join(str(ROOT / p) for p in ("services/trainer", "services/contract", "services/predictor", "."))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 3)


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99), "mean_ms": round(statistics.mean(ms), 3)}


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def warm_api(session: requests.Session, url: str, key: str, n: int, example: dict | None = None) -> list[float]:
    body = json.dumps({"features": example or EXAMPLE})
    headers = {"x-api-key": key, "content-type": "application/json"}
    deadline = time.monotonic() + 60
    for _ in range(20):  # warm the worker; a usage plan still refilling after a burst says when to come back (Retry-After)
        resp = session.post(url + "/predict", data=body, headers=headers)
        while resp.status_code == 429 and time.monotonic() < deadline:
            time.sleep(float(resp.headers.get("Retry-After", "1")))
            resp = session.post(url + "/predict", data=body, headers=headers)
        resp.raise_for_status()
    out = []
    for _ in tqdm(range(n), desc="warm API", file=sys.stderr):
        out.append(timed(lambda: session.post(url + "/predict", data=body, headers=headers).raise_for_status()))
    return out


def health_api(session: requests.Session, url: str, n: int = 300) -> dict[str, float]:
    """GET /health through API Gateway (no key, no model work, no write): the runtime's own per-invocation cost with our
    smallest answer; on the compose stack, an image function's path (the pool, the shim, the log read) beside the floor's
    zip function."""
    for _ in range(20):
        session.get(url + "/health").raise_for_status()
    return summary([timed(lambda: session.get(url + "/health").raise_for_status()) for _ in range(n)])


def in_process_floor(info: dict, cfg: StackConfig, n: int) -> tuple[list[float], float]:
    """The same handler, called in this process, against the same emulator: the floor for the API figure."""
    os.environ.update(predictor_env(info, cfg))
    sys.path[:0] = [str(ROOT / "services" / "predictor"), str(ROOT / "services" / "contract")]
    started = time.perf_counter()
    from predictor import handler

    context = SimpleNamespace(function_name="bench", memory_limit_in_mb=1024, invoked_function_arn="arn:aws:lambda:::bench",
                              aws_request_id="bench")
    event = {"httpMethod": "POST", "resource": "/predict", "path": "/predict", "body": json.dumps({"features": EXAMPLE}),
             "requestContext": {"requestId": "bench", "identity": {"apiKeyId": "bench"}}}
    first = handler.lambda_handler(event, context)
    cold_ms = (time.perf_counter() - started) * 1000
    assert first["statusCode"] == 200, first
    for _ in range(20):
        handler.lambda_handler(event, context)
    return [timed(lambda: handler.lambda_handler(event, context)) for _ in tqdm(range(n), desc="in-process floor", file=sys.stderr)], cold_ms


def profile_batch(size: int = 1000, top: int = 14) -> list[str]:
    """cProfile of the in-process handler on the slowest path (a full batch): where the time goes."""
    import cProfile
    import io
    import pstats

    from predictor import handler  # imported by in_process_floor, with the emulator's settings

    context = SimpleNamespace(function_name="bench", memory_limit_in_mb=1024, invoked_function_arn="arn:aws:lambda:::bench",
                              aws_request_id="bench")
    event = {"httpMethod": "POST", "resource": "/predict", "path": "/predict", "body": json.dumps({"instances": [EXAMPLE] * size}),
             "requestContext": {"requestId": "bench", "identity": {}}}
    handler.lambda_handler(event, context)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        handler.lambda_handler(event, context)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"predictor|botocore/(client|endpoint|validate)|tenacity|sklearn/.*predict", top)
    return [line.rstrip() for line in out.getvalue().splitlines() if line.strip()][-top - 1:]


def repo_timings(fresh_clone: bool, test_suite: bool) -> dict:
    """Optional, slow: make up from a fresh clone (install included) and the make test duration."""
    out: dict = {}
    if fresh_clone:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["git", "clone", "-q", str(ROOT), d], check=True)
            env = {**os.environ, "SOMMELIER_EMULATOR_PORT": str(free_port()), "SOMMELIER_FRONTEND_PORT": str(free_port())}
            env.pop("VIRTUAL_ENV", None)
            started = time.perf_counter()
            subprocess.run(["make", "up", "STACK=embedded", f"EMULATOR_PORT={env['SOMMELIER_EMULATOR_PORT']}",
                            f"FRONTEND_PORT={env['SOMMELIER_FRONTEND_PORT']}"], cwd=d, env=env, check=True, capture_output=True)
            out["make_up_fresh_clone_s"] = round(time.perf_counter() - started, 1)
            subprocess.run(["make", "down", "STACK=embedded"], cwd=d, env=env, check=True, capture_output=True)
    if test_suite:
        started = time.perf_counter()
        subprocess.run(["make", "test"], cwd=ROOT, check=True, capture_output=True)
        out["make_test_s"] = round(time.perf_counter() - started, 1)
    return out


def batches(session: requests.Session, url: str, key: str, example: dict | None = None,
            sizes: tuple[tuple[int, int], ...] = ((1, 50), (10, 50), (100, 30), (1000, 10))) -> list[dict]:
    rows = []
    for size, reps in sizes:
        body = json.dumps({"instances": [example or EXAMPLE] * size})
        headers = {"x-api-key": key, "content-type": "application/json"}
        ms = [timed(lambda b=body, h=headers: session.post(url + "/predict", data=b, headers=h).raise_for_status()) for _ in range(reps)]
        s = summary(ms)
        rows.append({"batch": size, **s, "rows_per_s": round(size / (s["p50_ms"] / 1000))})
    return rows


def concurrency(url: str, key: str, per_level: int = 300, time_limit: float = 60, levels: tuple[int, ...] = (1, 4, 16),
                example: dict | None = None) -> list[dict]:
    rows = []
    body = json.dumps({"features": example or EXAMPLE})
    headers = {"x-api-key": key, "content-type": "application/json"}
    for workers in levels:
        deadline = time.monotonic() + time_limit
        sessions = [requests.Session() for _ in range(workers)]

        def one(i: int, deadline: float = deadline, sessions: list = sessions, workers: int = workers) -> tuple[int, float]:
            if time.monotonic() > deadline:
                return -1, 0.0
            started = time.perf_counter()
            status = sessions[i % workers].post(url + "/predict", data=body, headers=headers, timeout=30).status_code
            return status, (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            results = [r for r in pool.map(one, range(per_level)) if r[0] != -1]
        wall = time.perf_counter() - started
        ok = [ms for status, ms in results if status == 200]
        rows.append({"concurrency": workers, "requests": len(results), "ok": len(ok),
                     "throttled_429": sum(1 for s, _ in results if s == 429),
                     "errors": sum(1 for s, _ in results if s not in (200, 429)),
                     "req_per_s": round(len(results) / wall, 1), **(summary(ok) if ok else {})})
    return rows


def predictor_env(info: dict, cfg: StackConfig) -> dict[str, str]:
    """The predictor's settings for a handler run outside the emulator, against the same stack."""
    outputs = info["outputs"]
    return {**cfg.aws_env(), "MODEL_BUCKET": outputs["ModelBucketName"], "MODEL_SIGNING_KEY": outputs["ModelSigningKeyAlias"],
            "PREDICTIONS_TABLE": outputs["PredictionsTableName"], "DATASET_BUCKET": outputs["DatasetBucketName"],
            "DATASET_PREFIX": cfg.dataset_prefix, "METRICS_NAMESPACE": "Sommelier", "LOG_LEVEL": "WARNING"}


def predict_event(example: dict) -> dict:
    return {"httpMethod": "POST", "resource": "/predict", "path": "/predict", "body": json.dumps({"features": example}),
            "requestContext": {"requestId": "cold", "identity": {}}}


PREDICT_EVENT = predict_event(EXAMPLE)
# A fresh interpreter that imports the handler (its clients built at import, as in a worker) and answers one prediction;
# the parent times it from the spawn to the answer's line, as the emulator's figure runs from the invoke to the answer.
FRESH = """import json, sys, time
started = time.perf_counter()
from predictor import handler
imported = time.perf_counter()
answer = handler.lambda_handler(json.loads(sys.argv[1]), type("Context", (), {"aws_request_id": "cold", "function_name": "bench",
    "memory_limit_in_mb": 1024, "invoked_function_arn": "arn:aws:lambda:::bench"})())
done = time.perf_counter()
print(json.dumps({"status": answer["statusCode"], "body": answer["body"][:300], "imports_ms": round((imported - started) * 1000, 1),
                  "load_and_first_predict_ms": round((done - imported) * 1000, 1)}), flush=True)
"""


def fresh_process(info: dict, cfg: StackConfig, event: dict = PREDICT_EVENT) -> dict[str, float]:
    """A new process's cold start of the same handler and model: spawn -> imports -> load -> first prediction answered."""
    env = {**ENVIRONMENT, **predictor_env(info, cfg), "PYTHONPATH": floors.shipped_code()}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", FRESH, json.dumps(event)], env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    wall = (time.perf_counter() - started) * 1000
    proc.wait(timeout=30)  # its exit sends the metrics it holds: not part of the answer
    out = json.loads(line)
    assert out.pop("status") == 200, out
    out.pop("body")
    return {"wall_ms": round(wall, 1), **out}


def cold_predicts(info: dict, cfg: StackConfig, example: dict, reps: int) -> dict:
    """`reps` first predictions on a new worker (a config change replaces the function's workers, so the next invocation
    of $LATEST starts one), beside `reps` fresh processes' cold starts of the same handler and model (the peer): medians."""
    lam = cfg.client("lambda")
    name = info["outputs"]["PredictorFunctionName"]
    event = predict_event(example)
    predict = [floors.cold_invoke(lam, name, event) for _ in range(reps)]
    fresh = [fresh_process(info, cfg, event) for _ in range(reps)]
    return {"cold_invoke_predict_ms": round(statistics.median(predict), 1), "cold_invoke_predict_runs_ms": [round(p, 1) for p in predict],
            "fresh_process": {k: statistics.median(f[k] for f in fresh) for k in fresh[0]}, "fresh_process_runs": fresh}


def cold_start(info: dict, cfg: StackConfig, reps: int = 5) -> dict:
    """Issue 39: cold starts of the predictor (cold_predicts: one sample moved 2x between runs, so `reps` of them) beside
    the emulator's own: the trivial function's cold start, which floors.trivial_api created (its bootstrap imports
    botocore before any handler, so part of every worker's start is the emulator's), and warming 16 workers of each."""
    lam = cfg.client("lambda")
    name = info["outputs"]["PredictorFunctionName"]
    health = {"httpMethod": "GET", "resource": "/health", "path": "/health", "requestContext": {"requestId": "cold"}}
    cold_health = floors.cold_invoke(lam, name, health)
    warm = timed(lambda: lam.invoke(FunctionName=name, Payload=json.dumps(health))["Payload"].read())
    predicts = cold_predicts(info, cfg, EXAMPLE, reps)
    trivial = [floors.cold_invoke(lam, floors.TRIVIAL_NAME, {}) for _ in range(reps)]
    warm_16 = {"predictor": floors.warm_pool_seconds(cfg, name), "trivial": floors.warm_pool_seconds(cfg, floors.TRIVIAL_NAME)}
    return {"cold_invoke_health_ms": round(cold_health, 1), "warm_invoke_health_ms": round(warm, 1), **predicts,
            "emulator_trivial_cold_ms": round(statistics.median(trivial), 1), "emulator_trivial_cold_runs_ms": [round(t, 1) for t in trivial],
            "warm_16_workers_s": warm_16}


def run_module(module: str, *args: str, limit: float = 900, without: tuple[str, ...] = ()) -> tuple[Any, str]:
    """`python -m module args` with the environment this process started with (in_process_floor points this one at its
    stack, and a child that inherited that reached a stack that is gone): (its JSON output, "") or (None, the end of
    its stderr)."""
    env = {k: v for k, v in ENVIRONMENT.items() if k not in without}
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=limit, cwd=ROOT,
                          env={**env, "PYTHONPATH": PYTHONPATH})
    return (json.loads(proc.stdout), "") if proc.returncode == 0 else (None, proc.stderr[-300:])


def training_scaling(cases=(("full", 1_000), ("full", 5_810), ("full", 130_000), ("notes", 130_000), ("reviews", 1_000), ("reviews", 20_000),
                            ("numeric", 10_000), ("numeric", 100_000), ("numeric", 1_000_000)),
                     limit: float = 900) -> list[dict]:
    rows = []
    for kind, n in tqdm(cases, desc="training scaling", file=sys.stderr):
        try:
            # moto, never a stack the caller's shell points at
            out, err = run_module("bench.training", kind, str(n), limit=limit, without=("AWS_ENDPOINT_URL",))
            rows.append(out if out is not None else {"kind": kind, "rows": n, "error": err})
        except subprocess.TimeoutExpired:
            rows.append({"kind": kind, "rows": n, "timed_out_after_s": limit})
    return rows


# The trainer's text models against the plain baseline (issue 50), each case in a process of its own: KIND, rows, splits.
# 130,000 rows run 1 split (it trains the trainer on 104,000 rows, searches the baseline's C and fits it: ~40 min here).
TEXT_CASES = (("description", 1_000, 5), ("description", 5_810, 5), ("description", 130_000, 1), ("notes", 5_810, 5),
              ("full", 5_810, 5))
ABSENT_ROWS = (1_000, 5_810, 130_000)


def text_models(limit: float = 3600) -> dict:
    """The winner against the plain baseline on every text dataset of the bench, and the four ways of answering a record
    that leaves features out, side by side (bench/text_models.py). `--text-max-rows N` leaves out the cases of more rows
    (the 130,000-row ones take ~70 min together), each said in the results."""
    most = int(sys.argv[sys.argv.index("--text-max-rows") + 1]) if "--text-max-rows" in sys.argv else None
    out: dict[str, list] = {"baseline": [], "absent": []}
    for kind, n, splits in tqdm(TEXT_CASES, desc="text models vs the baseline", file=sys.stderr):
        if most is not None and n > most:
            out["baseline"].append({"kind": kind, "rows": n, "error": f"not run (--text-max-rows {most})"})
            continue
        try:
            found, err = run_module("bench.text_models", "baseline", kind, str(n), str(splits), limit=limit, without=("AWS_ENDPOINT_URL",))
            out["baseline"].append(found if found is not None else {"kind": kind, "rows": n, "error": err})
        except subprocess.TimeoutExpired:
            out["baseline"].append({"kind": kind, "rows": n, "timed_out_after_s": limit})
    for n in tqdm(ABSENT_ROWS, desc="answering without features", file=sys.stderr):
        if most is not None and n > most:
            out["absent"].append({"rows": n, "error": f"not run (--text-max-rows {most})"})
            continue
        try:
            found, err = run_module("bench.text_models", "absent", str(n), limit=limit, without=("AWS_ENDPOINT_URL",))
            out["absent"].append(found if found is not None else {"rows": n, "error": err})
        except subprocess.TimeoutExpired:
            out["absent"].append({"rows": n, "timed_out_after_s": limit})
    return out


def poisoning(limit: float = 3600) -> dict:
    """Poisoning through feedback, swept: backdoor cells and honest corrections on the default model (bench/poisoning.py)."""
    out, err = run_module("bench.poisoning", limit=limit, without=("AWS_ENDPOINT_URL",))
    return out if out is not None else {"error": err}


def history(rows: int = 100_000, limit: float = 900) -> dict:
    """History reads on a table of `rows` records (its own stack; see bench/history.py)."""
    out, err = run_module("bench.history", str(rows), limit=limit)
    return out if out is not None else {"rows": rows, "error": err}


def monitoring(predictions: int = 100_000, limit: float = 300) -> dict:
    """One model monitoring pass over `predictions` (see bench/monitoring.py)."""
    out, err = run_module("bench.monitoring", str(predictions), limit=limit)
    return out if out is not None else {"predictions": predictions, "error": err}


def families(limit: float = 900) -> list[dict]:
    """Every family the trainer can pick, served as a new worker serves it (see bench/families.py)."""
    out, err = run_module("bench.families", limit=limit)
    return out if out is not None else [{"family": "all", "error": err}]


# The champions bench measures beside the wine model, each on a stack of its own (its table as empty as the wine figures'
# was): the real-text family on 1,000 reviews-like rows (bench/training.py), and the big model, trained on the whole
# public file's shape at its full size (bench/reviews.py: 130,000 rows, 14 columns, a cut last line).
CHAMPIONS = {"text": "the real-text family, 1,000 reviews-like rows", "big": "the whole reviews file's shape, 130,000 rows"}


def champion(case: str) -> dict:
    """A champion of `case` pushed, trained and promoted on its own stack, then make up from stopped, the first burst,
    warm single, batch of 1,000 and cold starts through the stack, and the peer on that model."""
    with tempfile.TemporaryDirectory() as state:
        cfg = StackConfig(state_dir=Path(state), emulator_port=free_port(), frontend_port=free_port(),
                          stack_parameters="ThrottleRateLimit=10000,ThrottleBurstLimit=5000")
        Embedded(cfg).up()
        try:
            return _champion(cfg, case)
        finally:
            Embedded(cfg).down()


def _champion(cfg: StackConfig, case: str) -> dict:
    import numpy as np

    sys.path[:0] = [str(ROOT / "services" / "trainer"), str(ROOT / "services" / "contract")]  # bench.training's imports
    from bench.reviews import generate
    from bench.training import reviews
    from sommelier_contract import dataset

    outputs = cfg.stack_info()["outputs"]
    started = time.perf_counter()
    if case == "text":
        body = reviews(1000, np.random.default_rng(0)).to_csv().encode()
    else:  # as a user pushes the download: the cut last line is the one flag
        body = generate(130_000)
    dataset.push(cfg.client("s3"), outputs["DatasetBucketName"], case, body, None, "country", now="bench", skip_bad_rows=case == "big")
    pushed = time.perf_counter()
    trained = Embedded(cfg.model_copy(update={"dataset_prefix": f"datasets/{case}"}))
    version = TrainingResult.parse(trained.trainer_result(["train", "--no-promote"])).version
    train_s = time.perf_counter() - pushed
    trained.trainer_result(["promote", version, "--yes", "--by", "bench", "--why", f"{CHAMPIONS[case]}: its serving figures"])
    Embedded(cfg).down()
    t = time.perf_counter()
    info = Embedded(cfg).up()
    out: dict = {"case": case, "what": CHAMPIONS[case], "csv_mib": round(len(body) / 2**20, 1), "push_s": round(pushed - started, 1),
                 "train_s": round(train_s, 1), "version": version, "make_up_from_stopped_s": round(time.perf_counter() - t, 2)}
    session = requests.Session()
    model = session.get(info["api_url"] + "/model", headers={"x-api-key": info["api_key"]}).json()
    example = model["example"]
    model_bytes = cfg.client("s3").head_object(Bucket=outputs["ModelBucketName"], Key=f"models/{version}/model.onnx")["ContentLength"] \
        if model["serving"].get("runtime") == "onnx" else None
    out |= {"family": model["model"]["name"], "serving": model["serving"], "onnx_mib": model_bytes and round(model_bytes / 2**20, 1)}
    out["first_burst"] = concurrency(info["api_url"], info["api_key"], per_level=160, levels=(16,), example=example)[0]
    out["predictor_memory_after_first_burst"] = snapstart.memory(cfg.state_dir)
    out["warm_single"] = summary(warm_api(session, info["api_url"], info["api_key"], 300, example))
    out["snapstart"] = {"restored": snapstart.restored(info, cfg.state_dir, example, reps=5), "new_version": snapstart.new_version(cfg, info, reps=2)}
    out["batch_1000"] = batches(session, info["api_url"], info["api_key"], example, sizes=((1000, 10),))[0]
    out["cold_start"] = cold_predicts(info, cfg, example, 3)
    out["peer"] = floors.peer(info, cfg, example)
    return out


def serving(runtime: type[Runtime] = Embedded) -> dict:
    """The figures of a running stack (`runtime`'s): make up, warm single against its floor, the floors' parts, batches,
    concurrency, the peer, cold start, and a profile of the slowest path; on the embedded runtime, the champions too."""
    results: dict = {}
    with tempfile.TemporaryDirectory() as state:
        # the usage plan's default (50 requests a second, bursts of 100) would throttle the bench, not measure the stack
        cfg = StackConfig(state_dir=Path(state), emulator_port=free_port(), frontend_port=free_port(),
                          stack_parameters="ThrottleRateLimit=10000,ThrottleBurstLimit=5000")
        t = time.perf_counter()
        info = runtime(cfg).up()
        results["make_up"] = {"fresh_s": round(time.perf_counter() - t, 2)}
        try:
            # five times: make up from stopped, then the first burst, as a user's would come right after it (160
            # requests, 16 at a time); issue 39's target holds in 5 of 5 runs, so one good run proves nothing
            results["first_bursts"] = []
            for run in range(1, 6):
                runtime(cfg).down()
                t = time.perf_counter()
                info = runtime(cfg).up()
                up_s = round(time.perf_counter() - t, 2)
                workers_before = snapstart.memory(cfg.state_dir)
                burst = concurrency(info["api_url"], info["api_key"], per_level=160, levels=(16,))[0]
                results["first_bursts"].append({"run": run, "make_up_from_stopped_s": up_s, **burst, "workers_before": workers_before,
                                                "predictor_memory_after": snapstart.memory(cfg.state_dir)})
                print(f"first burst {run}/5: make up from stopped {up_s} s, p99 {burst.get('p99_ms')} ms", file=sys.stderr, flush=True)
            results["first_burst"] = max(results["first_bursts"], key=lambda b: b.get("p99_ms") or 1e9)  # the worst of the five
            results["make_up"]["from_stopped_s"] = sorted(b["make_up_from_stopped_s"] for b in results["first_bursts"])[2]  # median
            session = requests.Session()
            api = warm_api(session, info["api_url"], info["api_key"], 1000)
            results["health_api"] = health_api(session, info["api_url"])
            floor_ms, in_process_cold = in_process_floor(info, cfg, 1000)
            results["warm_single"] = {"api": summary(api), "in_process_floor": summary(floor_ms),
                                      "ratio_p50": round(pct(api, 50) / pct(floor_ms, 50), 2)}
            # SnapStart (issue 51): a worker forked for a request, and a newly published version's first request
            results["snapstart"] = {"restored": snapstart.restored(info, cfg.state_dir, EXAMPLE), "new_version": snapstart.new_version(cfg, info)}
            # the parts, measured while the emulator's state is what it was for the figures above
            trivial_url = floors.trivial_api(cfg)
            results["floors"] = {"parts": floors.in_process_parts(info, cfg, EXAMPLE), "transport": floors.transport(trivial_url, EXAMPLE)}
            # the same split for the emulator alone: the constant function behind its own API, 16 of its workers warm
            results["cpu_per_request_c16_trivial"] = cpu.split(lambda: floors.burst(trivial_url, EXAMPLE, 320))
            results["batch"] = batches(session, info["api_url"], info["api_key"])
            results["concurrency"] = concurrency(info["api_url"], info["api_key"])
            # where a request's CPU goes at concurrency 16 (the first burst's bound on 2 cores)
            results["cpu_per_request_c16"] = cpu.split(
                lambda: concurrency(info["api_url"], info["api_key"], per_level=320, levels=(16,))[0]["requests"])
            results["peer"] = floors.peer(info, cfg, EXAMPLE)
            results["cold_start"] = {**cold_start(info, cfg), "in_process_import_load_first_predict_ms": round(in_process_cold, 1)}
            results["profile_batch_1000"] = profile_batch()
        finally:
            runtime(cfg).down(purge=True)  # compose: the emulator's state volume and the stack's shared folder too
    if runtime is not Embedded:
        return results
    # in a process of its own (run_module): a stack started from this one after in_process_floor inherited its settings,
    # the first stack's endpoint among them, and its warm single read 59 ms, not 10-12 ms
    for case in CHAMPIONS:
        out, err = run_module("bench.run", "--champion", case, limit=1800)
        results[f"{case}_champion"] = out if out is not None else {"case": case, "error": err}
    return results


def save(results: dict, show: bool = True) -> None:
    """latest.json, and the report written from it (latest.md, latest.png); `show` prints latest.md."""
    from bench.report import write

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latest.json").write_text(json.dumps(results, indent=2))
    write(results, OUT)
    if show:
        print((OUT / "latest.md").read_text())


def main() -> None:
    if "--champion" in sys.argv:  # serving()'s champions, each measured in a process of its own
        print(json.dumps(champion(sys.argv[sys.argv.index("--champion") + 1])))
        return
    parts = {"--families-only": ("families", families), "--training-only": ("training", training_scaling),
             "--text-only": ("text_models", text_models), "--poisoning-only": ("poisoning", poisoning),
             "--history-only": ("history", history), "--monitoring-only": ("monitoring", monitoring)}
    if any(flag in sys.argv for flag in parts):  # re-measure a part; the rest of latest.json stays
        results = json.loads((OUT / "latest.json").read_text())
        for flag, (key, measure) in parts.items():
            if flag in sys.argv:
                results[key] = measure()
                results[f"{key}_when"] = datetime.now(UTC).isoformat(timespec="seconds")
        save(results, show=False)
        return
    if "--compose" in sys.argv:  # the compose stack's serving (the predictor image behind API Gateway); the rest stays
        results = json.loads((OUT / "latest.json").read_text())
        results["compose"] = {**serving(Compose), "when": datetime.now(UTC).isoformat(timespec="seconds")}
        save(results)
        return
    results: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}}
    if "--serving-only" in sys.argv:  # re-measure the stack's figures; training, history and monitoring stay
        results = {**json.loads((OUT / "latest.json").read_text()), "machine": results["machine"],
                   "serving_when": datetime.now(UTC).isoformat(timespec="seconds")}
        results.update(serving())
        results["packages_mib"] = floors.package_sizes()
        save(results)
        return
    results.update(serving())
    results["packages_mib"] = floors.package_sizes()
    results["families"] = families()
    results["training"] = training_scaling()
    results["text_models"] = text_models()
    results["poisoning"] = poisoning()
    results["history"] = history()
    results["monitoring"] = monitoring()
    results["repo"] = repo_timings(fresh_clone="--fresh-clone" in sys.argv, test_suite="--make-test" in sys.argv)
    save(results)


if __name__ == "__main__":
    main()

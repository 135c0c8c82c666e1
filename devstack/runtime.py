"""One interface for the two ways the stack runs on a developer machine.

`Runtime` is what every make target talks to: up / down / status / logs / train / info.
`Embedded` (MiniStack as a local process) and `Compose` (docker-compose against Docker or
Podman) implement the parts that differ; what reads the running stack through its AWS APIs
(function logs, the champion, readiness) is shared here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import requests
from botocore.exceptions import BotoCoreError, ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from devstack.config import StackConfig
from hooklib import write_stack_info
from sommelier_contract.pointers import Champion, read_champion
from sommelier_contract.results import TrainingResult

log = logging.getLogger("devstack")


class StackError(RuntimeError):
    """Something the user must act on; the message says what and how."""


class AlreadyReported(StackError):
    """A child process already printed why it failed; exit with its code and add nothing."""

    def __init__(self, exit_code: int):
        super().__init__(f"exit {exit_code}")
        self.exit_code = exit_code


def free_port() -> int:
    """A port nothing listens on now (for a stack of its own: tests, bench, the deploy rehearsal)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Bounded polling with a clear failure message; returns what `check` returned."""
    try:
        for attempt in Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(interval), retry=retry_if_exception_type(Exception),
                                reraise=True):
            with attempt:
                return check()
    except Exception as err:
        raise StackError(f"{what} did not become ready within {timeout:.0f}s: {err}") from err


def http_ok(url: str, timeout: float = 2) -> requests.Response:
    resp = requests.get(url, timeout=timeout)
    resp.raise_for_status()
    return resp


class WarmUpFailed(Exception):
    """A warm-up call that reached the function but did not warm a worker (an error, or no worker named)."""


WARM_ERRORS = (requests.RequestException, BotoCoreError, ClientError, WarmUpFailed)


def warm_workers(call: Callable[[], str], workers: int, wave: int = 0, budget: float = 180) -> list[float]:
    """Up to `workers` warm workers, each `call` naming the worker that answered it (a call holds its worker a moment,
    so the calls of one wave cannot share workers). Waves a machine can take: each releases one more batch of `wave`
    calls (default: twice the cores) than the last, all at once, so the workers already warm take one each and only
    `wave` new ones start (import, load) at a time; with all 16 at once a loaded machine took longer than the emulator's
    30 s Lambda timeout. A wave answered by fewer distinct workers than its calls (two calls met one worker) goes again:
    issue 39 found `make up` left 9 of 16 workers warm, and the first burst started the other 7 (p99 4.2 s). A call that
    fails (a 502 while a worker starts) is retried until `budget` seconds have passed; what still fails then ends the
    warm-up with a warning: the stack works, only fewer workers are warm. Returns the last wave's seconds per call."""
    wave = wave or 2 * (os.cpu_count() or 1)
    deadline = time.monotonic() + budget
    seconds: list[float] = []

    def one(gate: threading.Barrier) -> tuple[str, float]:
        gate.wait(timeout=30)
        started = time.perf_counter()
        for attempt in Retrying(stop=stop_after_delay(max(deadline - time.monotonic(), 0)), wait=wait_fixed(0.5),
                                retry=retry_if_exception_type(WARM_ERRORS), reraise=True):
            with attempt:
                worker = call()
        return worker, time.perf_counter() - started

    started = time.perf_counter()
    sizes = sorted({min(n, workers) for n in range(wave, workers + wave, wave)})
    while sizes:
        size = sizes[0]
        gate = threading.Barrier(size)
        with ThreadPoolExecutor(size) as pool:
            futures = [pool.submit(one, gate) for _ in range(size)]
            failed = next((f.exception() for f in futures if f.exception()), None)
        if failed is not None:
            log.warning("warm-up stopped at a wave of %d of %d workers (%s); the stack works, and the first requests start "
                        "the workers not yet warm", size, workers, failed)
            return seconds
        answered = [f.result() for f in futures]
        distinct = len({w for w, _ in answered})
        if distinct < size and time.monotonic() < deadline:
            log.info("a wave of %d calls met %d workers; again", size, distinct)
            continue
        seconds = [s for _, s in answered]
        sizes.pop(0)
    log.info("warmed %d predictor workers in waves of %d in %.1f s (slowest call %.1f s)", workers, wave,
             time.perf_counter() - started, max(seconds, default=0))
    return seconds


DISK_LOW_MIB = 64  # below this much free room for the emulator's state, `make status` says the disk is full


def disk_status(state_dir: Path) -> str:
    """The room left for the stack's state, in words: `make status` names a full disk (the emulator then refuses the
    writes it cannot keep, and the API answers 503 record_failed saying why)."""
    try:
        usage = shutil.disk_usage(state_dir)
    except OSError as err:
        return f"the state folder {state_dir} cannot be read ({err})"
    free = usage.free / 2**20
    if free < DISK_LOW_MIB:
        return (f"FULL: {free:.1f} MiB free on the disk of {state_dir}; the emulator refuses writes it cannot keep (the API "
                f"answers 503 record_failed): free some space there")
    return f"{free:.0f} MiB free for the state in {state_dir}"


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def engine_answers(env: dict[str, str] | None = None) -> bool:
    """A Docker API answers (Docker itself, or Podman's socket through DOCKER_HOST in `env`)."""
    env = env or dict(os.environ)
    if shutil.which("docker"):
        return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=30).returncode == 0
    return docker_api_pings(env.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://"))


def docker_api_pings(socket_path: str, timeout: float = 5) -> bool:
    """GET /_ping on a Docker API socket answers 200 (Python's own socket: a machine without curl has no engine to
    find, and must not crash looking for one)."""
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(socket_path)
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = conn.recv(64).split(b"\r\n", 1)[0].split()
    except OSError:
        return False
    return len(status) >= 2 and status[1] == b"200"


def container_cli() -> str:
    """The CLI that builds, inspects and pushes images: podman where installed (its socket serves compose), else docker."""
    return "podman" if shutil.which("podman") else "docker"


def image_exists(image: str) -> bool:
    """Whether `image` is in local storage (nothing is pulled)."""
    return bool(image) and subprocess.run([container_cli(), "image", "inspect", image], capture_output=True).returncode == 0


def refuse_taken_ports(cfg: StackConfig) -> None:
    """Before a stack starts: its ports must be free, or the user is told which and how to choose others."""
    for name, port in (("emulator", cfg.emulator_port), ("frontend", cfg.frontend_port)):
        if port_in_use(port):
            raise StackError(f"port {port} ({name}) is already in use by another process. Stop it (`ss -ltnp | grep :{port}` "
                             f"shows which) or choose another port: `make up {name.upper()}_PORT=<port>`")


class Runtime(ABC):
    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, cfg: StackConfig):
        self.cfg = cfg

    # --- what differs between runtimes -------------------------------------------------------
    @abstractmethod
    def start(self) -> dict[str, Any]:
        """Bring the stack up and provision it; returns stack.json's content as the hooks wrote it."""

    @abstractmethod
    def down(self, purge: bool = False) -> bool:
        """Stop what `up` started; state is kept unless `purge`. False when nothing was running."""

    @abstractmethod
    def running(self) -> bool:
        """Whether this runtime's processes or containers are up (not whether they answer)."""

    @abstractmethod
    def processes(self) -> str:
        """The runtime's own view of its processes or containers, for `make status`."""

    @abstractmethod
    def service_logs(self, lines: int) -> list[tuple[str, str]]:
        """(service name, its last lines) for the emulator and the frontend."""

    @abstractmethod
    def trainer(self, args: list[str]) -> str:
        """Run the trainer CLI (`python -m trainer ARGS`) against the stack; its progress goes to
        stderr as it happens, its result (JSON on stdout) is returned."""

    # --- shared ---------------------------------------------------------------------------------
    def trainer_result(self, args: list[str]) -> Any:
        """The trainer CLI's JSON result; an empty one is an error that says so, not a JSON traceback."""
        out = self.trainer(args)
        if not out.strip():
            raise StackError(f"the trainer printed no result for `{' '.join(args)}`; its messages are above")
        return json.loads(out)

    def up(self) -> dict[str, Any]:
        info = self.start()
        self.record(info)
        self.ensure_model()
        self.warm()
        return self.cfg.stack_info()

    def record(self, info: dict[str, Any]) -> None:
        """Write stack.json with the runtime and ports added, so later commands need no flags."""
        doc = {**info, "runtime": self.name, "emulator_port": self.cfg.emulator_port, "frontend_port": self.cfg.frontend_port,
               "frontend_url": self.cfg.frontend_url}
        write_stack_info(self.cfg.stack_info_file, doc)

    def emulator_answers(self) -> bool:
        try:
            http_ok(f"{self.cfg.endpoint}/_ministack/health", timeout=2)
            return True
        except requests.RequestException:
            try:  # LocalStack's image
                http_ok(f"{self.cfg.endpoint}/_localstack/health", timeout=2)
                return True
            except requests.RequestException:
                return False

    def require_running(self) -> dict[str, Any]:
        """stack.json of a stack that is up and answering, or a one-line StackError saying how to start it."""
        ports = f"EMULATOR_PORT={self.cfg.emulator_port}"
        if not self.running() or not self.cfg.stack_info_file.exists():
            raise StackError(f"no Sommelier stack is running ({self.name} runtime, {ports}); start it with `make up`")
        if not self.emulator_answers():
            raise StackError(f"the {self.name} stack's emulator does not answer on {self.cfg.endpoint}; "
                             f"`make status` shows why, `make down && make up` restarts it")
        return self.cfg.stack_info()

    def aws(self, service: str, **config: Any):
        """A boto3 client for the running stack's emulator."""
        return self.cfg.client(service, retries={"max_attempts": 2}, **config)

    def champion(self) -> Champion | None:
        return read_champion(self.aws("s3"), self.cfg.stack_info()["outputs"]["ModelBucketName"])

    def served_champion(self) -> str | None:
        """The champion's version when the predictor already serves it (it verified the artifacts when it loaded them),
        else None: a stack that is up needs no trainer run to know its model is there."""
        champion = self.champion()
        if not champion:
            return None
        try:
            body = self.health()  # a cold worker's start here is one warm() would pay anyway
        except (requests.RequestException, ValueError):
            return None
        return champion.version if body.get("status") == "ok" and body.get("model_version") == champion.version else None

    def ensure_model(self) -> None:
        log.info("making sure a model is promoted")
        served = self.served_champion()
        if served:
            log.info("champion %s is promoted and served", served)
            return
        result = TrainingResult.parse(self.trainer_result(["train", "--if-no-champion"]))
        if result.reason == "champion exists":
            log.info("champion %s is promoted", result.version)
        else:
            log.info("%s %s: %s", "promoted" if result.promoted else "not promoted", result.version, result.reason)

    def health(self) -> dict[str, Any]:
        """GET /health through API Gateway, as a user calls it."""
        return http_ok(f"{self.cfg.stack_info()['api_url']}/health", timeout=30).json()

    def warm(self) -> None:
        """Call the function until it serves the champion, so the first request after `ready` is warm."""
        champion = self.champion()
        want = champion.version if champion else None

        def serving() -> dict[str, Any]:
            body = self.health()
            assert body.get("model_version") == want, (f"/health reports model {body.get('model_version')}, champion is {want}"
                                                       + (f" ({body['reason']})" if body.get("reason") else ""))
            return body

        log.info("warming the predictor function (loading model %s)", want)
        wait_until("the predictor function", serving, self.cfg.ready_timeout_seconds, interval=0.5)
        if self.cfg.warm_workers > 1 and self.snapstart():
            log.info("the predictor's live version uses SnapStart: each new worker is restored from its snapshot when a "
                     "request needs one, so no pool is warmed")
        elif self.cfg.warm_workers > 1:
            self.warm_pool(self.cfg.warm_workers)

    def snapstart(self) -> bool:
        """Whether the API's predictor version (the `live` alias) is restored from a SnapStart snapshot."""
        name = self.cfg.stack_info()["outputs"]["PredictorFunctionName"]
        conf = self.aws("lambda").get_function_configuration(FunctionName=name, Qualifier="live")
        return (conf.get("SnapStart") or {}).get("OptimizationStatus") == "On"

    def warm_pool(self, workers: int, hold_ms: int = 250) -> list[float]:
        """Start `workers` predictor workers (in AWS, provisioned concurrency does this; see the README): direct
        invocations of the alias the API calls (`live`: the same workers), each holding its worker `hold_ms`."""
        lam = self.aws("lambda", read_timeout=120, max_pool_connections=workers)  # one connection per call of a wave
        name = self.cfg.stack_info()["outputs"]["PredictorFunctionName"]
        payload = json.dumps({"sommelier_warmup": {"hold_ms": hold_ms}}).encode()

        def call() -> str:
            resp = lam.invoke(FunctionName=name, Qualifier="live", Payload=payload)
            body = json.loads(resp["Payload"].read() or b"null")
            if resp.get("FunctionError") or not isinstance(body, dict) or not body.get("worker"):
                raise WarmUpFailed(f"the warm-up call answered {str(body)[:200]}")
            return str(body["worker"])

        return warm_workers(call, workers, budget=3 * self.cfg.ready_timeout_seconds)

    def train_task(self) -> int:
        """`make train-task` on this stack: the trainer image as the template's ECS task, where the runtime runs containers."""
        raise StackError(f"the {self.name} stack runs no containers, so it has no ECS training task: `make train` trains here; "
                         "`make up STACK=compose` runs the trainer image as the task (Docker or Podman)")

    def refresh_seconds(self) -> float:
        """How long the predictor may keep serving its cached champion (its CHAMPION_REFRESH_SECONDS)."""
        name = self.cfg.stack_info()["outputs"]["PredictorFunctionName"]
        conf = self.aws("lambda").get_function_configuration(FunctionName=name)
        return float(conf.get("Environment", {}).get("Variables", {}).get("CHAMPION_REFRESH_SECONDS", "30"))

    def function_log_events(self, start_ms: int | None = None, limit: int = 10000) -> list[dict[str, Any]]:
        group = self.cfg.stack_info()["outputs"]["PredictorLogGroupName"]
        client = self.aws("logs")
        kwargs: dict[str, Any] = {"logGroupName": group, "limit": limit}
        if start_ms is not None:
            kwargs["startTime"] = start_ms
        try:
            events = client.filter_log_events(**kwargs).get("events", [])
        except client.exceptions.ResourceNotFoundException:
            return []  # no invocation has logged yet
        return sorted(events, key=lambda e: (e["timestamp"], e.get("eventId", "")))

    def function_logs(self, limit: int = 50) -> list[str]:
        return [e["message"].rstrip() for e in self.function_log_events()[-limit:]]

    def _why_no_api(self) -> str:
        """When the emulator answers but the API does not: is the stack itself gone (an emulator that came back without its state)?"""
        if not self.emulator_answers():
            return ""
        try:
            self.aws("cloudformation").describe_stacks(StackName=self.cfg.stack_name)
        except ClientError:
            return "; the emulator no longer has the stack: `make up` provisions it again (the buckets' data is kept)"
        except (BotoCoreError, requests.RequestException):
            return ""
        return "; the stack exists: see `make logs`"

    def status(self) -> str:
        if not self.running():
            return f"not running ({self.name} runtime; start it with `make up`)"
        lines = [f"running: {self.description}",
                 f"  emulator   {self.cfg.endpoint:<32} {'answers' if self.emulator_answers() else 'DOES NOT ANSWER'}"]
        try:
            http_ok(f"{self.cfg.frontend_url}/healthz")
            frontend = "answers"
        except requests.RequestException:
            frontend = "DOES NOT ANSWER"
        lines.append(f"  frontend   {self.cfg.frontend_url:<32} {frontend}")
        try:
            body = self.health()
            api = f"{body.get('status')}, serving model {body.get('model_version')}" + (f" ({body['reason']})" if body.get("reason") else "")
        except (requests.RequestException, OSError, KeyError, ValueError) as err:
            api = f"DOES NOT ANSWER ({type(err).__name__})" + self._why_no_api()
        lines.append(f"  API        /health: {api}")
        lines.append(f"  disk       {disk_status(self.cfg.state_dir)}")
        kept = sorted((self.cfg.state_dir / "emulator").glob("dynamodb-journal.unreadable-*.jsonl"))
        if kept:  # the emulator's recovery skipped a line it could not read: a person should know, not only its log
            lines.append(f"  journal    a restart skipped unreadable DynamoDB journal line(s); the journal as found: {kept[-1]} "
                         f"({len(kept)} such restart(s); `make logs` says which lines)")
        lines += ["", self.processes()]
        return "\n".join(lines)


def champion_example(info: dict[str, Any]) -> dict[str, Any] | None:
    """The champion's own example record (GET /model), for a "Try it" that the model takes whatever its dataset."""
    try:
        reply = requests.get(f"{info['api_url']}/model", headers={"x-api-key": info["api_key"]}, timeout=10)
        return reply.json().get("example") if reply.ok else None
    except (requests.RequestException, ValueError):
        return None


def summary(info: dict[str, Any], runtime: Runtime) -> str:
    key = info["api_key"]
    example = champion_example(info)
    body = "@examples/predict.json" if example is None else "'" + json.dumps({"features": example}).replace("'", "'\\''") + "'"
    ports = "" if (runtime.cfg.emulator_port, runtime.cfg.frontend_port) == (4566, 8080) else \
        f"   (ports {runtime.cfg.emulator_port}/{runtime.cfg.frontend_port}, recorded: later commands need no flags)"
    return f"""
Sommelier is up ({runtime.description}).{ports}

  API base URL   {info['api_url']}
  demo API key   {key}
  frontend       {runtime.cfg.frontend_url}
  AWS endpoint   {info['aws_endpoint']}   (region {info['region']}; any access key works)

Try it:
  curl -s {info['api_url']}/health
  curl -s -X POST {info['api_url']}/predict -H 'x-api-key: {key}' \\
       -H 'content-type: application/json' -d {body}
  .venv/bin/sommelier predict --example

Status: make status   Logs: make logs   Metrics: make metrics   Models: make history   Stop: make down
Connection details: {runtime.cfg.stack_info_file}
"""


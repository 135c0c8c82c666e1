"""`make up` / `make down` / `make logs` for the embedded runtime.

up: start supervisord (emulator), wait until healthy, run localstack-init/ready.d hooks
exactly as LocalStack would, train a first model if none is promoted, start the frontend,
and print how to use the stack. Every step is idempotent, so a second `up` only checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from devstack.config import StackConfig
from devstack.supervisor import Supervisor

log = logging.getLogger("devstack")


class StackError(RuntimeError):
    """Something the user must act on; the message says what and how."""


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _exclusive(cfg: StackConfig) -> Iterator[None]:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.state_dir / "up.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise StackError(f"another `make up` or `make down` is working on {cfg.state_dir}; wait for it to finish") from err
        yield


def _wait_until(what: str, check, timeout: float) -> None:
    """Bounded polling with a clear failure message."""
    try:
        for attempt in Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.2), retry=retry_if_exception_type(Exception), reraise=True):
            with attempt:
                check()
    except Exception as err:
        raise StackError(f"{what} did not become ready within {timeout:.0f}s: {err}") from err


def _http_ok(url: str) -> None:
    requests.get(url, timeout=2).raise_for_status()


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def run_hooks(cfg: StackConfig) -> None:
    hooks = sorted((cfg.root / "localstack-init" / "ready.d").iterdir())
    env = {**os.environ, **cfg.hook_env()}
    for hook in hooks:
        if hook.suffix == ".py":
            cmd = [sys.executable, str(hook)]
        elif hook.suffix == ".sh":
            cmd = ["bash", str(hook)]
        else:
            continue
        log.info("hook %s", hook.name)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        with open(cfg.logs_dir / "init.log", "a") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise StackError(f"init hook {hook.name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def trainer_env(cfg: StackConfig) -> dict[str, str]:
    outputs = cfg.stack_info()["outputs"]
    return {
        **os.environ,
        **cfg.aws_env(),
        "PYTHONPATH": str(cfg.root / "services" / "trainer"),
        "DATASET_BUCKET": outputs["DatasetBucketName"],
        "DATASET_PREFIX": cfg.dataset_prefix,
        "MODEL_BUCKET": outputs["ModelBucketName"],
    }


def train(cfg: StackConfig, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "trainer", *(args or ("train",))], env=trainer_env(cfg))
    if proc.returncode != 0:
        raise StackError(f"the trainer failed (exit {proc.returncode}); see the messages above")


def up(cfg: StackConfig) -> dict:
    started = time.perf_counter()
    sup = Supervisor(cfg)
    with _exclusive(cfg):
        pid = sup.pid()
        if pid:
            log.info("the embedded stack is already running (supervisord pid %d); checking it", pid)
        else:
            for name, port in (("emulator", cfg.emulator_port), ("frontend", cfg.frontend_port)):
                if port_in_use(port):
                    raise StackError(
                        f"port {port} ({name}) is already in use by another process. Stop it (`ss -ltnp | grep :{port}` shows which) "
                        f"or choose another port: `make up {name.upper()}_PORT=<port>`"
                    )
            log.info("starting the emulator (MiniStack) on %s", cfg.endpoint)
            sup.start()
        sup.ctl("start", "emulator")
        try:
            _wait_until("the emulator", lambda: _http_ok(f"{cfg.endpoint}/_ministack/health"), cfg.ready_timeout_seconds)
        except StackError as err:
            raise StackError(f"{err}\nlast lines of {cfg.logs_dir / 'emulator.log'}:\n{tail(cfg.logs_dir / 'emulator.log')}") from err
        log.info("provisioning (localstack-init/ready.d)")
        run_hooks(cfg)
        log.info("making sure a model is promoted")
        train(cfg, "train", "--if-no-champion")
        sup.ctl("start", "frontend")
        try:
            _wait_until("the frontend", lambda: _http_ok(f"{cfg.frontend_url}/healthz"), cfg.ready_timeout_seconds)
        except StackError as err:
            raise StackError(f"{err}\nlast lines of {cfg.logs_dir / 'frontend.log'}:\n{tail(cfg.logs_dir / 'frontend.log')}") from err
    info = cfg.stack_info()
    log.info("ready in %.1fs", time.perf_counter() - started)
    return info


def down(cfg: StackConfig) -> bool:
    """Stop every process `up` started. Returns False when nothing was running."""
    sup = Supervisor(cfg)
    with _exclusive(cfg):
        pid = sup.pid()
        if not pid:
            return False
        # supervisord stops its programs (the emulator saves its state on SIGTERM), then exits.
        sup.ctl("shutdown", check=False)

        def gone() -> None:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            raise RuntimeError(f"supervisord (pid {pid}) is still running")

        _wait_until("shutdown", gone, 60)
        for port in (cfg.emulator_port, cfg.frontend_port):
            if port_in_use(port):
                raise StackError(f"port {port} is still in use after shutdown; see {cfg.logs_dir}")
        return True


def status(cfg: StackConfig) -> str:
    sup = Supervisor(cfg)
    if not sup.pid():
        return "the embedded stack is not running (start it with `make up`)"
    return sup.ctl("status", check=False).stdout.rstrip()


def function_logs(cfg: StackConfig, limit: int = 50) -> list[str]:
    info = cfg.stack_info()
    client = boto3.client("logs", endpoint_url=cfg.endpoint, region_name=cfg.region,
                          aws_access_key_id="test", aws_secret_access_key="test")
    group = info["outputs"]["PredictorLogGroupName"]
    events = client.filter_log_events(logGroupName=group, limit=10000).get("events", [])
    return [e["message"].rstrip() for e in sorted(events, key=lambda e: e["timestamp"])[-limit:]]


def summary(info: dict, frontend_url: str, runtime: str, info_file: Path | str = ".sommelier/stack.json") -> str:
    key, endpoint = info["api_key"], info["aws_endpoint"]
    return f"""
Sommelier is up ({runtime}).

  API base URL   {info['api_url']}
  demo API key   {key}
  frontend       {frontend_url}
  AWS endpoint   {endpoint}   (region {info['region']}; any access key works)

Try it:
  curl -s {info['api_url']}/health
  curl -s -X POST {info['api_url']}/predict -H 'x-api-key: {key}' \\
       -H 'content-type: application/json' -d @examples/predict.json
  .venv/bin/sommelier predict --example

Logs: make logs      Metrics: make metrics      Stop: make down      Connection details: {info_file}
"""

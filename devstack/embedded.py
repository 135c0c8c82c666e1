"""The embedded runtime: MiniStack and the frontend as local processes under supervisord.

up: start supervisord (emulator), wait until healthy, run localstack-init/ready.d hooks
exactly as LocalStack would, then (shared with every runtime) train a first model if none
is promoted and warm the function. Every step is idempotent, so a second `up` only checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from devstack.config import StackConfig
from devstack.runtime import AlreadyReported, Runtime, StackError, http_ok, log, port_in_use, refuse_taken_ports, tail, wait_until
from devstack.supervisor import Supervisor, alive


@contextlib.contextmanager
def _exclusive(cfg: StackConfig) -> Iterator[None]:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.state_dir / "up.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise StackError(f"another `make up` or `make down` is working on {cfg.state_dir}; wait for it to finish") from err
        yield


# The hooks run in one child process, in order, each as its own script would (`__main__`): one interpreter and one boto3
# import instead of one per hook (~0.5 s each on 2 cores, issue 39's `make up` budget). A hook that fails ends the run
# with its exit code and a last line naming it.
HOOK_RUNNER = """import runpy, subprocess, sys, time, traceback
for hook in sys.argv[1:]:
    started = time.perf_counter()
    print(f"hook {hook.rsplit('/', 1)[-1]}", file=sys.stderr, flush=True)
    try:
        if hook.endswith(".sh"):
            subprocess.run(["bash", hook], check=True)
        else:
            runpy.run_path(hook, run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except subprocess.CalledProcessError as failed:
        code = failed.returncode
    except BaseException:
        traceback.print_exc()
        code = 1
    if code:
        print(f"init hook {hook.rsplit('/', 1)[-1]} failed (exit {code})", file=sys.stderr, flush=True)
        sys.exit(code)
    print(f"hook {hook.rsplit('/', 1)[-1]} took {time.perf_counter() - started:.2f} s", file=sys.stderr, flush=True)
"""


def run_hooks(cfg: StackConfig) -> None:
    hooks = [str(h) for h in sorted((cfg.root / "localstack-init" / "ready.d").iterdir()) if h.suffix in (".py", ".sh")]
    log.info("hooks %s", ", ".join(h.rsplit("/", 1)[-1] for h in hooks))
    proc = subprocess.run([sys.executable, "-c", HOOK_RUNNER, *hooks], env={**os.environ, **cfg.hook_env()}, capture_output=True,
                          text=True)
    with open(cfg.logs_dir / "init.log", "a") as f:
        f.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise StackError(f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'the init hooks failed'}:\n"
                         f"{proc.stderr[-3000:]}")


def trainer_env(cfg: StackConfig) -> dict[str, str]:
    outputs = cfg.stack_info()["outputs"]
    return {
        **os.environ,
        **cfg.aws_env(),
        "PYTHONPATH": f"{cfg.root / 'services' / 'trainer'}:{cfg.root / 'services' / 'contract'}",
        "DATASET_BUCKET": outputs["DatasetBucketName"],
        "DATASET_PREFIX": cfg.dataset_prefix,
        "MODEL_BUCKET": outputs["ModelBucketName"],
        "MODEL_SIGNING_KEY": outputs["ModelSigningKeyAlias"],
    }


class Embedded(Runtime):
    name = "embedded"
    description = "embedded runtime: MiniStack as a local process, no containers"

    def __init__(self, cfg: StackConfig):
        super().__init__(cfg)
        self.supervisor = Supervisor(cfg)

    def running(self) -> bool:
        return self.supervisor.pid() is not None

    def start(self) -> dict[str, Any]:
        cfg, sup = self.cfg, self.supervisor
        with _exclusive(cfg):
            pid = sup.pid()
            if pid and sup.running_port() not in (None, cfg.emulator_port):
                raise StackError(f"the embedded stack of {cfg.state_dir} already runs on port {sup.running_port()}, not "
                                 f"{cfg.emulator_port}: `make up EMULATOR_PORT={sup.running_port()}`, or `make down` first")
            if pid:
                log.info("the embedded stack is already running (supervisord pid %d); checking it", pid)
                sup.ctl("start", "emulator", "frontend")  # either may have been stopped by hand
            else:
                refuse_taken_ports(cfg)
                self._drop_worker_dirs()  # a stack that was killed leaves its workers' folders
                log.info("starting the emulator (MiniStack) on %s", cfg.endpoint)
                # both at once: the frontend reads the stack's details per request (a 503 for config.js until hook
                # 30 has written them), so it need not wait for the hooks (~1.5 s of `make up`, issue 39)
                sup.start()
            try:
                wait_until("the emulator", lambda: http_ok(f"{cfg.endpoint}/_ministack/health"), cfg.ready_timeout_seconds)
            except StackError as err:
                raise StackError(f"{err}\nlast lines of {cfg.logs_dir / 'emulator.log'}:\n{tail(cfg.logs_dir / 'emulator.log')}") from err
            log.info("provisioning (localstack-init/ready.d)")
            run_hooks(cfg)
            try:
                wait_until("the frontend", lambda: http_ok(f"{cfg.frontend_url}/healthz"), cfg.ready_timeout_seconds)
            except StackError as err:
                raise StackError(f"{err}\nlast lines of {cfg.logs_dir / 'frontend.log'}:\n{tail(cfg.logs_dir / 'frontend.log')}") from err
        return cfg.stack_info()

    def down(self, purge: bool = False) -> bool:
        """`purge` is the caller's: the state lives in cfg.state_dir, which `make clean` deletes."""
        sup = self.supervisor
        with _exclusive(self.cfg):
            pid = sup.pid()
            if not pid:
                return False
            # supervisord stops its programs (the emulator saves its state on SIGTERM), then exits.
            sup.ctl("shutdown", check=False)

            def gone() -> None:
                if alive(pid):
                    raise RuntimeError(f"supervisord (pid {pid}) is still running")

            wait_until("shutdown", gone, 60)
            self._drop_worker_dirs()
            for port in (self.cfg.emulator_port, self.cfg.frontend_port):
                if port_in_use(port):
                    raise StackError(f"port {port} is still in use after shutdown; see {self.cfg.logs_dir}")
            return True

    def _drop_worker_dirs(self) -> None:
        """Remove the folders MiniStack unpacks each Lambda worker's code into; it leaves all but one per function
        behind when it stops (15 a `make up` with a warm pool of 16). Only while it is not running."""
        for folder in (self.cfg.state_dir / "tmp").glob("ministack-lambda-*"):
            shutil.rmtree(folder, ignore_errors=True)

    def processes(self) -> str:
        return self.supervisor.ctl("status", check=False).stdout.rstrip()

    def service_logs(self, lines: int) -> list[tuple[str, str]]:
        return [(f"{name} ({self.cfg.logs_dir / f'{name}.log'})", tail(self.cfg.logs_dir / f"{name}.log", lines))
                for name in ("emulator", "frontend")]

    def trainer(self, args: list[str]) -> str:
        proc = subprocess.run([sys.executable, "-m", "trainer", *args], env=trainer_env(self.cfg), stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise AlreadyReported(proc.returncode)
        return proc.stdout

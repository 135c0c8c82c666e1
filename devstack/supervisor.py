"""supervisord runs the long-lived processes of the embedded stack: the emulator and the frontend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack.config import StackConfig

BIN = Path(sys.executable).parent


def alive(pid: int) -> bool:
    """Whether `pid` is a running process: a killed one stays a zombie until its parent reaps it, and `kill(pid, 0)`
    still succeeds on a zombie, so its state in /proc decides (where there is a /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].split(" ", 1)[0] not in {"Z", "X"}


def _env(pairs: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in pairs.items())


def emulator_env(cfg: StackConfig) -> dict[str, str]:
    data = cfg.state_dir / "emulator"
    return {
        "GATEWAY_PORT": str(cfg.emulator_port),
        "BIND_HOST": "127.0.0.1",
        "PERSIST_STATE": "1",
        "STATE_DIR": str(data),
        "S3_PERSIST": "1",
        "S3_DATA_DIR": str(data / "s3"),
        "LAMBDA_EXECUTOR": "local",
        "LAMBDA_WARM_TTL_SECONDS": str(cfg.warm_idle_seconds),  # idle workers beyond the first are reaped after this
        "MINISTACK_REGION": cfg.region,
        # Lambda workers inherit the emulator's environment: make sure they talk to it.
        "AWS_ENDPOINT_URL": cfg.endpoint,
        "LOG_LEVEL": "INFO",
        # MiniStack's IoT mTLS listener binds 0.0.0.0:8883 whatever GATEWAY_PORT says: two stacks (or any
        # other MQTT broker) would collide on it, and nothing here uses IoT.
        "IOT_MTLS_ENABLED": "0",
        "TMPDIR": str(cfg.state_dir / "tmp"),
    }


def config_text(cfg: StackConfig) -> str:
    logs, state = cfg.logs_dir, cfg.state_dir
    return f"""; written by devstack; edits are overwritten by `make up`
[unix_http_server]
file={state}/supervisor.sock
chmod=0700

[supervisord]
logfile={logs}/supervisord.log
pidfile={state}/supervisord.pid
directory={cfg.root}
identifier=sommelier-{cfg.emulator_port}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{state}/supervisor.sock

[program:emulator]
command={sys.executable} {cfg.root}/containers/emulator/checkpointed.py
environment={_env(emulator_env(cfg))}
stdout_logfile={logs}/emulator.log
redirect_stderr=true
startsecs=1
stopsignal=TERM
stopwaitsecs=30
autorestart=unexpected

[program:frontend]
command={BIN}/gunicorn --bind 127.0.0.1:{cfg.frontend_port} --workers 2 --no-control-socket --access-logfile - "frontend:create_app()"
directory={cfg.root}/services/frontend
environment={_env({"FRONTEND_STACK_INFO_FILE": str(cfg.stack_info_file)})}
stdout_logfile={logs}/frontend.log
redirect_stderr=true
startsecs=1
stopwaitsecs=10
"""


class Supervisor:
    def __init__(self, cfg: StackConfig):
        self.cfg = cfg
        self.conf = cfg.state_dir / "supervisord.conf"
        self.pidfile = cfg.state_dir / "supervisord.pid"
        self.socket = cfg.state_dir / "supervisor.sock"

    def pid(self) -> int | None:
        """The pid of our running supervisord, clearing a stale pid file and socket."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not alive(pid):
            self.pidfile.unlink(missing_ok=True)
            self.socket.unlink(missing_ok=True)
            return None
        return pid

    def running_port(self) -> int | None:
        """The emulator port the running supervisord was started with (its config says), if it runs."""
        if self.pid() is None:
            return None
        for line in self.conf.read_text().splitlines():
            if line.startswith("identifier=sommelier-"):
                return int(line.rsplit("-", 1)[1])
        return None

    def start(self) -> None:
        for d in (self.cfg.logs_dir, self.cfg.state_dir / "emulator", self.cfg.state_dir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(config_text(self.cfg))
        subprocess.run([str(BIN / "supervisord"), "-c", str(self.conf)], check=True)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.conf), *args], capture_output=True, text=True
        )
        # supervisorctl exits non-zero for states it reports (e.g. "already started"); callers judge.
        if check and proc.returncode not in (0,) and "already started" not in proc.stdout:
            raise RuntimeError(f"supervisorctl {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
        return proc

"""The compose runtime: docker-compose.yml against a Docker API (Docker itself, or Podman's socket).

Readiness is the services' healthchecks. Podman without systemd never runs a healthcheck by
itself (../shared/CONTAINERS.md), so while compose starts the services this runtime runs them
on a bounded poll (`podman healthcheck run`); Docker runs its own, and is only watched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from typing import Any

from devstack.runtime import AlreadyReported, Runtime, StackError, log, port_in_use, wait_until

SERVICES = ("localstack", "frontend")


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin exists, else Debian's docker-compose 1.29."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise StackError("no compose command: install Docker's compose plugin or Debian's docker-compose "
                     "(or use `make up STACK=embedded`, which needs no containers)")


class Compose(Runtime):
    name = "compose"
    description = "Docker Compose: the emulator, trainer and frontend as containers"

    @property
    def shared_dir(self):
        return self.cfg.state_dir / "compose"

    def _env(self) -> dict[str, str]:
        # The shell's values win over .env in compose: the ports and names come from this one config.
        return {**os.environ, "EMULATOR_PORT": str(self.cfg.emulator_port), "FRONTEND_PORT": str(self.cfg.frontend_port),
                "SOMMELIER_PREFIX": self.cfg.prefix, "SOMMELIER_STACK_NAME": self.cfg.stack_name,
                "SOMMELIER_DATASET_PREFIX": self.cfg.dataset_prefix, "AWS_DEFAULT_REGION": self.cfg.region}

    def compose(self, *args: str, capture: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*compose_command(), *args], cwd=self.cfg.root, env=self._env(), text=True,
                              capture_output=capture)
        if check and proc.returncode != 0:
            raise StackError(f"`{' '.join(['compose', *args])}` failed (exit {proc.returncode}):\n{(proc.stderr or '')[-3000:]}")
        return proc

    def _container(self, service: str) -> str | None:
        ids = self.compose("ps", "-q", service, check=False).stdout.split()
        return ids[0] if ids else None

    def running(self) -> bool:
        if not shutil.which("docker"):
            return False
        try:
            return self._container("localstack") is not None
        except StackError:
            return False

    def _health(self, container: str) -> str:
        """The container's health, running its healthcheck first where the engine does not (Podman)."""
        if shutil.which("podman"):
            subprocess.run(["podman", "healthcheck", "run", container], capture_output=True)
        out = subprocess.run(["docker", "inspect", "--format", "{{json .State}}", container], capture_output=True, text=True)
        state = json.loads(out.stdout or "{}")
        health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status")
        return health or ("running" if state.get("Running") else state.get("Status", "unknown"))

    def _wait_healthy(self, service: str) -> None:
        def healthy() -> None:
            container = self._container(service)
            assert container, f"no container for {service} yet"
            status = self._health(container)
            assert status == "healthy", f"{service} is {status}"

        try:
            wait_until(f"the {service} container", healthy, self.cfg.ready_timeout_seconds * 3, interval=1)
        except StackError as err:
            logs = self.compose("logs", "--tail", "30", service, check=False).stdout
            raise StackError(f"{err}\nlast lines of {service}:\n{logs}") from err

    def start(self) -> dict[str, Any]:
        if not self.running():
            for name, port in (("emulator", self.cfg.emulator_port), ("frontend", self.cfg.frontend_port)):
                if port_in_use(port):
                    raise StackError(f"port {port} ({name}) is already in use by another process. Stop it (`ss -ltnp | grep :{port}` "
                                     f"shows which) or choose another port: `make up {name.upper()}_PORT=<port>`")
        env_file = self.cfg.root / ".env"
        if not env_file.exists():
            shutil.copy(self.cfg.root / ".env.example", env_file)
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        log.info("docker-compose up (building images when missing)")
        # compose waits for `service_healthy` dependencies itself; the healthchecks run beside it.
        up = subprocess.Popen([*compose_command(), "up", "--detach", *SERVICES], cwd=self.cfg.root, env=self._env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(up.stdout or []), daemon=True)
        reader.start()
        try:
            for service in SERVICES:
                self._wait_healthy(service)
            if up.wait(timeout=self.cfg.ready_timeout_seconds) != 0:
                raise StackError(f"docker-compose up failed (exit {up.returncode}):\n{''.join(output)[-3000:]}")
        finally:
            if up.poll() is None:
                up.kill()
        reader.join(timeout=5)
        return json.loads((self.shared_dir / "stack.json").read_text())

    def down(self) -> bool:
        was_running = self.running()
        self.compose("down", "--remove-orphans", capture=False)
        return was_running

    def processes(self) -> str:
        return self.compose("ps", check=False).stdout.rstrip()

    def service_logs(self, lines: int) -> list[tuple[str, str]]:
        return [(name, self.compose("logs", "--no-color", "--tail", str(lines), name, check=False).stdout.rstrip())
                for name in SERVICES]

    def trainer(self, args: list[str]) -> str:
        proc = subprocess.run([*compose_command(), "run", "--rm", "-T", "-e", f"DATASET_PREFIX={self.cfg.dataset_prefix}",
                               "trainer", *args], cwd=self.cfg.root, env=self._env(), stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise AlreadyReported(proc.returncode)
        return proc.stdout


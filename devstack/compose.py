"""The compose runtime: docker-compose.yml against a Docker API (Docker itself, or Podman's socket).

Readiness is the services' healthchecks. Podman without systemd never runs a healthcheck by
itself (../shared/CONTAINERS.md), so while compose starts the services this runtime runs them
on a bounded poll (`podman healthcheck run`); Docker runs its own, and is only watched.
Where no registry answers, LocalStack's image cannot be had: the emulator is then the MiniStack
image `make images` builds, and the summary says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from devstack.config import StackConfig
from devstack.runtime import AlreadyReported, Runtime, StackError, container_cli, engine_answers, image_exists, log, refuse_taken_ports, wait_until
from devstack.tasks import default_subnets, run_training_task

SERVICES = ("localstack", "frontend")
# where the Podman API service listens; a run with a storage root of its own (.ci/run) gives its own socket too
PODMAN_SOCKET = os.environ.get("PODMAN_SOCKET", "/run/podman/podman.sock")
LOCAL_PYTHON_IMAGE = "localhost/sommelier-python:bookworm"


def started_by(ministack_hostname: str) -> list[str]:
    """The containers a containerised MiniStack started through the engine: it labels each with its instance,
    MINISTACK_HOSTNAME:port (the port inside its container)."""
    out = subprocess.run([container_cli(), "ps", "-a", "-q", "--filter", f"label=ministack.instance={ministack_hostname}:4566"],
                         capture_output=True, text=True)
    return out.stdout.split()


def remove_containers(ids: list[str]) -> None:
    if ids:
        subprocess.run([container_cli(), "rm", "--force", "--volumes", *ids], capture_output=True)


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin exists, else Debian's docker-compose 1.29."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise StackError("no compose command: install Docker's compose plugin or Debian's docker-compose "
                     "(or use `make up STACK=embedded`, which needs no containers)")


# docker-compose 1.29's bookkeeping around `run`, and the bare exit code it prints after a failed one
_COMPOSE_CHATTER = re.compile(r"^((Creating|Starting|Stopping|Removing) \S+\s+\.\.\.( done)?|\d+)\s*$")


def _relay(stream) -> None:
    """Copy a child's stderr to ours, line by line, leaving out compose's container bookkeeping."""
    for line in stream or []:
        if not _COMPOSE_CHATTER.match(line.strip()):
            sys.stderr.write(line)
            sys.stderr.flush()


class Compose(Runtime):
    name = "compose"
    description = "Docker Compose: the emulator, trainer and frontend as containers"

    def __init__(self, cfg: StackConfig):
        super().__init__(cfg)
        self._overrides: dict[str, str] = {}

    @property
    def shared_dir(self) -> Path:
        """Mounted into the containers (hooks write stack.json there): inside the repository, one per port."""
        return self.cfg.root / ".sommelier" / f"compose-{self.cfg.emulator_port}"

    @property
    def _service_pidfile(self) -> Path:
        return self.shared_dir / "podman-service.pid"

    # --- the engine ----------------------------------------------------------------------------
    def _docker_host(self) -> dict[str, str]:
        if os.environ.get("DOCKER_HOST") or not shutil.which("podman"):
            return {}
        return {"DOCKER_HOST": f"unix://{PODMAN_SOCKET}"}

    def _engine_answers(self) -> bool:
        return engine_answers({**os.environ, **self._docker_host()})

    def ensure_engine(self) -> None:
        """A Docker API that answers: Docker's, or Podman's socket, started (and later stopped) by us."""
        if self._engine_answers():
            return
        if not shutil.which("podman"):
            raise StackError("no container engine answers (`docker info` fails) and Podman is not installed: install Docker, "
                             "or Podman (`bash containers/podman.sh setup`); `make up STACK=embedded` needs neither")
        proc = subprocess.run(["bash", str(self.cfg.root / "containers" / "podman.sh"), "socket"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise StackError(f"Podman's Docker API did not start: {proc.stderr.strip()}")
        if proc.stdout.strip():
            self.shared_dir.mkdir(parents=True, exist_ok=True)
            self._service_pidfile.write_text(proc.stdout.strip())
            log.info("started Podman's Docker API service (pid %s) on %s", proc.stdout.strip(), PODMAN_SOCKET)

    def _stop_service(self) -> None:
        try:
            pid = int(self._service_pidfile.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self._service_pidfile.unlink(missing_ok=True)

    def _image_available(self, image: str) -> bool:
        """In local storage, or pulled now (where a registry answers)."""
        if image_exists(image):
            return True
        return subprocess.run([container_cli(), "pull", "-q", image], capture_output=True, timeout=600).returncode == 0

    def _dotenv(self) -> dict[str, str]:
        env_file = self.cfg.root / ".env"
        if not env_file.exists():
            shutil.copy(self.cfg.root / ".env.example", env_file)
        pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and not line.lstrip().startswith("#"))
        return {k.strip(): v.strip() for k, v in pairs}

    def prepare_images(self, announce: bool = True) -> None:
        """Our images at this revision (built when missing), and an emulator image that can be had."""
        tag = subprocess.run(["bash", "containers/images.sh", "--tag"], cwd=self.cfg.root, capture_output=True, text=True,
                             check=True).stdout.strip()
        if not all(image_exists(f"sommelier/{name}:{tag}") for name in ("trainer", "frontend", "emulator")):
            log.info("building the images for %s (make images)", tag)
            build = subprocess.run(["bash", "containers/images.sh"], cwd=self.cfg.root, text=True)
            if build.returncode != 0:
                raise StackError("`make images` failed; its output is above")
        self._overrides["IMAGE_TAG"] = tag
        dotenv = {**self._dotenv(), **{k: v for k, v in os.environ.items() if k in ("EMULATOR_IMAGE", "PYTHON_IMAGE")}}
        if not self._image_available(dotenv.get("EMULATOR_IMAGE", "")):
            (log.info if announce else log.debug)("%s cannot be had here (no registry answers): the emulator is MiniStack's image sommelier/emulator:%s",
                     dotenv.get("EMULATOR_IMAGE"), tag)
            self._overrides.update({"EMULATOR_IMAGE": f"sommelier/emulator:{tag}", "LAMBDA_CODE_FROM": "bucket"})
        if self._overrides.get("LAMBDA_CODE_FROM", dotenv.get("LAMBDA_CODE_FROM")) == "bucket":
            # MiniStack runs image functions and ECS tasks through this engine: the predictor is the image `make deploy`
            # pushes, behind API Gateway, and the trainer image is the ECS task (LocalStack's free edition has
            # neither)
            images = f"PredictorImageUri=sommelier/predictor:{tag},TrainerImageUri=sommelier/trainer:{tag}"
            self._overrides["SOMMELIER_STACK_PARAMETERS"] = ",".join(filter(None, [images, self.cfg.stack_parameters]))
        if not image_exists(dotenv.get("PYTHON_IMAGE", "")) and image_exists(LOCAL_PYTHON_IMAGE):
            self._overrides["PYTHON_IMAGE"] = LOCAL_PYTHON_IMAGE

    def _env(self) -> dict[str, str]:
        # The shell's values win over .env in compose: the ports and names come from this one config.
        socket = {"DOCKER_SOCKET": PODMAN_SOCKET} if "DOCKER_HOST" in self._docker_host() or \
            os.environ.get("DOCKER_HOST", "").endswith("podman.sock") else {}
        try:
            socket["DOCKER_SOCKET_GID"] = str(os.stat(socket.get("DOCKER_SOCKET", "/var/run/docker.sock")).st_gid)
        except OSError:
            pass
        return {**os.environ, **self._docker_host(), **socket, "EMULATOR_PORT": str(self.cfg.emulator_port),
                "FRONTEND_PORT": str(self.cfg.frontend_port), "SOMMELIER_PREFIX": self.cfg.prefix,
                "SOMMELIER_STACK_NAME": self.cfg.stack_name, "SOMMELIER_DATASET_PREFIX": self.cfg.dataset_prefix,
                "SOMMELIER_STACK_PARAMETERS": self.cfg.stack_parameters, "AWS_DEFAULT_REGION": self.cfg.region,
                "SOMMELIER_WARM_IDLE_SECONDS": str(self.cfg.warm_idle_seconds),
                "IMAGE_TAG": "latest", "SOMMELIER_NETWORK": self.project,
                "SOMMELIER_COMPOSE_DIR": str(self.shared_dir.relative_to(self.cfg.root)), **self._overrides}

    def compose(self, *args: str, capture: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*compose_command(), "--project-name", self.project, *args], cwd=self.cfg.root, env=self._env(),
                              text=True, capture_output=capture)
        if check and proc.returncode != 0:
            raise StackError(f"`compose {' '.join(args)}` failed (exit {proc.returncode}):\n{(proc.stderr or '')[-3000:]}")
        return proc

    @property
    def project(self) -> str:
        return f"sommelier{self.cfg.emulator_port}"

    # --- Runtime ---------------------------------------------------------------------------------
    def _container(self, service: str) -> str | None:
        ids = self.compose("ps", "-q", service, check=False).stdout.split()
        return ids[0] if ids else None

    def running(self) -> bool:
        if not (shutil.which("docker-compose") or shutil.which("docker")) or not self._engine_answers():
            return False
        try:
            return self._container("localstack") is not None
        except StackError:
            return False

    def _health(self, container: str) -> str:
        """The container's health, running its healthcheck first where the engine does not (Podman)."""
        if container_cli() == "podman":
            subprocess.run(["podman", "healthcheck", "run", container], capture_output=True)
        out = subprocess.run([container_cli(), "inspect", "--format", "{{json .State}}", container], capture_output=True, text=True)
        state = json.loads(out.stdout or "{}")
        health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status")
        return health or ("running" if state.get("Running") else state.get("Status", "unknown"))

    def _wait_healthy(self, service: str, timeout: float) -> None:
        def healthy() -> None:
            container = self._container(service)
            assert container, f"no container for {service} yet"
            status = self._health(container)
            assert status == "healthy", f"{service} is {status}"

        try:
            wait_until(f"the {service} container", healthy, timeout, interval=1)
        except StackError as err:
            logs = self.compose("logs", "--no-color", "--tail", "30", service, check=False).stdout
            raise StackError(f"{err}\nlast lines of {service}:\n{logs}") from err

    def start(self) -> dict[str, Any]:
        self.ensure_engine()
        if not self.running():
            refuse_taken_ports(self.cfg)
        self.prepare_images()
        self.shared_dir.mkdir(parents=True, exist_ok=True)
        (self.shared_dir / "lambda").mkdir(exist_ok=True)
        self.shared_dir.chmod(0o777)  # the emulator runs unprivileged and writes stack.json (0600) here
        (self.shared_dir / "stack.json").unlink(missing_ok=True)
        log.info("compose up (%s)", ", ".join(SERVICES))
        # compose waits for `service_healthy` dependencies itself; the healthchecks run beside it.
        up = subprocess.Popen([*compose_command(), "--project-name", self.project, "up", "--detach", "--no-build", *SERVICES],
                              cwd=self.cfg.root, env=self._env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(up.stdout or []), daemon=True)
        reader.start()
        try:
            for service in SERVICES:
                self._wait_healthy(service, self.cfg.ready_timeout_seconds * 3)
            if up.wait(timeout=self.cfg.ready_timeout_seconds) != 0:
                raise StackError(f"compose up failed (exit {up.returncode}):\n{''.join(output)[-3000:]}")
        finally:
            if up.poll() is None:
                up.kill()
        reader.join(timeout=5)
        return json.loads((self.shared_dir / "stack.json").read_text())

    def down(self, purge: bool = False) -> bool:
        """Containers and the network go; the emulator's state volume and the shared folder stay unless `purge` (make clean)."""
        was_running = False
        if self._engine_answers() or self._service_pidfile.exists():
            was_running = self.running()
            if self._engine_answers():
                self._remove_emulator_containers()
                self.compose("--profile", "jobs", "down", "--remove-orphans", *(["--volumes"] if purge else []), capture=True, check=False)
                self._remove_emulator_containers()  # any the emulator started while it stopped
            self._stop_service()
        if purge:  # its stack.json holds the keys of a stack that is gone
            shutil.rmtree(self.shared_dir, ignore_errors=True)
        return was_running

    def emulator_containers(self) -> list[str]:
        """The containers the emulator started through the engine (image functions, ECS tasks): compose does not own them."""
        # docker-compose.yml sets MiniStack's hostname to the project
        return started_by(self.project)

    def _remove_emulator_containers(self) -> None:
        remove_containers(self.emulator_containers())

    def processes(self) -> str:
        return self.compose("ps", check=False).stdout.rstrip()

    def service_logs(self, lines: int) -> list[tuple[str, str]]:
        return [(name, self.compose("logs", "--no-color", "--tail", str(lines), name, check=False).stdout.rstrip())
                for name in SERVICES]

    def train_task(self) -> int:
        """The trainer image as the template's ECS Fargate task: MiniStack starts it through this engine on the stack's network.
        The emulator's test keys go in as the task's environment (botocore refuses MiniStack's task-credentials address)."""
        outputs = self.cfg.stack_info()["outputs"]
        env = {k: v for k, v in self.cfg.aws_env().items() if k != "AWS_ENDPOINT_URL"}
        if "dataset_prefix" in self.cfg.model_fields_set:  # make train-task DATASET=name
            env["DATASET_PREFIX"] = self.cfg.dataset_prefix
        return run_training_task(self.aws("ecs"), self.aws("logs"), outputs, default_subnets(self.aws("ec2")), env,
                                 out=lambda line: (sys.stdout.write(line + "\n"), sys.stdout.flush()))

    def trainer(self, args: list[str]) -> str:
        if "IMAGE_TAG" not in self._overrides:
            self.prepare_images(announce=False)
        proc = subprocess.Popen([*compose_command(), "--project-name", self.project, "run", "--rm", "-T",
                                 "-e", f"DATASET_PREFIX={self.cfg.dataset_prefix}",
                                 # the trainer's canary settings, as the embedded runtime passes its environment on
                                 *[arg for k, v in os.environ.items() if k.startswith("CANARY_") for arg in ("-e", f"{k}={v}")],
                                 "trainer", *args],
                                cwd=self.cfg.root, env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the trainer's progress and errors reach the terminal as they happen; compose's own chatter does not
        relay = threading.Thread(target=_relay, args=(proc.stderr,), daemon=True)
        relay.start()
        out = proc.stdout.read() if proc.stdout else ""
        relay.join()
        if proc.wait() != 0:
            raise AlreadyReported(proc.returncode)
        return out

"""`make deploy-rehearsal`: `make deploy` end to end against a fresh emulator standing in for an AWS account.

The "account" is an empty emulator on a free port (no hook runs). With images (the default wherever a
container engine runs) it is MiniStack's image as a container with the engine's Docker API, as in the compose
stack: `make deploy` pushes the images to its registry and the first model comes from the trainer image as the ECS
task. Without an engine (DEPLOY_IMAGES=false) the account is the embedded MiniStack. Either way the predictor is
deployed as `make deploy` deploys it to AWS by default: its zip with the dependency layer `make deploy` builds
(deployer/layer.py; wheels for the account's interpreter, where AWS's are for python3.12), SnapStart on its published
versions (the emulator forks each worker from the snapshot: containers/emulator/snapstart.py). Then the full
integration suite runs against what was deployed, a second deploy must change nothing, and `make destroy --purge`
must leave nothing. What the rehearsal cannot show: the emulator's interpreter has scikit-learn beside the layer, so a
model is served as it would be with it (tests/unit/test_model_store.py serves and explains one without it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devstack.compose import Compose, remove_containers, started_by
from devstack.config import ROOT, StackConfig
from devstack.embedded import Embedded
from devstack.runtime import StackError, container_cli, free_port, http_ok, wait_until
from devstack.supervisor import Supervisor


class ContainerAccount:
    """MiniStack's image as the account's emulator, on a network of its own, starting image functions and ECS tasks
    through the engine's Docker API (the compose stack's emulator, without its hooks)."""

    def __init__(self, cfg: StackConfig):
        self.cfg = cfg
        self.name = f"sommelier-account-{cfg.emulator_port}"
        self.compose = Compose(cfg)

    def _podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([container_cli(), *args], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise StackError(f"`{container_cli()} {' '.join(args[:3])} ...` failed: {proc.stderr.strip()[-1500:]}")
        return proc

    def start(self) -> None:
        self.compose.ensure_engine()
        self.compose.prepare_images(announce=False)
        image = f"sommelier/emulator:{self.compose._overrides['IMAGE_TAG']}"
        env = self.compose._env()
        socket_path, gid = env.get("DOCKER_SOCKET", "/var/run/docker.sock"), env.get("DOCKER_SOCKET_GID", "0")
        self._podman("network", "create", self.name)
        self._podman("run", "--detach", "--name", self.name, "--network", self.name, "--group-add", gid,
                     "--publish", f"127.0.0.1:{self.cfg.emulator_port}:4566", "--volume", f"{socket_path}:/var/run/docker.sock",
                     "--env", "DOCKER_HOST=unix:///var/run/docker.sock", "--env", f"LAMBDA_DOCKER_NETWORK={self.name}",
                     "--env", f"AWS_ENDPOINT_URL=http://{self.name}:4566", "--env", f"MINISTACK_HOSTNAME={self.name}",
                     "--env", f"AWS_DEFAULT_REGION={self.cfg.region}", image)

    def python(self) -> str:
        """The version of the interpreter the account's Lambda workers run on (the layer's wheels are built for it)."""
        return self._podman("exec", self.name, "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()

    def down(self) -> None:
        """The emulator, every container it started (functions, tasks), its network, and the API service if we started it."""
        if shutil.which(container_cli()):
            remove_containers([self.name, *started_by(self.name)])
            self._podman("network", "rm", "--force", self.name, check=False)
        self.compose._stop_service()


def _run(what: str, cmd: list[str], env: dict[str, str]) -> str:
    print(f"\n#### rehearsal: {what}\n", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        raise StackError(f"rehearsal: {what} failed (exit {proc.returncode})")
    return proc.stdout


def rehearse() -> int:
    images = os.environ.get("DEPLOY_IMAGES", "true").lower() not in ("false", "0", "no")
    with tempfile.TemporaryDirectory(prefix="sommelier-account-") as state:
        cfg = StackConfig(state_dir=Path(state), emulator_port=free_port(), frontend_port=free_port(), stack="embedded")
        account: ContainerAccount | Supervisor = ContainerAccount(cfg) if images else Supervisor(cfg)
        try:
            account.start()  # the emulator only: no hook runs, the account is empty
            wait_until("the emulator standing in for an account", lambda: http_ok(f"{cfg.endpoint}/_ministack/health"), 120)
            env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SOMMELIER_", "DEPLOY_"))}, **cfg.aws_env(),
                   "DEPLOY_STACK_NAME": "sommelier", "DEPLOY_CANARY": "false",
                   # the predictor as make deploy ships it to AWS (its zip and layer, SnapStart); the first model from the
                   # ECS task where the account runs containers
                   "DEPLOY_FUNCTIONS_FROM": "zip", "DEPLOY_FIRST_MODEL": "task" if images else "function",
                   "DEPLOY_LAYER_PYTHON": account.python() if isinstance(account, ContainerAccount) else f"{sys.version_info[0]}.{sys.version_info[1]}",
                   # botocore refuses MiniStack's task-credentials address (http, not loopback): the task gets the test keys
                   "DEPLOY_TASK_ENVIRONMENT": "AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test",
                   # MiniStack turns no EMF log line into a metric (ARCHITECTURE.md): the rehearsal's stack calls PutMetricData
                   "DEPLOY_METRICS_SINK": "api",
                   "DEPLOY_REGISTRY": f"127.0.0.1:{cfg.emulator_port}",
                   # the suite's hot-swap tests watch a promotion within seconds
                   "DEPLOY_STACK_PARAMETERS": "ChampionRefreshSeconds=2,CanaryPercent=0", "DEPLOY_IMAGES": "true" if images else "false"}
            deploy = [sys.executable, "-m", "ops", "deploy", "--yes"]
            _run(f"make deploy into the emulator at {cfg.endpoint}", deploy, env)
            info = ROOT / ".sommelier" / "deploy" / "sommelier.json"
            _run("the full integration suite against the deployed stack",
                 [sys.executable, "-m", "pytest", "-q", "tests/integration", "-p", "no:cacheprovider"],
                 {**env, "SOMMELIER_STACK_INFO": str(info)})
            if images:
                _run("make train-task DEPLOYED=1 (the trainer image as the ECS task, on the deployed stack)",
                     [sys.executable, "-m", "ops", "train-task"], {**env, "DEPLOYED": "1"})
            again = _run("a second make deploy, with no change", [*deploy], {**env, "DEPLOY_SMOKE": "false"})
            if again.count(": no changes") < 2 or "pushed " in again:
                raise StackError("the second deploy changed something (both stacks should say `no changes`, no image pushed)")
            _run("make destroy PURGE=1", [sys.executable, "-m", "ops", "destroy", "--yes", "--purge"], env)
            stacks = [s["StackName"] for s in cfg.client("cloudformation").describe_stacks()["Stacks"]
                      if s["StackStatus"] != "DELETE_COMPLETE"]
            buckets = [b["Name"] for b in cfg.client("s3").list_buckets()["Buckets"]]
            if stacks or buckets:
                raise StackError(f"destroy --purge left stacks {stacks} and buckets {buckets} behind")
        finally:
            if isinstance(account, ContainerAccount):
                account.down()
            else:
                Embedded(cfg).down()  # waits until the emulator has saved and exited, before the folder goes
    how = "the predictor as its zip and layer with SnapStart" + (", the first model from the trainer image as the ECS task" if images else "")
    print(f"\nrehearsal passed ({how}): deployed from nothing, full suite green, second deploy changed nothing, destroyed")
    return 0

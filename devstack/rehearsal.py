"""`make deploy-rehearsal`: `make deploy` end to end against a fresh emulator standing in for an AWS account.

A bare MiniStack (no hooks run: an empty "account") on a free port; `make deploy --yes` into it
with the zip path for functions (MiniStack runs image functions only through AWS's RIE, which
cannot be had here) while the images still go to its ECR registry; then the full integration
suite against what was deployed; then a second deploy, which must change nothing; then
`make destroy --purge`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3

from devstack.config import ROOT, StackConfig
from devstack.embedded import Embedded
from devstack.runtime import StackError, http_ok, wait_until
from devstack.supervisor import Supervisor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(what: str, cmd: list[str], env: dict[str, str]) -> str:
    print(f"\n#### rehearsal: {what}\n", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        raise StackError(f"rehearsal: {what} failed (exit {proc.returncode})")
    return proc.stdout


def rehearse() -> int:
    with tempfile.TemporaryDirectory(prefix="sommelier-account-") as state:
        cfg = StackConfig(state_dir=Path(state), emulator_port=_free_port(), frontend_port=_free_port(), stack="embedded")
        account = Supervisor(cfg)
        account.start()  # the emulator only: the frontend program is not started, and no hook runs
        try:
            wait_until("the emulator standing in for an account", lambda: http_ok(f"{cfg.endpoint}/_ministack/health"), 60)
            env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SOMMELIER_", "DEPLOY_"))}, **cfg.aws_env(),
                   "DEPLOY_STACK_NAME": "sommelier", "DEPLOY_FUNCTIONS_FROM": "zip", "DEPLOY_CANARY": "false",
                   # MiniStack turns no EMF log line into a metric (ARCHITECTURE.md): the rehearsal's stack calls PutMetricData
                   "DEPLOY_METRICS_SINK": "api",
                   "DEPLOY_REGISTRY": f"127.0.0.1:{cfg.emulator_port}",
                   # the suite's hot-swap tests watch a promotion within seconds
                   "DEPLOY_STACK_PARAMETERS": "ChampionRefreshSeconds=2,CanaryPercent=0", "DEPLOY_IMAGES": os.environ.get("DEPLOY_IMAGES", "true")}
            deploy = [sys.executable, "-m", "devstack", "deploy", "--yes"]
            _run(f"make deploy into the emulator at {cfg.endpoint}", deploy, env)
            info = ROOT / ".sommelier" / "deploy" / "sommelier.json"
            _run("the full integration suite against the deployed stack",
                 [sys.executable, "-m", "pytest", "-q", "tests/integration", "-p", "no:cacheprovider"],
                 {**env, "SOMMELIER_STACK_INFO": str(info)})
            again = _run("a second make deploy, with no change", [*deploy], {**env, "DEPLOY_SMOKE": "false"})
            if again.count(": no changes") < 2 or "pushed " in again:
                raise StackError("the second deploy changed something (both stacks should say `no changes`, no image pushed)")
            _run("make destroy PURGE=1", [sys.executable, "-m", "devstack", "destroy", "--yes", "--purge"], env)
            aws = {"endpoint_url": cfg.endpoint, "region_name": cfg.region, "aws_access_key_id": "test", "aws_secret_access_key": "test"}
            stacks = [s["StackName"] for s in boto3.client("cloudformation", **aws).describe_stacks()["Stacks"]
                      if s["StackStatus"] != "DELETE_COMPLETE"]
            buckets = [b["Name"] for b in boto3.client("s3", **aws).list_buckets()["Buckets"]]
            if stacks or buckets:
                raise StackError(f"destroy --purge left stacks {stacks} and buckets {buckets} behind")
        finally:
            Embedded(cfg).down()  # waits until the emulator has saved and exited, before the folder goes
    print("\nrehearsal passed: deployed from nothing, full suite green, second deploy changed nothing, destroyed")
    return 0

"""containers/emulator/snapstart.py on a real MiniStack (checkpointed.py, as the embedded runtime starts it), through
Lambda's API: a published SnapStart version is one initialised process, every worker of it a fork made when a request
needs one (issue 51 (2) and (4)); what AWS refuses is refused."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.runtime import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::000000000000:role/snapstart-test"
HANDLER = '''
import os, random, time, uuid
from snapshot_restore_py import register_after_restore, register_before_snapshot

STATE = {"snapshot": None, "restored": 0, "worker": "not restored"}


@register_before_snapshot
def before():
    if os.environ.get("FAIL_BEFORE"):
        raise RuntimeError("the model bucket cannot be read: " + os.environ["FAIL_BEFORE"])
    STATE["snapshot"] = os.getpid()


@register_after_restore
def after():
    STATE["restored"] += 1
    STATE["worker"] = uuid.uuid4().hex
    random.seed()


def sockets():
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.append(target)
    return out


def handler(event, context):
    time.sleep(event.get("hold", 0))  # the workload: keeps this worker taken while the others of a burst arrive
    return {"pid": os.getpid(), "parent": os.getppid(), "snapshot": STATE["snapshot"], "restored": STATE["restored"],
            "worker": STATE["worker"], "random": random.random(), "request_id": context.aws_request_id, "sockets": sockets(),
            "log_stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")}
'''
NO_HOOKS = '''
def handler(event, context):
    return {}
'''
MISSING = 'raise ImportError("No module named \'snapshot_restore_py\' (this test\'s stand-in)")\n'


def bundle(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    state = tmp_path_factory.mktemp("snapstart")
    port = free_port()
    env = {**os.environ, "GATEWAY_PORT": str(port), "STATE_DIR": str(state), "TMPDIR": str(state), "PERSIST_STATE": "0",
           "LAMBDA_EXECUTOR": "local", "LOG_LEVEL": "WARNING"}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen([sys.executable, str(ROOT / "containers" / "emulator" / "checkpointed.py")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test", config=Config(read_timeout=60, retries={"max_attempts": 0},
                                                                    max_pool_connections=16))
    try:
        wait_until("the emulator", lambda: lam.list_functions(), 60, interval=0.2)
        yield proc, lam
    finally:
        left = {pid for snapshot in children(proc.pid) for pid in (snapshot, *children(snapshot))}
        proc.terminate()
        proc.wait(timeout=30)
    until("the snapshots and their forks end with the emulator", lambda: not any(map(alive, left)))


def alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def publish(lam, name: str, files: dict[str, str], env: dict[str, str] | None = None) -> dict:
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler", Timeout=30,
                        Code={"ZipFile": bundle(files)}, SnapStart={"ApplyOn": "PublishedVersions"},
                        Environment={"Variables": env or {}})
    until(f"{name} Active", lambda: _state(lam, name, None) == "Active")
    version = lam.publish_version(FunctionName=name)["Version"]
    until(f"{name}:{version} past Pending", lambda: _state(lam, name, version) != "Pending")
    return lam.get_function_configuration(FunctionName=name, Qualifier=version)


def until(what: str, holds, timeout: float = 60) -> None:
    def check() -> None:
        assert holds(), f"not yet: {what}"

    wait_until(what, check, timeout, interval=0.1)


def _state(lam, name: str, version: str | None) -> str:
    kwargs = {"Qualifier": version} if version else {}
    return lam.get_function_configuration(FunctionName=name, **kwargs)["State"]


def invoke(lam, name: str, version: str, hold: float = 0) -> dict:
    resp = lam.invoke(FunctionName=name, Qualifier=version, Payload=json.dumps({"hold": hold}).encode())
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, body
    return body


def children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                out.add(int(entry.name))
    return out


def test_workers_are_forked_from_the_snapshot_when_requests_need_them(emulator):
    proc, lam = emulator
    config = publish(lam, "snap", {"index.py": HANDLER})
    assert (config["State"], config["SnapStart"]["OptimizationStatus"]) == ("Active", "On"), config.get("StateReason")
    version = config["Version"]
    snapshot = children(proc.pid)
    assert len(snapshot) == 1, "the publish leaves the snapshot only, no worker"
    assert children(next(iter(snapshot))) == set(), "no worker exists before something asks for one"

    with ThreadPoolExecutor(3) as pool:
        first = list(pool.map(lambda _: invoke(lam, "snap", version, hold=1.0), range(3)))
    assert {a["parent"] for a in first} == snapshot and {a["snapshot"] for a in first} == snapshot
    assert len({a["pid"] for a in first}) == 3, "three requests at once: three forks"
    assert all(a["restored"] == 1 for a in first), "each fork ran the after-restore hooks once"
    for key in ("worker", "random", "request_id", "log_stream"):
        assert len({a[key] for a in first}) == 3, f"restored workers share {key}"
    for a, b in [(first[0], first[1]), (first[0], first[2]), (first[1], first[2])]:
        assert not set(a["sockets"]) & set(b["sockets"]), "two restored workers share a socket"

    victim = first[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    until("the killed worker gone", lambda: victim not in children(next(iter(snapshot))))
    with ThreadPoolExecutor(3) as pool:
        after = list(pool.map(lambda _: invoke(lam, "snap", version, hold=1.0), range(3)))
    assert {a["parent"] for a in after} == snapshot
    assert victim not in {a["pid"] for a in after}
    assert len({a["pid"] for a in after}) == 3, "the killed worker was replaced by a new fork"


def test_a_failing_before_snapshot_hook_fails_the_publish_with_its_words(emulator):
    _, lam = emulator
    config = publish(lam, "snap-fails", {"index.py": HANDLER}, env={"FAIL_BEFORE": "AccessDenied on s3://models"})
    assert config["State"] == "Failed"
    assert "the model bucket cannot be read: AccessDenied on s3://models" in config["StateReason"]


def test_hooks_that_cannot_be_imported_fail_the_publish_rather_than_being_skipped(emulator):
    _, lam = emulator
    config = publish(lam, "snap-no-hooks", {"index.py": NO_HOOKS, "snapshot_restore_py.py": MISSING})
    assert config["State"] == "Failed"
    assert "snapshot_restore_py" in config["StateReason"]


def test_what_aws_refuses_is_refused(emulator):
    _, lam = emulator
    with pytest.raises(ClientError, match="SnapStart is not supported for functions with package type Image"):
        lam.create_function(FunctionName="snap-image", Role=ROLE, PackageType="Image", Code={"ImageUri": "img:1"},
                            SnapStart={"ApplyOn": "PublishedVersions"})
    config = publish(lam, "snap-provisioned", {"index.py": NO_HOOKS})
    with pytest.raises(ClientError, match="Provisioned concurrency is not supported .* SnapStart"):
        lam.put_provisioned_concurrency_config(FunctionName="snap-provisioned", Qualifier=config["Version"],
                                               ProvisionedConcurrentExecutions=1)

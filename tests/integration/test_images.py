"""The images `make deploy` ships, exercised where they run locally (`make test-compose`): the predictor image is the
function behind API Gateway, invoked by the emulator through the Runtime Interface Emulator's protocol; the trainer
image is the template's ECS Fargate task, started by `make train-task` through the engine's Docker API."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from devstack.compose import Compose
from devstack.runtime import StackError

from .conftest import ROOT

# kills the runtime interface client inside a predictor container (the images carry no pkill)
KILL_RUNTIME = """import os, signal, sys
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) not in (1, os.getpid()):  # this script's own command line names it too
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"awslambdaric" in cmd:
            os.kill(int(pid), getattr(signal, sys.argv[1]))
"""


@pytest.fixture(scope="module")
def compose(stack) -> Compose:
    if stack.config is None or stack.config.stack != "compose":
        pytest.skip("the images run as functions and tasks in the compose stack: `make test-compose`")
    return Compose(stack.config)


def _function_containers(compose: Compose) -> set[str]:
    """The running containers of the predictor image the emulator started."""
    found = set()
    for container in compose.emulator_containers():
        state = subprocess.run(["podman", "inspect", "--format", "{{.State.Running}} {{.ImageName}}", container], capture_output=True,
                               text=True).stdout
        if state.startswith("true") and "sommelier/predictor:" in state:
            found.add(container)
    return found


def test_the_predictor_behind_api_gateway_is_the_image_make_images_built(stack):
    """In the compose stack and in the deploy rehearsal (the embedded runtime serves the zip)."""
    function = stack.client("lambda").get_function(FunctionName=stack.outputs["PredictorFunctionName"])
    on_compose = stack.config is not None and stack.config.stack == "compose"
    if function["Configuration"].get("PackageType") != "Image" and not on_compose:
        pytest.skip("this stack serves the predictor's zip (the embedded runtime); the image runs in make test-compose and the rehearsal")
    assert function["Configuration"]["PackageType"] == "Image", function["Configuration"].get("PackageType")
    image = function["Code"]["ImageUri"]
    repository, tag = image.rsplit(":", 1)
    assert repository.endswith("sommelier/predictor") and tag.startswith(_revision()), image
    if on_compose:  # the image `make images` built from this tree, in the engine's store
        assert repository == "sommelier/predictor"
        assert subprocess.run(["podman", "image", "exists", image]).returncode == 0
    health = requests.get(f"{stack.api_url}/health", timeout=30).json()
    # the answer comes from inside the image: only its Dockerfile sets these
    assert health["package"] == {"type": "image", "image_tag": tag}, health


def _revision() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def test_the_emulator_runs_the_function_as_containers_of_the_image(compose):
    assert _function_containers(compose)


def test_a_runtime_crash_on_a_request_is_a_5xx_with_the_request_id_and_the_next_request_gets_a_new_container(stack, compose, eventually):
    before = _function_containers(compose)
    for container in before:  # every warm container: whichever the emulator picks hangs in the request
        subprocess.run(["podman", "exec", container, "python", "-c", KILL_RUNTIME, "SIGSTOP"], check=True, capture_output=True, timeout=60)
    answer: dict[str, requests.Response] = {}
    sent = threading.Thread(target=lambda: answer.update(r=requests.get(f"{stack.api_url}/health", timeout=120)))
    started = time.time()
    sent.start()

    def dispatched() -> None:
        logs = "".join(subprocess.run(["podman", "logs", "--since", str(int(started) - 1), c], capture_output=True, text=True).stdout
                       for c in before)
        assert "START RequestId" in logs, "the request has not reached a container yet"

    eventually(dispatched, timeout=30)
    for container in before:  # the crash, mid-request
        subprocess.run(["podman", "exec", container, "python", "-c", KILL_RUNTIME, "SIGKILL"], capture_output=True, timeout=60)
    sent.join(timeout=120)
    crashed = answer["r"]
    assert 500 <= crashed.status_code < 600 and crashed.headers.get("x-amzn-requestid"), (crashed.status_code, crashed.text[:300])
    served = eventually(lambda: _healthy(stack), timeout=60)
    assert served["status"] == "ok"
    assert _function_containers(compose) - before, "a new container serves after the crash"


def _healthy(stack) -> dict:
    reply = requests.get(f"{stack.api_url}/health", timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    return reply.json()


def _versions(stack) -> set[str]:
    s3 = stack.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.outputs["ModelBucketName"], Prefix="models/")
    return {o["Key"].split("/")[1] for page in pages for o in page.get("Contents", []) if o["Key"].endswith("/manifest.json")}


@pytest.fixture
def quiet(capsys) -> Iterator[None]:
    yield
    capsys.readouterr()


def test_make_train_task_runs_the_trainer_image_as_the_ecs_task_and_a_new_model_version_appears(stack, compose, capsys):
    before = _versions(stack)
    assert compose.train_task() == 0
    printed = capsys.readouterr().out
    assert "RunTask" in printed and "finished: exit 0" in printed and "writing artifacts" in printed, printed[-2000:]
    new = _versions(stack) - before
    assert len(new) == 1, f"one new model version, got {new}"
    tasks = stack.client("ecs").list_tasks(cluster=stack.outputs["TrainerClusterName"], desiredStatus="STOPPED")["taskArns"]
    assert tasks, "the model came from an ECS task"


def test_a_training_task_that_fails_exits_non_zero_with_the_reason_and_its_last_log_lines(stack, compose, quiet):
    failing = Compose(compose.cfg.model_copy(update={"dataset_prefix": "datasets/no-such-dataset"}))
    with pytest.raises(StackError) as err:
        failing.train_task()
    message = str(err.value)
    assert "the training task failed: exit 2" in message and "Essential container exited" in message
    assert "datasets/no-such-dataset/spec.json does not exist" in message, message


def test_a_dataset_too_big_for_the_training_function_is_trained_by_the_ecs_task_it_starts(stack, compose, eventually):
    """Issue 35: a dataset past LAMBDA_MAX_ROWS is handed by the training function to the trainer image as the ECS task,
    which trains it; the function says so. Here the limit is lowered to 10 rows (the template's default is 300,000) and
    the dataset is the wine file without one column, so the model it makes is a new API: trained, never promoted."""
    import json

    import pandas as pd

    from sommelier_contract import dataset as contract
    from sommelier_contract import layout

    rows = pd.read_csv(ROOT / "data" / "wine.csv").drop(columns=["proline"])
    body = rows.to_csv(index=False).encode()
    s3, lam = stack.client("s3"), stack.client("lambda", read_timeout=120)
    contract.push(s3, stack.outputs["DatasetBucketName"], "handover", body, None, "cultivar", now="test")
    name = stack.outputs["TrainerFunctionName"]
    env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert env.get("TASK_SUBNETS"), "the compose stack gives the function subnets to run the task in"
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {**env, "LAMBDA_MAX_ROWS": "10"}})
    try:
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        before = _versions(stack)
        answer = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps({"dataset": "handover", "trigger": "test"}))["Payload"].read())
        assert answer.get("task") and "handed to the ECS training task" in answer["reason"], answer
        assert f"{len(rows):,} rows is past LAMBDA_MAX_ROWS (10)" in answer["reason"]
        ecs, cluster = stack.client("ecs"), stack.outputs["TrainerClusterName"]

        def stopped() -> dict:
            (task,) = ecs.describe_tasks(cluster=cluster, tasks=[answer["task"]])["tasks"]
            assert task["lastStatus"] == "STOPPED", task["lastStatus"]
            return task

        task = eventually(stopped, timeout=240)
        stream = f"trainer/trainer/{answer['task'].rsplit('/', 1)[-1]}"  # awslogs-stream-prefix/container/task id
        said = [e["message"] for e in stack.client("logs").get_log_events(logGroupName=stack.outputs["TrainerTaskLogGroupName"],
                                                                          logStreamName=stream, startFromHead=True)["events"]]
        assert [c.get("exitCode") for c in task["containers"]] == [0], "\n".join(said[-20:])
        (new,) = _versions(stack) - before
        manifest = json.loads(s3.get_object(Bucket=stack.outputs["ModelBucketName"], Key=layout.manifest_key(new))["Body"].read())
        assert manifest["dataset"]["name"] == "handover" and not manifest["gate"]["passed"], manifest["gate"]
        champion = json.loads(s3.get_object(Bucket=stack.outputs["ModelBucketName"], Key=layout.CHAMPION_KEY)["Body"].read())
        assert champion["version"] != new  # a model of another API is left for a person to promote
        assert "proline" not in {f["name"] for f in manifest["features"]}
    finally:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)

"""`make train-task`: the trainer image as the template's ECS Fargate task (RunTask), its logs followed from CloudWatch Logs.

The same code drives a deployed stack in AWS, the deploy rehearsal's emulator and the compose stack (where MiniStack
starts the image through the engine's Docker API). What differs is configuration: the subnets, and an environment
added to the container (the emulators' test keys: botocore refuses the task-credentials address MiniStack gives, an
http address that is not loopback, which in AWS is ECS's own 169.254.170.2).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from devstack.runtime import StackError

POLL_SECONDS = 2.0  # a person watching a multi-minute task


def parse_pairs(text: str) -> dict[str, str]:
    """'Key=Value,Key=Value' (the form of every *_PARAMETERS / *_ENVIRONMENT setting) as a dict."""
    pairs = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise StackError(f"'{pair}' is not Key=Value (in '{text}')")
        pairs[key.strip()] = value.strip()
    return pairs


def default_subnets(ec2: Any) -> list[str]:
    return [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]]


def run_training_task(ecs: Any, logs: Any, outputs: dict[str, str], subnets: list[str], environment: dict[str, str] | None = None,
                      out: Callable[[str], None] = print, timeout_seconds: float = 3 * 3600) -> int:
    """RunTask with the stack's task definition; prints the task's log lines as they arrive; returns its exit code.
    A task that fails raises StackError with its exit code, the reason ECS gives and its last log lines."""
    if "TrainerTaskDefinitionArn" not in outputs:
        raise StackError("the stack has no training task (deployed without images, DEPLOY_IMAGES=false?): "
                         "deploy it with images first")
    if not subnets:
        raise StackError("no subnet to run the task in: set DEPLOY_TASK_SUBNETS (the account has no default VPC)")
    cluster = outputs["TrainerClusterName"]
    overrides = {"containerOverrides": [{"name": "trainer", "environment": [{"name": k, "value": v} for k, v in environment.items()]}]} \
        if environment else {}
    out(f"==> RunTask {outputs['TrainerTaskDefinitionArn']} on cluster {cluster}")
    run = ecs.run_task(cluster=cluster, taskDefinition=outputs["TrainerTaskDefinitionArn"], launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "assignPublicIp": "ENABLED"}},
                       **({"overrides": overrides} if overrides else {}))
    if run.get("failures") or not run.get("tasks"):
        raise StackError(f"RunTask failed: {run.get('failures')}")
    task = run["tasks"][0]["taskArn"]
    stream = f"trainer/trainer/{task.rsplit('/', 1)[-1]}"  # awslogs-stream-prefix/container name/task id
    last: deque[str] = deque(maxlen=20)
    token, deadline = None, time.monotonic() + timeout_seconds

    def drain() -> None:
        nonlocal token
        while True:
            try:
                page = logs.get_log_events(logGroupName=outputs["TrainerTaskLogGroupName"], logStreamName=stream, startFromHead=True,
                                           **({"nextToken": token} if token else {}))
            except logs.exceptions.ResourceNotFoundException:
                return  # the stream appears once the container starts
            for event in page["events"]:
                out(event["message"])
                last.append(event["message"])
            if page["nextForwardToken"] == token or not page["events"]:
                token = page["nextForwardToken"]
                return
            token = page["nextForwardToken"]

    while time.monotonic() < deadline:
        status = ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"][0]
        drain()
        if status["lastStatus"] == "STOPPED":
            drain()  # what the container wrote as it stopped
            container = (status.get("containers") or [{}])[0]
            code = container.get("exitCode")
            reason = status.get("stoppedReason") or container.get("reason") or "no reason given"
            if code == 0:
                out(f"==> task {task.rsplit('/', 1)[-1]} finished: exit 0")
                return 0
            tail = "\n".join(f"    {line}" for line in last) or "    (the task wrote no log line)"
            raise StackError(f"the training task failed: exit {code if code is not None else 'unknown'} ({reason}); "
                             f"its last {len(last)} log lines:\n{tail}")
        time.sleep(POLL_SECONDS)
    raise StackError(f"task {task} still running after {timeout_seconds / 3600:g} hours")

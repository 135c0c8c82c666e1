"""ECS tasks' credentials in MiniStack as AWS's SDKs can use them.

MiniStack 1.5 gives every task it runs AWS_CONTAINER_CREDENTIALS_FULL_URI on its own address on the containers'
network (10.89.0.3, say), and botocore refuses a full URI whose host is not a loopback address or ECS's own
(`ValueError: Unsupported host '10.89.0.3'`), so a task that calls AWS with the default credential chain fails at
its first call. In AWS the same chain reads the task role's credentials from ECS's address. `install()` wraps
MiniStack's `_register_metadata` so a task whose environment names no access key also gets the emulator's static
test key (MiniStack takes any key), which the chain reads before the container endpoint: the task's code stays the
code that runs in AWS. A task given its own key (`make train-task` passes one) keeps it.
"""

from __future__ import annotations

KEY = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def install() -> None:
    """Replace ministack.services.ecs._register_metadata with the wrapper."""
    from ministack.services import ecs

    original = ecs._register_metadata

    def register_metadata(task_arn, cluster_arn, td, cdef, launch_type, env, *args, **kwargs):
        token = original(task_arn, cluster_arn, td, cdef, launch_type, env, *args, **kwargs)
        if "AWS_ACCESS_KEY_ID" not in env:
            env.update(KEY)
        return token

    ecs._register_metadata = register_metadata

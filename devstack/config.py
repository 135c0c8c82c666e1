"""Settings of the local stack: one object, from SOMMELIER_* environment variables.

`make up EMULATOR_PORT=4577` records the ports and the runtime in .sommelier/stack.json;
every later command (`StackConfig.resolve()`) takes them from there unless the environment
says otherwise, so nobody repeats the ports.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_EMULATOR_PORT, DEFAULT_FRONTEND_PORT = 4566, 8080


def emulator_client(service: str, endpoint: str, region: str, **config: Any):
    """A boto3 client for an emulator at `endpoint` (any key works there; `config`: botocore Config options)."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(**config) if config else None)


class StackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOMMELIER_", frozen=True)

    state_dir: pathlib.Path = ROOT / ".sommelier"
    emulator_port: int = DEFAULT_EMULATOR_PORT
    frontend_port: int = DEFAULT_FRONTEND_PORT
    # "" = the running stack's runtime, else compose when a container engine answers, else embedded
    stack: Literal["", "embedded", "compose"] = ""
    prefix: str = "sommelier"
    stack_name: str = "sommelier"
    region: str = "us-east-1"
    dataset_prefix: str = "datasets/wine"
    ready_timeout_seconds: float = 60
    stack_parameters: str = ""  # extra template parameters, "Key=Value,Key=Value"
    # predictor workers `make up` starts and warms (the emulator, like Lambda, runs each concurrent request in its own
    # worker and starts one, importing the function and loading the model, when none is free), and how long an idle
    # one is kept; 1 warms one worker only
    warm_workers: int = 16
    warm_idle_seconds: int = 3600

    @classmethod
    def resolve(cls, **explicit: Any) -> StackConfig:
        """The environment's settings, with what the last `make up` recorded filling the gaps it leaves."""
        cfg = cls(**explicit)
        recorded = cfg.recorded()
        given = cfg.model_fields_set
        update: dict[str, Any] = {}
        if "stack" not in given and recorded.get("runtime") in ("embedded", "compose"):
            update["stack"] = recorded["runtime"]
        for name in ("emulator_port", "frontend_port"):
            if name not in given and isinstance(recorded.get(name), int):
                update[name] = recorded[name]
        return cfg.model_copy(update=update) if update else cfg

    @property
    def root(self) -> pathlib.Path:
        return ROOT

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def frontend_url(self) -> str:
        return f"http://127.0.0.1:{self.frontend_port}"

    @property
    def logs_dir(self) -> pathlib.Path:
        return self.state_dir / "logs"

    @property
    def stack_info_file(self) -> pathlib.Path:
        return self.state_dir / "stack.json"

    def client(self, service: str, **config: Any):
        """A boto3 client for this stack's emulator: the one place devstack, the rehearsal and bench build them."""
        return emulator_client(service, self.endpoint, self.region, **config)

    def aws_env(self) -> dict[str, str]:
        """What any local client of the emulator needs: boto3 reads these by itself."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }

    def hook_env(self) -> dict[str, str]:
        """The variables the localstack-init hooks read (compose sets the same ones)."""
        return {
            **self.aws_env(),
            "SOMMELIER_ROOT": str(self.root),
            "SOMMELIER_PREFIX": self.prefix,
            "SOMMELIER_STACK_NAME": self.stack_name,
            "SOMMELIER_CODE_BUCKET": f"{self.prefix}-code",
            "SOMMELIER_DATASET_PREFIX": self.dataset_prefix,
            "SOMMELIER_PUBLIC_ENDPOINT": self.endpoint,
            "SOMMELIER_STACK_INFO_FILE": str(self.stack_info_file),
            "SOMMELIER_STACK_PARAMETERS": self.stack_parameters,
        }

    def recorded(self) -> dict[str, Any]:
        """stack.json as the last `make up` left it ({} when there is none or it is unreadable)."""
        try:
            doc = json.loads(self.stack_info_file.read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def stack_info(self) -> dict[str, Any]:
        return json.loads(self.stack_info_file.read_text())

"""The integration suite runs against a `Stack`: by default an embedded stack this session
starts on free ports in a temporary directory (so it never collides with `make up`), or
the stack described by $SOMMELIER_STACK_INFO (a stack.json written by the init hooks)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from devstack import runtime_for
from devstack.compose import Compose
from devstack.config import StackConfig, emulator_client
from devstack.embedded import Embedded
from devstack.runtime import StackError, free_port
from tests.summary import pytest_terminal_summary  # noqa: F401  (the run's last lines: times, what did not run)


@dataclass(frozen=True)
class Stack:
    api_url: str
    api_key: str
    aws_endpoint: str
    region: str
    outputs: dict[str, str]
    config: StackConfig | None  # set when this session runs the stack itself

    @property
    def runtime(self):
        """The runtime running this stack (None for a stack started elsewhere)."""
        return runtime_for(self.config) if self.config else None

    def client(self, service: str, **overrides: Any):
        """The one place tests build AWS clients."""
        return emulator_client(service, self.aws_endpoint, self.region, **overrides)

    def key_value(self, output: str = "FrontendApiKeyId") -> str:
        """The value of one of the stack's API keys (by its output), e.g. the page's own."""
        return self.client("apigateway").get_api_key(apiKey=self.outputs[output], includeValue=True)["value"]

    def put_signed_manifest(self, manifest: dict[str, Any]) -> None:
        """Write a model manifest as the trainer would, signed with the stack's key (to stage a release that is
        bad in some other way: the tests play the trainer, who may sign)."""
        from sommelier_contract.artifacts import Signatures, put_manifest
        from sommelier_contract.manifest import Manifest

        put_manifest(self.client("s3"), self.outputs["ModelBucketName"], Manifest.from_json(manifest),
                     Signatures(self.client("kms"), self.outputs["ModelSigningKeyAlias"]))

    def stored(self, prediction_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The DynamoDB item holding a prediction and the prediction's entry in it (predictor/records.py's layout:
        `<item id>.<batch index>`), read from the table itself; None when it is not there."""
        item_id, index = prediction_id.rsplit(".", 1)
        item = self.client("dynamodb").get_item(TableName=self.outputs["PredictionsTableName"],
                                                Key={"prediction_id": {"S": item_id}}).get("Item")
        entries = [e for e in json.loads(item["predictions"]["S"]) if e["batch_index"] == int(index)] if item else []
        return (item, entries[0]) if entries else None

    def post(self, path: str, body: Any = None, key: str | None = "default", **kw) -> requests.Response:
        headers = {"content-type": "application/json"}
        if key:
            headers["x-api-key"] = self.api_key if key == "default" else key
        data = kw.pop("data", None)
        return requests.post(f"{self.api_url}{path}", headers=headers, data=data if data is not None else json.dumps(body), timeout=30, **kw)

    def get(self, path: str, key: str | None = "default") -> requests.Response:
        headers = {"x-api-key": self.api_key if key == "default" else key} if key else {}
        return requests.get(f"{self.api_url}{path}", headers=headers, timeout=30)


def _from_info(info: dict[str, Any], config: StackConfig | None) -> Stack:
    return Stack(info["api_url"], info["api_key"], info["aws_endpoint"], info["region"], info["outputs"], config)


ROOT = Path(__file__).resolve().parents[2]
# The stacks the tests start (here, and the `python -m ops up` some run) warm 4 predictor workers, not make up's 16:
# a test needs the warm-up to work and the function to answer, not a fast first burst of 16 (`make bench` measures that)
os.environ.setdefault("SOMMELIER_WARM_WORKERS", "4")


def _compose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real docker-compose.yml through the compose runtime (`make test-compose`), on free ports:
    Docker, or Podman's Docker API (started by the runtime when it is installed)."""
    cfg = StackConfig(state_dir=tmp_path_factory.mktemp("compose"), emulator_port=free_port(), frontend_port=free_port(),
                      stack="compose", stack_parameters="ChampionRefreshSeconds=2,CanaryPercent=0")
    runtime = Compose(cfg)
    try:
        runtime.ensure_engine()
    except StackError as err:
        pytest.skip(f"SOMMELIER_TEST_STACK=compose needs a container engine: {err}")
    try:
        yield _from_info(runtime.up(), cfg)
    finally:
        runtime.down(purge=True)
    # `make down` leaves nothing behind: the API service this runtime started is gone too
    assert not runtime._service_pidfile.exists(), "the Podman API service's pid file outlived down"
    assert not runtime.shared_dir.exists(), "the shared folder (a stack.json with keys) outlived down"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    external = os.environ.get("SOMMELIER_STACK_INFO")
    if external:
        yield _from_info(json.loads(Path(external).read_text()), None)
        return
    if os.environ.get("SOMMELIER_TEST_STACK") == "compose":
        yield from _compose_stack(tmp_path_factory)
        return
    cfg = StackConfig(
        stack="embedded", state_dir=tmp_path_factory.mktemp("stack"), emulator_port=free_port(), frontend_port=free_port(),
        # a promoted model is picked up within 2 s, so tests can watch hot-swaps
        stack_parameters="ChampionRefreshSeconds=2,CanaryPercent=0",
    )
    try:
        info = Embedded(cfg).up()
        yield _from_info(info, cfg)
    finally:
        Embedded(cfg).down()


@pytest.fixture(scope="session")
def eventually() -> Callable[..., Any]:
    """Poll `check` until it stops raising AssertionError, for up to `timeout` seconds."""

    def wait(check: Callable[[], Any], timeout: float = 15) -> Any:
        for attempt in Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.2),
                                retry=retry_if_exception_type(AssertionError), reraise=True):
            with attempt:
                return check()

    return wait


@pytest.fixture(scope="session")
def example() -> dict[str, float]:
    return json.loads((Path(__file__).resolve().parents[2] / "examples/predict.json").read_text())["features"]

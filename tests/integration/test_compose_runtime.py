"""The compose runtime's own behaviour (`make test-compose` only): ports taken, images reused,
and `down` leaving no container, network or (purged) volume behind."""

from __future__ import annotations

import socket
import subprocess

import pytest

from devstack.compose import Compose
from devstack.config import StackConfig
from devstack.runtime import StackError

from .conftest import free_port


@pytest.fixture
def compose_stack(stack):
    if stack.config is None or stack.config.stack != "compose":
        pytest.skip("compose runtime behaviour: run with `make test-compose`")
    return stack


def _project_objects(project: str) -> tuple[list[str], list[str], list[str]]:
    label = f"label=com.docker.compose.project={project}"
    containers = subprocess.run(["podman", "ps", "-a", "--filter", label, "--format", "{{.Names}}"], capture_output=True,
                                text=True).stdout.split()
    networks = [n for n in subprocess.run(["podman", "network", "ls", "--format", "{{.Name}}"], capture_output=True,
                                          text=True).stdout.split() if n.startswith(project)]
    volumes = [v for v in subprocess.run(["podman", "volume", "ls", "--format", "{{.Name}}"], capture_output=True,
                                         text=True).stdout.split() if v.startswith(project)]
    return containers, networks, volumes


def test_a_second_stack_comes_up_on_its_own_ports_and_down_leaves_nothing(compose_stack, tmp_path):
    cfg = StackConfig(state_dir=tmp_path, emulator_port=free_port(), frontend_port=free_port(), stack="compose")
    runtime = Compose(cfg)
    try:
        info = runtime.up()
        assert info["aws_endpoint"].endswith(f":{cfg.emulator_port}") and runtime.health()["status"] == "ok"
        containers, networks, volumes = _project_objects(runtime.project)
        assert containers and networks and volumes, "the stack's containers, network and state volume exist while it is up"
        assert runtime.emulator_containers(), "the emulator runs the predictor image as containers of its own"
    finally:
        assert runtime.down(purge=True)
    assert _project_objects(runtime.project) == ([], [], [])  # down --purge, as `make clean` does
    assert runtime.emulator_containers() == [], "down removes the function and task containers the emulator started too"


def test_a_taken_port_is_refused_with_the_embedded_message(compose_stack, tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        runtime = Compose(StackConfig(state_dir=tmp_path, emulator_port=port, frontend_port=free_port(), stack="compose"))
        with pytest.raises(StackError, match=f"port {port} \\(emulator\\) is already in use.*EMULATOR_PORT"):
            runtime.up()

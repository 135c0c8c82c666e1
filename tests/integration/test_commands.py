"""The everyday commands (`python -m ops ...`, what every make target runs) find the running stack
from its stack.json alone: the ports are given to `up` once and never again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, free_port


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOMMELIER_", "AWS_"))}
    return {**env, "SOMMELIER_STATE_DIR": str(state_dir)}


def devstack(state_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], cwd=ROOT, env=_env(state_dir), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def own(stack):
    if stack.config is None:
        pytest.skip("needs the embedded stack this session started (its state directory)")
    return stack.config


def test_up_recorded_the_runtime_and_ports(own):
    recorded = json.loads(own.stack_info_file.read_text())
    assert (recorded["runtime"], recorded["emulator_port"], recorded["frontend_port"]) == (own.stack, own.emulator_port, own.frontend_port)


def test_status_names_the_ports_and_the_model_served_without_flags(stack, own):
    proc = devstack(own.state_dir, "status")
    assert proc.returncode == 0, proc.stderr
    assert f"127.0.0.1:{own.emulator_port}" in proc.stdout and f"127.0.0.1:{own.frontend_port}" in proc.stdout
    champion = json.loads(stack.client("s3").get_object(Bucket=stack.outputs["ModelBucketName"], Key="champion.json")["Body"].read())
    assert f"serving model {champion['version']}" in proc.stdout


def test_health_names_the_champion_from_the_moment_up_is_ready(stack):
    # `up` warmed the function; /health loads the champion itself, so no prediction is needed first
    body = stack.get("/health", key=None).json()
    assert body["status"] == "ok" and body["model_version"]


def test_history_lists_every_version_with_one_champion(stack, own):
    proc = devstack(own.state_dir, "history", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["champion"] for r in rows].count(True) == 1
    assert all(r["trained_at"] and r["holdout_accuracy"] is not None for r in rows if "note" not in r)
    table = devstack(own.state_dir, "history").stdout
    assert "* = champion" in table and rows[0]["version"] in table


def test_promote_of_an_unknown_version_says_so_in_one_line(own):
    proc = devstack(own.state_dir, "promote", "no-such-version")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: there is no model version 'no-such-version' (`make history` lists them)"


def test_logs_render_the_function_lines_readably(stack, own, example, eventually):
    request_id = stack.post("/predict", {"features": example}).json()["request_id"]

    def rendered():
        out = devstack(own.state_dir, "logs", "--lines", "200").stdout
        line = next((x for x in out.splitlines() if request_id in x), None)
        assert line, f"no rendered line for {request_id}"
        return line

    line = eventually(rendered)
    assert "POST" in line and "/predict" in line and " 200 " in line and " ms" in line and "model " in line
    assert not line.lstrip().startswith("{")


def test_commands_without_a_stack_say_so_in_one_line(tmp_path):
    (tmp_path / "stack.json").write_text(json.dumps({"runtime": "embedded", "emulator_port": free_port(), "frontend_port": free_port()}))
    for command in ("train", "history", "logs", "metrics", "rollback", "info"):
        proc = devstack(tmp_path, command, timeout=60)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "make up" in lines[0], (command, proc.stderr)
    status = devstack(tmp_path, "status")
    assert status.returncode == 0 and "not running" in status.stdout and "make up" in status.stdout

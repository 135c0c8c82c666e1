"""Static checks of the compose path (`make test-compose` runs it for real where Docker or Podman is)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILES = sorted([*ROOT.glob("services/*/Dockerfile"), ROOT / "containers/emulator/Dockerfile"])
FROM_SHELL = {"PWD"}  # set by the shell, not by .env


def _env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_every_variable_compose_reads_is_in_env_example():
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    assert used, "the compose file reads no variables?"
    assert used - FROM_SHELL <= set(_env_example()), sorted(used - FROM_SHELL - set(_env_example()))


def test_required_variables_fail_loudly():
    text = COMPOSE.read_text()
    for name in ("EMULATOR_IMAGE", "EMULATOR_PORT", "SOMMELIER_PREFIX", "AWS_DEFAULT_REGION"):
        assert re.search(r"\$\{" + name + r":\?", text), f"{name} should be written ${{{name}:?...}}"


def test_the_emulator_is_the_last_free_localstack_and_healthchecks_mean_provisioned():
    doc = yaml.safe_load(COMPOSE.read_text())
    assert _env_example()["EMULATOR_IMAGE"] == "localstack/localstack:4.14.0"
    emulator = doc["services"]["localstack"]
    assert "/_localstack/init/ready" in " ".join(emulator["healthcheck"]["test"])
    assert "./localstack-init:/etc/localstack/init:ro" in emulator["volumes"]
    assert "${DOCKER_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock" in emulator["volumes"]
    assert "/_ministack/ready" in " ".join(emulator["healthcheck"]["test"])  # MiniStack's image on machines without LocalStack's
    for name in ("trainer", "frontend"):
        assert doc["services"][name]["depends_on"]["localstack"]["condition"] == "service_healthy"


def test_the_hooks_get_every_variable_they_read():
    hooks = "\n".join(p.read_text() for p in (ROOT / "localstack-init").rglob("*.py"))
    read = set(re.findall(r'env\("([A-Z0-9_]+)"\)', hooks))
    given = set(yaml.safe_load(COMPOSE.read_text())["services"]["localstack"]["environment"])
    assert read <= given, sorted(read - given)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfiles_take_a_pinned_base_install_from_the_locks_and_run_unprivileged(dockerfile):
    text = dockerfile.read_text()
    assert re.search(r"^FROM\s+\$\{BASE_IMAGE\}", text, re.M), "the base is a build argument (make images passes a local one)"
    base = re.search(r"^ARG\s+BASE_IMAGE=(\S+)", text, re.M).group(1)
    assert base.startswith("python:3.12") and re.search(r":\d+\.\d+\.\d+", base), base
    assert "HEALTHCHECK" in text
    assert re.search(r"^COPY requirements/[a-z-]+\.txt", text, re.M), "images install a lock, not top-level pins"
    assert re.search(r"^USER\s+(?!root|0\b)\S+", text, re.M)


def test_the_predictor_image_enters_through_the_runtime_interface_client():
    text = (ROOT / "services/predictor/Dockerfile").read_text()
    # the entry point runs awslambdaric (under the project's RIE where Lambda gives no Runtime API: test_lambda_rie.py)
    assert 'ENTRYPOINT ["/lambda-entrypoint.sh"]' in text and 'CMD ["predictor.handler.lambda_handler"]' in text
    assert "COPY containers/rie/lambda-entrypoint.sh /lambda-entrypoint.sh" in text and "SOMMELIER_PACKAGE=image" in text


def test_the_compose_emulator_runs_image_functions_and_tasks_on_the_stacks_network():
    emulator = yaml.safe_load(COMPOSE.read_text())["services"]["localstack"]
    env = emulator["environment"]
    assert {"lambda", "ecs"} <= set(env["SERVICES"].split(","))
    assert env["LAMBDA_DOCKER_NETWORK"].startswith("${SOMMELIER_NETWORK") and env["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert yaml.safe_load(COMPOSE.read_text())["networks"]["default"]["name"] == "${SOMMELIER_NETWORK}"


def test_docker_compose_config_validates(tmp_path):
    binary = shutil.which("docker-compose")
    if not binary:
        pytest.skip("Debian's docker-compose is not installed (.ci/run installs it without the engine)")
    proc = subprocess.run([binary, "--env-file", str(ROOT / ".env.example"), "-f", str(COMPOSE), "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PWD": str(ROOT)})
    assert proc.returncode == 0, proc.stderr


def test_docker_compose_config_catches_a_broken_file(tmp_path):
    binary = shutil.which("docker-compose")
    if not binary:
        pytest.skip("Debian's docker-compose is not installed")
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("condition: service_healthy", "condition: service_is_fine", 1))
    proc = subprocess.run([binary, "--env-file", str(ROOT / ".env.example"), "-f", str(broken), "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PWD": str(ROOT)})
    assert proc.returncode != 0


def test_dockerfiles_pass_hadolint():
    hadolint = Path(shutil.which("hadolint") or Path(__import__("sys").executable).parent / "hadolint")
    proc = subprocess.run([str(hadolint), "--no-color", *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

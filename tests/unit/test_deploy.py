"""make deploy stops before changing anything when the credentials or the account are wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from moto import mock_aws

from deployer.deploy import DeployConfig, Deployer
from devstack.runtime import StackError

ROOT = Path(__file__).resolve().parents[2]


def _no(_: str) -> bool:
    raise AssertionError("nothing may be asked before the credentials are checked")


def test_no_credentials_is_one_line_naming_what_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOY_", "SOMMELIER_"))}
    env.update({"AWS_REGION": "eu-west-1", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true", "SOMMELIER_STATE_DIR": str(tmp_path)})
    proc = subprocess.run([sys.executable, "-m", "ops", "deploy", "--yes"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: no AWS credentials: set AWS_PROFILE (or assume a role; never put keys in a file here)"]
    assert "==> bootstrap" not in proc.stdout


def test_no_region_is_refused(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(StackError, match="no AWS region"):
        Deployer(DeployConfig(), _no)


def test_the_wrong_account_stops_before_anything_changes(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        deployer = Deployer(DeployConfig(account_id="999999999999"), _no)
        with pytest.raises(StackError, match="account 123456789012, DEPLOY_ACCOUNT_ID says 999999999999: nothing changed"):
            deployer.deploy()
        assert deployer.s3.list_buckets()["Buckets"] == []  # no bootstrap, no code bucket


def test_the_predictor_layer_is_built_and_published_once_per_lock_and_python(monkeypatch, tmp_path):
    """deployer/layer.py: the SnapStart zip's dependency layer, content-addressed: a second deploy with the same lock and
    Python finds the published version and builds nothing; another Python is another layer."""
    import zipfile

    import boto3

    from deployer import layer

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    built: list[str] = []

    def build(python: str, folder: Path) -> tuple[Path, int]:
        built.append(python)
        out = folder / "layer.zip"
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("python/numpy/__init__.py", "")
        return out, 1

    monkeypatch.setattr(layer, "build", build)
    with mock_aws():
        session = boto3.session.Session()
        session.client("s3").create_bucket(Bucket="code")
        first = layer.publish(session, "code", "sommelier", "3.12")
        assert layer.publish(session, "code", "sommelier", "3.12") == first
        assert built == ["3.12"], "the second deploy built the layer again"
        other = layer.publish(session, "code", "sommelier", "3.11")
        assert other != first and built == ["3.12", "3.11"]
        assert layer.key("3.12") != layer.key("3.11") and layer.key("3.12").startswith("layers/predictor-deps-py3.12-")


def test_a_layer_past_lambdas_limit_is_refused_in_words(monkeypatch, tmp_path):
    from deployer import layer

    def pip(cmd, **_):
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "scipy").mkdir(parents=True)
        (target / "scipy" / "big.so").write_bytes(b"\0" * 2_000_000)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(layer.subprocess, "run", pip)
    monkeypatch.setattr(layer, "LIMIT_MB", 1)
    with pytest.raises(StackError, match="2 MB unzipped, past Lambda's 1 MB: deploy the predictor as its image"):
        layer.build("3.12", tmp_path)

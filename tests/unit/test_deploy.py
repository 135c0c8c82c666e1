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

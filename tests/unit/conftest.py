"""Unit-test fixtures: moto's in-process AWS, a trained model in it, no network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from sommelier_contract.artifacts import Signatures
from trainer import train as trainer_train
from trainer.config import Settings as TrainerSettings

ROOT = Path(__file__).resolve().parents[2]
DATASET_BUCKET, MODEL_BUCKET, PREFIX = "unit-datasets", "unit-models", "datasets/wine"

# the least a manifest holds (Manifest.from_json refuses less), for a model described here rather than trained
MINIMAL_MANIFEST = {"version": "v", "created_at": None, "classes": [], "features": [], "artifacts": {}, "libraries": {},
                    "metrics": {"holdout": {"accuracy": 1.0, "f1_macro": 1.0}}}


@pytest.fixture
def aws() -> Iterator[None]:
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in [*env, "AWS_ENDPOINT_URL"]}
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    for bucket in (DATASET_BUCKET, MODEL_BUCKET):
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/data.csv", Body=(ROOT / "data/wine.csv").read_bytes())
    client.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/spec.json", Body=(ROOT / "data/wine.spec.json").read_bytes())
    return client


@pytest.fixture
def signing_key(aws) -> str:
    """The trainer's manifest-signing key (asymmetric, as the template declares it)."""
    return boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]


@pytest.fixture
def signatures(signing_key) -> Signatures:
    return Signatures(boto3.client("kms"), signing_key)


@pytest.fixture
def trainer_settings(signing_key) -> TrainerSettings:
    return TrainerSettings(dataset_bucket=DATASET_BUCKET, dataset_prefix=PREFIX, model_bucket=MODEL_BUCKET, cv_folds=3,
                           model_signing_key=signing_key,
                           families="logistic_regression")  # one family keeps these tests fast; test_lifecycle compares all


@pytest.fixture
def trained(s3, trainer_settings) -> trainer_train.Outcome:
    outcome = trainer_train.run(trainer_settings, s3)
    assert outcome.promoted, outcome.reason
    return outcome


@pytest.fixture
def cli_env(monkeypatch, signing_key) -> None:
    """The trainer CLI's settings, as the ECS task's environment gives them."""
    for name, value in {"MODEL_SIGNING_KEY": signing_key,
                        "DATASET_BUCKET": DATASET_BUCKET, "DATASET_PREFIX": PREFIX, "MODEL_BUCKET": MODEL_BUCKET, "CV_FOLDS": "3",
                        "FAMILIES": "logistic_regression"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def example() -> dict:
    import json

    return json.loads((ROOT / "examples/predict.json").read_text())["features"]

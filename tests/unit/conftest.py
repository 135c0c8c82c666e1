"""Unit-test fixtures: moto's in-process AWS, a trained model in it, no network."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import weakref
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from predictor.metrics import MetricBuffer
from sommelier_contract.artifacts import Signatures, put_manifest
from sommelier_contract.manifest import Manifest
from tests.summary import pytest_terminal_summary  # noqa: F401  (the run's last lines: times, what did not run)
from trainer import train as trainer_train
from trainer.config import Settings as TrainerSettings

ROOT = Path(__file__).resolve().parents[2]
DATASET_BUCKET, MODEL_BUCKET, PREFIX = "unit-datasets", "unit-models", "datasets/wine"

# the least a manifest holds (Manifest.from_json refuses less), for a model described here rather than trained
MINIMAL_MANIFEST = {"version": "v", "created_at": None, "classes": [], "features": [], "artifacts": {}, "libraries": {},
                    "metrics": {"holdout": {"accuracy": 1.0, "f1_macro": 1.0}}}


_BUFFERS: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()
_buffer_init = MetricBuffer.__init__


def _registered(self, *args, **kwargs) -> None:
    _buffer_init(self, *args, **kwargs)
    _BUFFERS.add(self)


MetricBuffer.__init__ = _registered  # type: ignore[method-assign]  # so `aws` can flush every test's buffers


@pytest.fixture
def aws() -> Iterator[None]:
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in [*env, "AWS_ENDPOINT_URL"]}
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        yield
        for buffer in list(_BUFFERS):  # their threads send into this test's moto, never into the next test's, and end
            buffer.close(5)
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


# what a training run wrote, by what it was given: (outcome, [(bucket, key, body, content type, metadata)])
_TRAINED: dict[str, tuple[trainer_train.Outcome, list[tuple[str, str, bytes, str, dict[str, str]]]]] = {}


def _latest_objects(s3) -> dict[tuple[str, str], tuple[str, bytes, str, dict[str, str]]]:
    out = {}
    for bucket in (DATASET_BUCKET, MODEL_BUCKET):
        for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            obj = s3.get_object(Bucket=bucket, Key=listed["Key"])
            out[(bucket, listed["Key"])] = (listed["ETag"], obj["Body"].read(), obj.get("ContentType", ""), obj.get("Metadata", {}))
    return out


@pytest.fixture
def trained(s3, trainer_settings, signatures) -> trainer_train.Outcome:
    """A model trained and promoted in this test's moto. 174 tests take one, and the same settings on the same files train
    the same model: the first test of each (settings, files) trains it, the others get what it wrote written again into
    their own moto and its manifest signed with their own key (the training was a third of the unit suite's time)."""
    before = _latest_objects(s3)
    fresh = not any(bucket == MODEL_BUCKET for bucket, _ in before)  # a model already there: train for real
    given = trainer_settings.model_dump(exclude={"model_signing_key"})
    key = hashlib.sha256(json.dumps([given, sorted((f"{b}/{k}", v[0]) for (b, k), v in before.items())], default=str).encode()).hexdigest()
    if not fresh or key not in _TRAINED:
        outcome = trainer_train.run(trainer_settings, s3)
        assert outcome.promoted, outcome.reason
        written = [(b, k, *v[1:]) for (b, k), v in _latest_objects(s3).items() if before.get((b, k), ("",))[0] != v[0]]
        if fresh:
            _TRAINED[key] = (copy.deepcopy(outcome), written)
        return outcome
    outcome, written = _TRAINED[key]
    versions, manifests = {}, []  # the manifest pins each artifact's S3 version: this moto's
    for bucket, name, body, content_type, metadata in written:
        if name.endswith("/manifest.json"):
            manifests.append(Manifest.from_json(body))
        elif not name.endswith("/manifest.sig"):
            versions[name] = s3.put_object(Bucket=bucket, Key=name, Body=body, ContentType=content_type, Metadata=metadata).get("VersionId")
    for manifest in manifests:  # written and signed again with this test's key, as the trainer writes it
        artifacts = {n: replace(a, version_id=versions.get(a.key, a.version_id)) for n, a in manifest.artifacts.items()}
        put_manifest(s3, MODEL_BUCKET, replace(manifest, artifacts=artifacts), signatures)
    return copy.deepcopy(outcome)


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

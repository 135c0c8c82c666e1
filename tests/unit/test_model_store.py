import json

import pytest

from predictor.model_store import ArtifactRejected, ModelStore, ModelUnavailable, load_model
from trainer import train as trainer_train

from .conftest import MODEL_BUCKET


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _manifest(s3, version):
    return json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{version}/manifest.json")["Body"].read())


def _put_manifest(s3, version, manifest):
    s3.put_object(Bucket=MODEL_BUCKET, Key=f"models/{version}/manifest.json", Body=json.dumps(manifest).encode())


def test_loads_the_champion_and_predicts(s3, trained, example):
    model = ModelStore(s3, MODEL_BUCKET, 30).current()
    assert model.version == trained.version
    row = [[example[n] for n in [f["name"] for f in model.features]]]
    assert model.pipeline.predict_proba(row).shape == (1, 3)


def test_no_champion_is_unavailable(s3):
    with pytest.raises(ModelUnavailable, match="no model has been promoted"):
        ModelStore(s3, MODEL_BUCKET, 30).current()


def test_a_tampered_artifact_is_refused_before_unpickling(s3, trained):
    key = f"models/{trained.version}/pipeline.joblib"
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=b"not the artifact the manifest describes")
    manifest = _manifest(s3, trained.version)
    manifest["artifacts"]["pipeline"].pop("version_id")  # read the latest (tampered) object
    _put_manifest(s3, trained.version, manifest)
    with pytest.raises(ArtifactRejected, match="has sha256"):
        load_model(s3, MODEL_BUCKET, trained.version)


def test_a_different_scikit_learn_version_is_refused(s3, trained):
    manifest = _manifest(s3, trained.version)
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    _put_manifest(s3, trained.version, manifest)
    with pytest.raises(ArtifactRejected, match="trained with scikit-learn 0.24.2"):
        load_model(s3, MODEL_BUCKET, trained.version)


def test_an_artifact_outside_its_version_folder_is_refused(s3, trained):
    manifest = _manifest(s3, trained.version)
    manifest["artifacts"]["pipeline"]["key"] = "elsewhere/pipeline.joblib"
    _put_manifest(s3, trained.version, manifest)
    with pytest.raises(ArtifactRejected, match="points outside"):
        load_model(s3, MODEL_BUCKET, trained.version)


def test_a_new_champion_is_picked_up_after_the_refresh_interval(s3, trainer_settings, trained):
    clock = Clock()
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=30, clock=clock)
    assert store.current().version == trained.version
    newer = trainer_train.run(trainer_settings, s3)
    assert newer.promoted
    clock.now = 10
    assert store.current().version == trained.version  # within the interval: cached
    clock.now = 31
    assert store.current().version == newer.version


def test_a_broken_new_champion_never_replaces_a_working_one(s3, trainer_settings, trained):
    clock = Clock()
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, clock=clock)
    store.current()
    newer = trainer_train.run(trainer_settings, s3)
    manifest = _manifest(s3, newer.version)
    manifest["artifacts"]["label_encoder"]["sha256"] = "0" * 64
    _put_manifest(s3, newer.version, manifest)
    clock.now = 5
    assert store.current().version == trained.version

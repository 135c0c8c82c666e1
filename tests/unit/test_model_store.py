import json

import pytest

from predictor.model_store import ArtifactRejected, LoadedModel, ModelStore, ModelUnavailable, load_model
from sommelier_contract import layout, pointers
from sommelier_contract.artifacts import Signatures, put_manifest
from sommelier_contract.manifest import Manifest
from trainer import train as trainer_train

from .conftest import MODEL_BUCKET


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _manifest(s3, version):
    return json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{version}/manifest.json")["Body"].read())


def _put_manifest(s3, version, manifest, signed_by=None):
    """A rewritten manifest: signed (as if the trainer wrote it, to test the checks after the signature) or not (tampering)."""
    if signed_by:
        put_manifest(s3, MODEL_BUCKET, Manifest.from_json(manifest), signed_by)
    else:
        s3.put_object(Bucket=MODEL_BUCKET, Key=f"models/{version}/manifest.json", Body=json.dumps(manifest).encode())


def test_loads_the_champion_and_predicts(s3, trained, example, signatures):
    model = ModelStore(s3, MODEL_BUCKET, 30, signatures).current()
    assert model.version == trained.version
    row = [[example[n] for n in [f["name"] for f in model.features]]]
    assert model.pipeline.predict_proba(row).shape == (1, 3)


def test_no_champion_is_unavailable(s3, signatures):
    with pytest.raises(ModelUnavailable, match="no model has been promoted"):
        ModelStore(s3, MODEL_BUCKET, 30, signatures).current()


def test_a_tampered_artifact_is_refused_before_unpickling(s3, trained, signatures):
    key = f"models/{trained.version}/pipeline.joblib"
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=b"not the artifact the manifest describes")
    manifest = _manifest(s3, trained.version)
    manifest["artifacts"]["pipeline"].pop("version_id")  # read the latest (tampered) object
    _put_manifest(s3, trained.version, manifest, signatures)
    with pytest.raises(ArtifactRejected, match="has sha256"):
        load_model(s3, MODEL_BUCKET, trained.version, signatures)


def test_a_different_scikit_learn_version_is_refused(s3, trained, signatures):
    manifest = _manifest(s3, trained.version)
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    _put_manifest(s3, trained.version, manifest, signatures)
    with pytest.raises(ArtifactRejected, match="trained with scikit-learn 0.24.2"):
        load_model(s3, MODEL_BUCKET, trained.version, signatures)


def test_an_artifact_outside_its_version_folder_is_refused(s3, trained, signatures):
    manifest = _manifest(s3, trained.version)
    manifest["artifacts"]["pipeline"]["key"] = "elsewhere/pipeline.joblib"
    _put_manifest(s3, trained.version, manifest, signatures)
    with pytest.raises(ArtifactRejected, match="points outside"):
        load_model(s3, MODEL_BUCKET, trained.version, signatures)


def test_a_new_champion_is_picked_up_after_the_refresh_interval(s3, trainer_settings, trained, signatures):
    clock = Clock()
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=30, signatures=signatures, clock=clock)
    assert store.current().version == trained.version
    newer = trainer_train.run(trainer_settings, s3)
    assert newer.promoted
    clock.now = 10
    assert store.current().version == trained.version  # within the interval: cached
    clock.now = 31
    assert store.current().version == newer.version


def test_a_broken_new_champion_never_replaces_a_working_one(s3, trainer_settings, trained, signatures):
    clock = Clock()
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures, clock=clock)
    store.current()
    newer = trainer_train.run(trainer_settings, s3)
    manifest = _manifest(s3, newer.version)
    manifest["artifacts"]["label_encoder"]["sha256"] = "0" * 64
    _put_manifest(s3, newer.version, manifest)
    clock.now = 5
    assert store.current().version == trained.version


def test_a_new_worker_with_a_refused_champion_serves_the_newest_earlier_one_that_verifies(s3, trainer_settings, trained, signatures):
    newer = trainer_train.run(trainer_settings, s3)
    assert newer.promoted
    manifest = _manifest(s3, newer.version)
    manifest["artifacts"]["pipeline"]["sha256"] = "0" * 64
    _put_manifest(s3, newer.version, manifest)
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures)  # a cold worker: nothing loaded yet
    assert store.current().version == trained.version
    assert newer.version in store.degraded and f"serving {trained.version}" in store.degraded


@pytest.mark.parametrize("break_it", ["unsigned", "tampered"])
def test_a_warm_worker_drops_its_copy_of_a_version_that_no_longer_verifies(s3, trainer_settings, trained, signatures, break_it):
    """Issue 23: the pointer is written again naming the version a warm worker already holds (it verified then); its
    signature is gone or its manifest was changed since. The worker verifies again and serves what does verify."""

    clock = Clock()
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures, clock=clock)
    assert store.current().version == trained.version  # warm: holds the first champion
    newer = trainer_train.run(trainer_settings, s3)
    assert newer.promoted
    if break_it == "unsigned":
        s3.delete_object(Bucket=MODEL_BUCKET, Key=f"models/{trained.version}/manifest.sig")
    else:
        manifest = _manifest(s3, trained.version)
        manifest["gate"]["passed"] = True
        manifest["metrics"]["holdout"]["accuracy"] = 1.0
        _put_manifest(s3, trained.version, manifest)  # not signed by the trainer's key
    pointers.promote(s3, MODEL_BUCKET, trained.version, "pointed back by hand", "2026-11-30T00:00:00+00:00")
    clock.now = 5
    assert store.current().version == newer.version  # not the copy it held of the refused version
    assert trained.version in store.degraded and f"serving {newer.version}" in store.degraded
    cold = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures)
    assert cold.current().version == newer.version  # warm and cold workers answer alike


def test_a_pointer_rewritten_to_the_same_good_version_keeps_serving_it(s3, trained, signatures):

    clock = Clock()
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures, clock=clock)
    first = store.current()
    pointers.promote(s3, MODEL_BUCKET, trained.version, "again", "2026-11-30T00:00:00+00:00")
    clock.now = 5
    again = store.current()
    assert again.version == trained.version and again is not first and store.degraded is None  # verified again, same answer


def test_a_candidate_written_again_is_verified_again(s3, trainer_settings, trained, signatures):

    clock = Clock()
    newer = trainer_train.run(trainer_settings, s3, promote=False)
    pointers.propose(s3, MODEL_BUCKET, newer.version, 50, "trial", "2026-11-30T00:00:00+00:00", trained.version)
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures, clock=clock)
    store.current()
    assert store.candidate == (newer.version, 50)
    s3.delete_object(Bucket=MODEL_BUCKET, Key=f"models/{newer.version}/manifest.sig")
    pointers.propose(s3, MODEL_BUCKET, newer.version, 50, "trial again", "2026-11-30T00:01:00+00:00", trained.version)
    clock.now = 5
    store.current()
    assert store.candidate is None


def test_degraded_clears_once_a_rollback_restores_a_good_champion(s3, trainer_settings, trained, signatures):

    clock = Clock()
    store = ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures, clock=clock)
    store.current()
    broken = trainer_train.run(trainer_settings, s3)
    s3.delete_object(Bucket=MODEL_BUCKET, Key=f"models/{broken.version}/manifest.sig")
    clock.now = 5
    assert store.current().version == trained.version and store.degraded
    pointers.promote(s3, MODEL_BUCKET, trained.version, f"rollback from {broken.version}", "2026-11-30T00:00:00+00:00")
    clock.now = 10
    assert store.current().version == trained.version and store.degraded is None


def test_with_no_champion_that_verifies_the_store_is_unavailable_saying_why(s3, trained, signatures):
    manifest = _manifest(s3, trained.version)
    manifest["libraries"]["scikit-learn"] = "0.1"
    _put_manifest(s3, trained.version, manifest)
    with pytest.raises(ModelUnavailable, match="no earlier champion verifies"):
        ModelStore(s3, MODEL_BUCKET, refresh_seconds=1, signatures=signatures).current()


def test_a_manifest_rewritten_without_the_trainers_key_is_refused(s3, trained, signatures):
    manifest = _manifest(s3, trained.version)
    manifest["artifacts"]["pipeline"]["sha256"] = "0" * 64  # what an attacker with bucket access would change
    _put_manifest(s3, trained.version, manifest)
    with pytest.raises(ArtifactRejected, match="signature of model .* is for another document"):
        load_model(s3, MODEL_BUCKET, trained.version, signatures)


def test_a_manifest_signed_with_another_key_or_not_at_all_is_refused(s3, trained, signatures):
    import boto3

    kms = boto3.client("kms")
    other = Signatures(kms, kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"])
    _put_manifest(s3, trained.version, _manifest(s3, trained.version), other)
    with pytest.raises(ArtifactRejected, match="does not verify with the trainer's key"):
        load_model(s3, MODEL_BUCKET, trained.version, signatures)
    s3.delete_object(Bucket=MODEL_BUCKET, Key=f"models/{trained.version}/manifest.sig")
    with pytest.raises(ArtifactRejected, match="is not signed"):
        load_model(s3, MODEL_BUCKET, trained.version, signatures)


def test_a_restored_worker_reads_the_champion_pointer_unless_the_snapshot_read_it_within_the_refresh(s3, trained, signatures):
    """Issue 51 (4): a worker restored from a SnapStart snapshot serves what was promoted after the snapshot as soon as a
    warm worker would: it re-reads the pointer unless the snapshot's read of it is younger than the refresh, by the wall
    clock (a monotonic one need not run across a restore: here it stands still)."""
    clock, wall = Clock(), Clock()
    store = ModelStore(s3, MODEL_BUCKET, 30, signatures, clock=clock, wall=wall)
    assert store.current().version == trained.version  # the snapshot's read
    s3.delete_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY)  # the champion changes after the snapshot

    wall.now = 29.0
    store.restored()
    assert store.current().version == trained.version, "read 29 s before: served as any warm worker would"
    wall.now = 31.0
    store.restored()
    with pytest.raises(ModelUnavailable):
        store.current()


def test_a_snapshot_taken_before_any_champion_serves_once_one_is_promoted(s3, trained, signatures):
    s3.delete_object(Bucket=MODEL_BUCKET, Key=layout.CHAMPION_KEY)
    store = ModelStore(s3, MODEL_BUCKET, 30, signatures, clock=Clock(), wall=Clock())
    with pytest.raises(ModelUnavailable):
        store.current()  # the snapshot: nothing promoted yet
    pointers.promote(s3, MODEL_BUCKET, trained.version, "first model", "2026-12-07T00:00:00Z")
    store.restored()
    assert store.current().version == trained.version


def test_without_scikit_learn_an_onnx_model_answers_and_explains_and_one_without_onnx_is_refused(s3, trained, signatures, example,
                                                                                                 monkeypatch):
    """The SnapStart zip leaves scikit-learn and SciPy out (Lambda's 250 MB): a model with an ONNX conversion answers and
    is explained by occlusion through ONNX Runtime; one without is refused in words, never unpickled."""
    import importlib.util

    from predictor import serving

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    model = ModelStore(s3, MODEL_BUCKET, 30, signatures).current()
    assert model.runtime == "onnx" and model.pipeline_here is None
    scored = serving.predict(model, serving.decode({"features": example}, model, 1), explain=True)
    assert scored.predictions[0]["label"] == "class_0"
    explanation = scored.explanations[0]
    assert explanation["method"] == "occlusion" and explanation["top"], explanation
    assert {t["feature"] for t in explanation["top"]} <= {f["name"] for f in model.features}
    assert "pipeline" not in model.__dict__, "the pipeline was unpickled"

    blobs = {k: v for k, v in model.blobs.items() if k != "onnx"}
    with pytest.raises(ArtifactRejected, match="no ONNX conversion .* no scikit-learn .* predictor image"):
        LoadedModel(version=model.version, manifest=model.manifest, validator=model.validator, blobs=blobs)

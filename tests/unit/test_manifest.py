"""The manifest as one type: what the trainer writes reads back to the same bytes, older manifests still read, and a
malformed one is refused with words (never unpickled, never half-read)."""

from __future__ import annotations

import json

import pytest

from predictor.model_store import ModelStore
from sommelier_contract import artifacts
from sommelier_contract.manifest import FORMAT, Manifest

from .conftest import MINIMAL_MANIFEST, MODEL_BUCKET


def _written(s3, version: str) -> bytes:
    return s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{version}/manifest.json")["Body"].read()


def test_a_trained_manifest_reads_back_to_the_bytes_that_were_signed(s3, trained):
    body = _written(s3, trained.version)
    manifest = Manifest.from_json(body)
    assert manifest.to_json() == body  # nothing the trainer writes is dropped or reshaped by the type
    assert manifest.format == FORMAT and manifest.version == trained.version
    assert manifest.winner is manifest.metrics.cv[manifest.model.name or ""]


def test_a_format_1_manifest_still_reads_and_its_gate_decision_is_kept(s3, trained, signatures):
    old = json.loads(_written(s3, trained.version))
    old["format"] = 1
    old["gate"]["promoted"] = old["gate"].pop("passed")  # format 1's name for the gate's decision
    for absent in ("serving", "importances", "evaluation", "timings"):
        old.pop(absent)
    manifest = Manifest.from_json(old)
    assert manifest.gate.passed is True and manifest.serving.runtime == "joblib" and manifest.importances is None
    artifacts.put_manifest(s3, MODEL_BUCKET, manifest, signatures)  # signed as it reads: the predictor serves it
    model = ModelStore(s3, MODEL_BUCKET, 30, signatures).current()
    assert model.version == trained.version and model.manifest.card()["gate"]["passed"] is True


@pytest.mark.parametrize(("doc", "words"), [
    (b"[1, 2]", "a manifest is a JSON object"),
    (b"{not json", "Expecting property name"),
    (json.dumps({k: v for k, v in MINIMAL_MANIFEST.items() if k != "classes"}).encode(), "manifest lacks classes"),
    (json.dumps(MINIMAL_MANIFEST | {"metrics": {"holdout": "good"}}).encode(), "manifest.metrics.holdout must be an object"),
    (json.dumps(MINIMAL_MANIFEST | {"artifacts": {"pipeline": {"key": "k"}}}).encode(), "manifest.artifacts.pipeline lacks sha256"),
])
def test_a_malformed_manifest_is_refused_saying_what_is_wrong_where(s3, trained, doc, words):
    s3.put_object(Bucket=MODEL_BUCKET, Key=f"models/{trained.version}/manifest.json", Body=doc)
    with pytest.raises(artifacts.ArtifactRejected, match=f"manifest of model {trained.version} cannot be read: .*{words}"):
        artifacts.read_manifest(s3, MODEL_BUCKET, trained.version)

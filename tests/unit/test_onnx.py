"""The ONNX route: the trainer keeps a conversion only when it is faithful on the holdout, the predictor prefers it
and then never imports scikit-learn or SciPy, and a model without one is served by the pipeline as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine

from predictor.model_store import load_model
from sommelier_contract.manifest import Manifest
from sommelier_contract.records import RecordValidator
from trainer import onnx_export
from trainer.pipeline import build, candidates

from .conftest import MINIMAL_MANIFEST as MINIMAL
from .conftest import MODEL_BUCKET

ROOT = Path(__file__).resolve().parents[2]
WINE = [{"name": f"f{i}", "type": "numeric"} for i in range(13)]


def _wine(name: str):
    X, y = load_wine(return_X_y=True)
    X = X.copy()
    X[::7, 2] = np.nan  # missing values go through the imputer in both runtimes
    return build(WINE, candidates(WINE, len(y), 0)[name]).fit(X[::2], y[::2]), X[1::2]


def test_a_linear_pipeline_converts_and_matches_on_the_holdout():
    pipeline, holdout = _wine("logistic_regression")
    body, report = onnx_export.export(pipeline, WINE, holdout)
    assert body and report["runtime"] == "onnx" and report["max_abs_diff"] <= onnx_export.TOLERANCE
    assert report["holdout_rows"] == len(holdout)


def test_a_conversion_that_differs_beyond_the_tolerance_is_not_used():
    pipeline, holdout = _wine("logistic_regression")
    exact = pipeline.predict_proba
    pipeline.predict_proba = lambda X: exact(X) + 1e-4  # as a float32 tree split flipping would show
    body, report = onnx_export.export(pipeline, WINE, holdout)
    assert body is None and report["runtime"] == "joblib" and "differ by up to 0.0001" in report["onnx"]


def test_text_and_categorical_pipelines_are_served_by_the_pipeline_saying_why():
    features = [{"name": "score", "type": "numeric"}, {"name": "variety", "type": "categorical"}, {"name": "notes", "type": "text"}]
    body, report = onnx_export.export(object(), features, np.empty((0, 3), dtype=object))
    assert body is None and report == {"runtime": "joblib",
                                       "onnx": "not converted: categorical and text features are served by the pipeline"}


def test_the_trainer_writes_the_conversion_and_the_predictor_answers_through_it(s3, trained, signatures, example):
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{trained.version}/manifest.json")["Body"].read())
    model = load_model(s3, MODEL_BUCKET, trained.version, signatures)
    assert model.runtime == manifest["serving"]["runtime"]
    if model.runtime == "joblib":
        pytest.skip(f"this run's winner was not converted: {manifest['serving']['onnx']}")
    assert "onnx" in manifest["artifacts"]
    X = np.array([[example[f["name"]] for f in model.features]], dtype=float)
    assert np.abs(model.predict_proba(X) - model.pipeline.predict_proba(X)).max() <= onnx_export.TOLERANCE


def test_an_onnx_served_model_never_imports_scikit_learn_or_scipy(tmp_path):
    pipeline, holdout = _wine("logistic_regression")
    body, _ = onnx_export.export(pipeline, WINE, holdout)
    (tmp_path / "model.onnx").write_bytes(body)
    script = f"""
import sys, numpy as np
from predictor.model_store import LoadedModel
from sommelier_contract.manifest import Manifest
from sommelier_contract.records import RecordValidator
features = {WINE!r}
manifest = Manifest.from_json({MINIMAL!r} | {{"features": features, "classes": ["a", "b", "c"]}})
model = LoadedModel(version="v", manifest=manifest,
                    validator=RecordValidator(features), blobs={{"onnx": open({str(tmp_path / "model.onnx")!r}, "rb").read()}})
proba = model.predict_proba(np.full((2, 13), 1.0))
print(model.runtime, proba.shape, sorted(m for m in ("sklearn", "scipy", "joblib") if m in sys.modules))
"""
    env = {"PYTHONPATH": f"{ROOT / 'services' / 'predictor'}:{ROOT / 'services' / 'contract'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout.split("\n")[0]
    assert out == "onnx (2, 3) []"


def test_an_onnx_artifact_that_does_not_load_falls_back_to_the_pipeline():
    pipeline, _ = _wine("logistic_regression")
    from trainer.artifacts import dump

    model_blobs = {"onnx": b"not an onnx model", "pipeline": dump(pipeline), "label_encoder": b""}
    from predictor.model_store import LoadedModel

    model = LoadedModel(version="v", manifest=Manifest.from_json(MINIMAL | {"features": WINE, "classes": ["a", "b", "c"]}),
                        validator=RecordValidator(WINE),
                        blobs=model_blobs)
    assert model.runtime == "joblib" and model.predict_proba(np.ones((1, 13))).shape == (1, 3)

"""The ONNX route: the trainer keeps a conversion only when it is faithful on the holdout, the predictor prefers it
and then never imports scikit-learn or SciPy, and a model without one is served by the pipeline as before. Pipelines
over categories and text convert too: the featurizer replays their fitted preprocessing (tested against
scikit-learn's own transform on text made to trip a tokenizer) and the estimator runs in ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.feature_extraction.text import TfidfVectorizer

from predictor.model_store import load_model
from sommelier_contract.featurize import Featurizer
from sommelier_contract.manifest import Manifest
from sommelier_contract.onnx_model import OnnxModel
from sommelier_contract.records import RecordValidator
from trainer import onnx_export
from trainer.pipeline import build, recipes

from .conftest import MINIMAL_MANIFEST as MINIMAL
from .conftest import MODEL_BUCKET

ROOT = Path(__file__).resolve().parents[2]
WINE = [{"name": f"f{i}", "type": "numeric"} for i in range(13)]


def _wine(name: str):
    X, y = load_wine(return_X_y=True)
    X = X.copy()
    X[::7, 2] = np.nan  # missing values go through the imputer in both runtimes
    return build(WINE, recipes(WINE, len(y), 0)[name]).fit(X[::2], y[::2]), X[1::2]


def test_a_linear_pipeline_converts_and_matches_on_the_holdout():
    pipeline, holdout = _wine("logistic_regression")
    body, report = onnx_export.export(pipeline, WINE, holdout)
    assert body and report["runtime"] == "onnx" and report["max_abs_diff"] <= onnx_export.TOLERANCE
    assert report["holdout_rows"] == len(holdout)


def test_a_conversion_that_differs_beyond_the_tolerance_is_not_used():
    pipeline, holdout = _wine("logistic_regression")
    exact = pipeline.predict_proba
    pipeline.predict_proba = lambda X: exact(X) + 1e-4  # as a float32 tree split flipping would show
    blobs, report = onnx_export.export(pipeline, WINE, holdout)
    assert blobs == {} and report["runtime"] == "joblib" and "differ by up to 0.0001" in report["onnx"]


# notes written to trip a tokenizer: accents (composed and combining), ligatures, case that lowercases to two
# characters, tabs and runs of spaces, punctuation glued to words, digits, an emoji, non-Latin script, empty notes
NOTES = ["Rosé from Provence;  crisp,\tdry & FRESH", "Grüner  Veltliner — pepper, lime", "Rías Baixas albariño: saline",
         "Château-neuf du Pape 2019!!!", "ﬁne ﬂoral notes, ÆSTHETIC", "İstanbul-style KÖFTE pairing", "Cafe\u0301 au lait, toast",
         "", "   ", "红酒 with cherry 🍒 notes", "A", "oak oak oak oak vanilla", "Napa cab, jammy\nplush\n\nripe",
         "Barolo: tar & roses", "Sancerre — flint; citrus.", "Rioja crianza, vanilla, dill"]
VARIETIES = ["Pinot Noir", "Rosé", "Grüner Veltliner", "Albariño", "", "Local 1", "Local 2", "Nebbiolo"]
MESSY = [{"name": "points", "type": "numeric"}, {"name": "price", "type": "numeric"}, {"name": "variety", "type": "categorical"},
         {"name": "notes", "type": "text"}]


def _messy(rows: int, seed: int, text: bool = True) -> tuple[list[dict], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = MESSY if text else MESSY[:3]
    country = rng.choice(["US", "France", "Italy", "Spain"], rows, p=[0.6, 0.2, 0.12, 0.08])
    X = np.empty((rows, len(features)), dtype=object)
    X[:, 0] = np.where(rng.random(rows) < 0.1, np.nan, rng.normal(88, 3, rows).round())
    X[:, 1] = np.where(rng.random(rows) < 0.1, np.nan, rng.lognormal(3.4, 0.6, rows).round())
    X[:, 2] = [VARIETIES[i] for i in rng.integers(0, len(VARIETIES), rows)]
    X[rng.random(rows) < 0.03, 2] = "Only Once"  # a value seen once is infrequent (min_frequency 2)
    if text:
        X[:, 3] = [" ".join(rng.choice(NOTES, rng.integers(0, 4))) + f" {c.lower()}ish" * (rng.random() < 0.6)
                   for c in country]
    return features, X, country


@pytest.mark.parametrize("text, family", [(True, "complement_nb"), (True, "linear_svm"), (True, "linear_svm_chars"),
                                          (False, "logistic_regression"), (False, "hist_gradient_boosting"),
                                          (False, "random_forest")])
def test_every_family_over_categories_and_text_converts_faithfully(text, family):
    features, X, y = _messy(400, 1, text)
    pipeline = build(features, recipes(features, 300, 0)[family]).fit(X[:300], y[:300])
    holdout = X[300:].copy()
    holdout[0, 2] = "A variety never seen"  # an unknown category takes the infrequent column, as in scikit-learn
    blobs, report = onnx_export.export(pipeline, features, holdout)
    assert report["runtime"] == "onnx", report["onnx"]
    assert set(blobs) == {"onnx", "featurizer"} and report["max_abs_diff"] <= onnx_export.TOLERANCE
    featurizer = Featurizer(json.loads(blobs["featurizer"]))
    expected = pipeline.steps[0][1].transform(holdout)
    expected = expected.toarray() if hasattr(expected, "toarray") else expected
    assert np.abs(featurizer.transform(holdout) - expected).max() <= 1e-12
    served = OnnxModel(blobs["onnx"], blobs["featurizer"])  # what the predictor runs
    assert np.abs(served.predict_proba(holdout) - pipeline.predict_proba(holdout)).max() <= onnx_export.TOLERANCE
    assert served.predict_proba(holdout[:0]).shape == (0, len(pipeline.classes_))


@pytest.mark.parametrize("options", [{"analyzer": "word", "ngram_range": (1, 2), "strip_accents": "unicode"},
                                     {"analyzer": "char_wb", "ngram_range": (2, 5), "strip_accents": "unicode"},
                                     {"analyzer": "char", "ngram_range": (1, 3), "strip_accents": "ascii", "norm": "l1"},
                                     {"analyzer": "word", "ngram_range": (1, 1), "lowercase": False, "sublinear_tf": False,
                                      "use_idf": False, "token_pattern": r"(?u)\b\w+\b"}])
def test_the_featurizer_cuts_text_exactly_as_scikit_learn_does(options):
    train = np.array([[n] for n in NOTES * 2], dtype=object)
    prep = ColumnTransformer([("text_0", TfidfVectorizer(**{"sublinear_tf": True} | options), 0)]).fit(train)
    docs = np.array([[n] for n in NOTES + ["rosé ROSE rose\u0301 Rosé", "never seen words only", "x" * 40]], dtype=object)
    spec = onnx_export.featurizer_spec(prep)
    assert len(spec["blocks"][0]["vocabulary"]) > 20
    assert np.abs(Featurizer(spec).transform(docs) - prep.transform(docs).toarray()).max() <= 1e-12


def test_a_step_the_featurizer_cannot_replay_is_served_by_the_pipeline_saying_why():
    from sklearn.preprocessing import FunctionTransformer

    features, X, y = _messy(120, 2)
    pipeline = build(features, recipes(features, 120, 0)["linear_svm"])
    pipeline.steps[0][1].transformers.append(("odd", FunctionTransformer(lambda v: np.ones((len(v), 1))), [0]))
    pipeline.fit(X, y)
    blobs, report = onnx_export.export(pipeline, features, X[:20])
    assert blobs == {} and report == {"runtime": "joblib",
                                      "onnx": "not converted: a FunctionTransformer step, which the featurizer does not replay"}


def test_the_trainer_writes_the_conversion_and_the_predictor_answers_through_it(s3, trained, signatures, example):
    manifest = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{trained.version}/manifest.json")["Body"].read())
    model = load_model(s3, MODEL_BUCKET, trained.version, signatures)
    assert model.runtime == manifest["serving"]["runtime"]
    if model.runtime == "joblib":
        pytest.skip(f"this run's winner was not converted: {manifest['serving']['onnx']}")
    assert "onnx" in manifest["artifacts"]
    X = np.array([[example[f["name"]] for f in model.features]], dtype=float)
    assert np.abs(model.predict_proba(X) - model.pipeline.predict_proba(X)).max() <= onnx_export.TOLERANCE


@pytest.mark.parametrize("family", ["logistic_regression", "linear_svm_chars"])
def test_an_onnx_served_model_never_imports_scikit_learn_or_scipy(tmp_path, family):
    if family == "logistic_regression":
        features, (pipeline, holdout), classes = WINE, _wine(family), ["a", "b", "c"]
    else:  # text, categories and numbers: the featurizer and the estimator's graph
        features, X, y = _messy(300, 3)
        pipeline, holdout = build(features, recipes(features, 250, 0)[family]).fit(X[:250], y[:250]), X[250:]
        classes = sorted(set(y))
    blobs, _ = onnx_export.export(pipeline, features, holdout)
    for name, body in blobs.items():
        (tmp_path / name).write_bytes(body)
    np.save(tmp_path / "holdout.npy", holdout, allow_pickle=True)
    script = f"""
import sys, numpy as np
from predictor.model_store import LoadedModel
from sommelier_contract.manifest import Manifest
from sommelier_contract.records import RecordValidator
features = {features!r}
manifest = Manifest.from_json({MINIMAL!r} | {{"features": features, "classes": {classes!r}}})
blobs = {{name: open({str(tmp_path)!r} + "/" + name, "rb").read() for name in {sorted(blobs)!r}}}
model = LoadedModel(version="v", manifest=manifest, validator=RecordValidator(features), blobs=blobs)
proba = model.predict_proba(np.load({str(tmp_path / "holdout.npy")!r}, allow_pickle=True))
np.save({str(tmp_path / "served.npy")!r}, proba)
print(model.runtime, sorted(m for m in ("sklearn", "scipy", "joblib") if m in sys.modules))
"""
    env = {"PYTHONPATH": f"{ROOT / 'services' / 'predictor'}:{ROOT / 'services' / 'contract'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout.split("\n")[0]
    assert out == "onnx []"
    assert np.abs(np.load(tmp_path / "served.npy") - pipeline.predict_proba(holdout)).max() <= onnx_export.TOLERANCE


def test_an_onnx_artifact_that_does_not_load_falls_back_to_the_pipeline():
    pipeline, _ = _wine("logistic_regression")
    from trainer.artifacts import dump

    model_blobs = {"onnx": b"not an onnx model", "pipeline": dump(pipeline), "label_encoder": b""}
    from predictor.model_store import LoadedModel

    model = LoadedModel(version="v", manifest=Manifest.from_json(MINIMAL | {"features": WINE, "classes": ["a", "b", "c"]}),
                        validator=RecordValidator(WINE),
                        blobs=model_blobs)
    assert model.runtime == "joblib" and model.predict_proba(np.ones((1, 13))).shape == (1, 3)


def _separable(classes: int, rows_each: int, width: int = 30, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, width)) * 2
    y = np.repeat(np.arange(classes), rows_each)
    return centers[y] + rng.normal(size=(len(y), width)), np.array([f"c{i:02d}" for i in y])


def test_a_calibrated_linear_model_converts_as_one_small_graph_whatever_its_classes():
    """skl2onnx writes a few nodes per class and fold (~1,100 for 38 countries and 3 folds: ONNX Runtime took 330-400 ms
    to build that session at each cold start); onnx_export.calibrated_linear writes a handful per fold, and answers as
    scikit-learn does, a fold that never saw a class included (that class's column is 0 in it, as in scikit-learn)."""
    import onnx
    from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier
    from sklearn.svm import LinearSVC

    X, y = _separable(12, 20)
    model = CalibratedClassifierCV(LinearSVC(), cv=3).fit(X, y)
    first = model.calibrated_classifiers_[0]  # refit without class c11, as a fold that never saw a rare class
    keep = y != "c11"
    lacking = LinearSVC().fit(X[keep], y[keep])
    model.calibrated_classifiers_[0] = _CalibratedClassifier(lacking, first.calibrators[:11], classes=model.classes_, method="sigmoid")
    body = onnx_export.calibrated_linear(model, X.shape[1])
    assert body is not None
    graph = onnx.load_from_string(body).graph
    X4, y4 = _separable(4, 20)
    four = onnx.load_from_string(onnx_export.calibrated_linear(CalibratedClassifierCV(LinearSVC(), cv=3).fit(X4, y4), X4.shape[1]))
    assert len(graph.node) == len(four.graph.node) <= 15 * len(model.calibrated_classifiers_) + 3  # not a node more per class
    probe = np.random.default_rng(4).normal(size=(200, X.shape[1])) * 3
    expected = model.predict_proba(probe)
    assert np.abs(expected[:, 11]).max() > 0  # the other folds give c11 a probability; the refit one gives it none
    assert np.abs(OnnxModel(body).predict_proba(probe) - expected).max() <= 1e-12


def test_only_a_sigmoid_calibrated_linear_model_over_more_than_two_classes_gets_the_small_graph():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.svm import LinearSVC

    X, y = _separable(4, 20)
    binary = y < "c02"
    assert onnx_export.calibrated_linear(CalibratedClassifierCV(LinearSVC(), cv=3).fit(X[binary], y[binary]), X.shape[1]) is None
    assert onnx_export.calibrated_linear(CalibratedClassifierCV(LinearSVC(), cv=3, method="isotonic").fit(X, y), X.shape[1]) is None
    assert onnx_export.calibrated_linear(CalibratedClassifierCV(GaussianNB(), cv=3).fit(X, y), X.shape[1]) is None
    assert onnx_export.calibrated_linear(LinearSVC().fit(X, y), X.shape[1]) is None


def test_the_trainer_serves_its_linear_svm_through_the_small_graph():
    import onnx

    features, X, y = _messy(400, 1)
    pipeline = build(features, recipes(features, 300, 0)["linear_svm"]).fit(X[:300], y[:300])
    blobs, report = onnx_export.export(pipeline, features, X[300:])
    assert report["runtime"] == "onnx" and report["max_abs_diff"] <= onnx_export.TOLERANCE
    assert onnx.load_from_string(blobs["onnx"]).producer_name == "sommelier"

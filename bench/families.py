"""Serving per model family: every family the trainer can pick, trained on data shaped like real wine reviews
(bench/training.py), converted as the trainer converts it, then served in fresh processes the way a new Lambda
worker serves it.

Per family: whether it converted (and the manifest's words when not), the artifacts' size, the cold start of a new
worker (the predictor's imports, the model loaded from its verified bytes, the first prediction; the S3 and KMS
round trips are left out, they do not depend on the family) through ONNX and, beside it, through the unpickled
scikit-learn pipeline (what a model that does not convert pays), and warm single and batch-of-1,000 predictions
against the scikit-learn pipeline in the same process (the peer's route). Text families train on the notes, price,
points and variety; the others on price, points and variety (categories and numbers, no text).

python -m bench.families  ->  JSON on stdout
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.floors import shipped_code
from bench.reviews import reviews
from sommelier_contract.records import to_matrix
from trainer import onnx_export
from trainer.artifacts import dump
from trainer.pipeline import build, recipes

ROOT = Path(__file__).resolve().parents[1]
ROWS, HOLDOUT = 1000, 200
TEXT = [{"name": "description", "type": "text"}]
TABLE = [{"name": "points", "type": "numeric"}, {"name": "price", "type": "numeric"}, {"name": "variety", "type": "categorical"}]
REPEATS = 3  # fresh processes per family and route; the median is reported

COLD = """
import sys, time
t0 = time.perf_counter()
import numpy as np
from predictor import api, service  # what the Lambda module imports
from predictor.model_store import LoadedModel
from sommelier_contract.manifest import Manifest
from sommelier_contract.records import RecordValidator, to_matrix
t1 = time.perf_counter()
features, manifest, record, names, folder = {args}
blobs = {{n: open(folder + "/" + n, "rb").read() for n in names}}
manifest = Manifest.from_json(manifest)
model = LoadedModel(version="v", manifest=manifest, validator=RecordValidator(features), blobs=blobs)
t2 = time.perf_counter()
model.predict(to_matrix([record], features))
t3 = time.perf_counter()
heavy = sorted(m for m in ("sklearn", "scipy") if m in sys.modules)
print(round((t1 - t0) * 1000, 1), round((t2 - t1) * 1000, 1), round((t3 - t2) * 1000, 1), model.runtime, ",".join(heavy) or "-")
"""


def _data(features: list[dict]) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    frame = reviews(ROWS, np.random.default_rng(5))
    for f in features:
        if f["type"] != "numeric":
            frame[f["name"]] = frame[f["name"]].astype("string").fillna("").astype(object)
    X = to_matrix(frame, features)
    records = [{f["name"]: (None if isinstance(v, float) and v != v else v) for f, v in zip(features, row, strict=True)} for row in X]
    return X, frame["country"].to_numpy(), records


def _manifest(features: list[dict], classes: list[str]) -> dict:
    """The manifest fields serving reads (the features and classes); the rest as a minimal valid manifest."""
    return {"version": "v", "created_at": "bench", "features": features, "classes": classes, "artifacts": {}, "libraries": {},
            "metrics": {"holdout": {"accuracy": 1.0, "f1_macro": 1.0}}}


def _cold(features: list[dict], classes: list[str], record: dict, names: list[str], folder: str) -> dict:
    args = repr((features, _manifest(features, classes), record, names, folder))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": shipped_code(),
           "AWS_DEFAULT_REGION": "us-east-1"}
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", COLD.format(args=args)], capture_output=True, text=True, env=env, check=True)
        imports, load, first, runtime, heavy = out.stdout.split()
        runs.append({"imports_ms": float(imports), "load_ms": float(load), "first_predict_ms": float(first), "runtime": runtime,
                     "imported_sklearn_or_scipy": heavy})
    best = sorted(runs, key=lambda r: r["imports_ms"] + r["load_ms"] + r["first_predict_ms"])[len(runs) // 2]
    return {**best, "total_ms": round(best["imports_ms"] + best["load_ms"] + best["first_predict_ms"], 1)}


def _warm(fn, n: int) -> float:
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 3)


def family(name: str, features: list[dict]) -> dict:
    from predictor.model_store import LoadedModel
    from sommelier_contract.manifest import Manifest
    from sommelier_contract.records import RecordValidator

    X, y, records = _data(features)
    train, test = slice(0, ROWS - HOLDOUT), slice(ROWS - HOLDOUT, ROWS)
    pipeline = build(features, recipes(features, ROWS - HOLDOUT, 0)[name]).fit(X[train], y[train])
    classes = [str(c) for c in pipeline.classes_]
    blobs, serving = onnx_export.export(pipeline, features, X[test])
    row = {"family": name, "features": "text, numbers, categories" if features[0]["type"] == "text" else "numbers, categories",
           "serving": serving.get("onnx"), "max_abs_diff": serving.get("max_abs_diff"),
           "artifact_kib": {n: round(len(b) / 1024, 1) for n, b in blobs.items()}}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "pipeline").write_bytes(dump(pipeline))
        for n, body in blobs.items():
            (Path(folder) / n).write_bytes(body)
        if blobs:
            row["cold_onnx"] = _cold(features, classes, records[-1], sorted(blobs), folder)
        row["cold_pipeline"] = _cold(features, classes, records[-1], ["pipeline"], folder)
    manifest = Manifest.from_json(_manifest(features, classes))
    single, batch = to_matrix(records[-1:], features), to_matrix(records[:1000], features)
    served = LoadedModel(version="v", manifest=manifest, validator=RecordValidator(features), blobs=blobs or {"pipeline": dump(pipeline)})
    row["warm_ms"] = {"single_served": _warm(lambda: served.predict(single), 300),
                      "single_sklearn": _warm(lambda: pipeline.predict_proba(single), 300),
                      "batch_1000_served": _warm(lambda: served.predict(batch), 10),
                      "batch_1000_sklearn": _warm(lambda: pipeline.predict_proba(batch), 10)}
    row["warm_ms"]["single_ratio"] = round(row["warm_ms"]["single_served"] / row["warm_ms"]["single_sklearn"], 2)
    row["warm_ms"]["batch_ratio"] = round(row["warm_ms"]["batch_1000_served"] / row["warm_ms"]["batch_1000_sklearn"], 2)
    print(f"{name}: {row['serving']}, cold {row.get('cold_onnx', row['cold_pipeline'])['total_ms']} ms", file=sys.stderr)
    return row


def main() -> list[dict]:
    text_families = recipes(TEXT + TABLE, ROWS, 0)
    table_families = recipes(TABLE, ROWS, 0)
    return [family(n, TEXT + TABLE) for n in text_families] + [family(n, TABLE) for n in table_families]


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

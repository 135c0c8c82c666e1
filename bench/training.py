"""One training-scaling measurement in its own process: `python -m bench.training ROWS`.

Resamples the wine data with noise to ROWS rows, runs the trainer's comparison + refit +
holdout evaluation (no S3: this measures the learning, not the I/O) and prints seconds and
peak memory (ru_maxrss) as JSON.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine

from trainer.config import Settings
from trainer.pipeline import build, candidates, to_matrix
from trainer.train import compare


def main(rows: int) -> None:
    wine = load_wine(as_frame=True)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(wine.frame), rows)
    X = wine.data.iloc[idx].to_numpy() * rng.normal(1, 0.03, (rows, wine.data.shape[1]))
    frame = pd.DataFrame(X, columns=wine.feature_names)
    spec = json.load(open("data/wine.spec.json"))
    y = wine.target.to_numpy()[idx]
    settings = Settings(dataset_bucket="-", model_bucket="-", cv_folds=5)
    started = time.perf_counter()
    Xm = to_matrix(frame, spec["features"])
    best, _ = compare(Xm, y, spec["features"], settings)
    estimator, dense = candidates(settings.seed)[best]
    build(spec["features"], estimator, dense).fit(Xm, y)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({"rows": rows, "seconds": round(seconds, 2), "peak_mib": round(peak, 1), "winner": best}))


if __name__ == "__main__":
    main(int(sys.argv[1]))

"""One training measurement in its own process: `python -m bench.training KIND ROWS`.

KIND `numeric`: the wine data resampled with noise to ROWS rows (lab measurements, 3 cultivars).
KIND `full`: bench/reviews.py's reviews in the whole public file's 14-column shape (cut last line, empty targets,
an id, place names, a long tail of countries).
KIND `reviews`: wine reviews generated here (an unnamed index column, country, a tasting note,
points, price with gaps, variety; target country), shaped like the data people bring.

Everything a user's run does happens: the CSV is pushed as a dataset (spec inferred for reviews),
then `trainer.train.run` reads it back from S3, compares the candidates that suit it, refits the
winner, scores it on the frozen evaluation rows and writes the artifacts. S3 is moto's in-process
mock, so this measures the trainer rather than an emulator. Prints seconds, peak memory (ru_maxrss)
and the scores as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
from moto import mock_aws
from sklearn.datasets import load_wine

from bench.reviews import COUNTRY_SHARE, CUES, GENERIC, VARIETIES, generate
from sommelier_contract import dataset
from trainer.config import Settings
from trainer.train import run

ROOT = Path(__file__).resolve().parents[1]

RNG_VARIETIES = np.random.default_rng(7)
VARIETY_WEIGHTS = {c: RNG_VARIETIES.dirichlet(np.full(len(VARIETIES), 0.15)) for c in COUNTRY_SHARE}


def reviews(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    names = list(COUNTRY_SHARE)
    country = rng.choice(names, rows, p=list(COUNTRY_SHARE.values()))
    records = []
    for c in country:
        words = list(rng.choice(GENERIC, rng.integers(20, 61)))
        # a telling word in most notes, and now and then one that points elsewhere
        if rng.random() < 0.7:
            words.insert(rng.integers(len(words)), str(rng.choice(CUES[c])))
        if rng.random() < 0.08:
            words.insert(rng.integers(len(words)), str(rng.choice(CUES[names[rng.integers(len(names))]])))
        note = " ".join(words).capitalize() + "."
        variety = VARIETIES[rng.choice(len(VARIETIES), p=VARIETY_WEIGHTS[c])]
        base = {"US": 3.6, "France": 3.5, "Italy": 3.4, "Spain": 3.1}[c]
        price = float(round(rng.lognormal(base, 0.6))) if rng.random() > 0.07 else np.nan
        points = int(np.clip(round(rng.normal(88 + (price > 40 if price == price else 0), 3)), 80, 100))
        records.append({"country": c, "description": note, "points": points, "price": price, "variety": variety})
    frame = pd.DataFrame(records)
    # the index people's files carry: ids of rows sampled from a larger export, shuffled, not 0..n-1
    frame.index = rng.choice(200_000, rows, replace=False)
    return frame


def numeric(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    wine = load_wine(as_frame=True)
    idx = rng.integers(0, len(wine.frame), rows)
    X = wine.data.iloc[idx].to_numpy() * rng.normal(1, 0.03, (rows, wine.data.shape[1]))
    frame = pd.DataFrame(X.round(4), columns=[f["name"] for f in json.loads((ROOT / "data/wine.spec.json").read_text())["features"]])
    frame["cultivar"] = np.array(["class_0", "class_1", "class_2"])[wine.target.to_numpy()[idx]]
    return frame


def main(kind: str, rows: int) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the trainer makes its KMS client itself
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    rng = np.random.default_rng(0)
    if kind == "full":  # the whole public file's shape (bench/reviews.py), pushed as a user would: no flag but the cut last line's
        body = generate(rows)
    else:
        frame = reviews(rows, rng) if kind == "reviews" else numeric(rows, rng)
        body = frame.to_csv(index=kind == "reviews").encode()  # reviews carry an unnamed index column, as exported by pandas
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("bench-datasets", "bench-models"):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        started = time.perf_counter()
        spec = json.loads((ROOT / "data/wine.spec.json").read_text()) if kind == "numeric" else None
        dataset.push(s3, "bench-datasets", kind, body, spec, None if kind == "numeric" else "country", now="bench", skip_bad_rows=kind == "full")
        pushed = time.perf_counter() - started
        key = boto3.client("kms", region_name="us-east-1").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        settings = Settings(dataset_bucket="bench-datasets", dataset_prefix=f"datasets/{kind}", model_bucket="bench-models",
                            model_signing_key=key)
        started = time.perf_counter()
        outcome = run(settings, s3)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    assert outcome.metrics is not None
    holdout, cv = outcome.metrics.holdout, outcome.metrics.cv
    print(json.dumps({"kind": kind, "rows": rows, "csv_mib": round(len(body) / 2**20, 1),
                      "push_seconds": round(pushed, 2), "seconds": round(seconds, 2), "peak_mib": round(peak, 1),
                      "winner": outcome.model, "candidates": {n: r.f1_macro_mean if r.scored else r.skipped for n, r in cv.items()},
                      "holdout_accuracy": round(holdout.accuracy, 3), "holdout_f1_macro": round(holdout.f1_macro, 3)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

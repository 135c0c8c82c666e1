"""One training measurement in its own process: `python -m bench.training KIND ROWS`.

KIND `numeric`: the wine data resampled with noise to ROWS rows (lab measurements, 3 cultivars).
KIND `reviews`: wine reviews generated here (an unnamed index column, country, a tasting note,
points, price with gaps, variety; target country), shaped like the data people bring.

Everything a user's run does happens: the CSV is pushed as a dataset (spec inferred for reviews),
then `trainer.train.run` reads it back from S3, compares the candidates that suit it, refits the
winner, scores it on the frozen evaluation rows and writes the artifacts. S3 is moto's in-process
mock, so this measures the trainer rather than an emulator. Prints seconds, peak memory (ru_maxrss)
and the scores as JSON.
"""

from __future__ import annotations

import io
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

from sommelier_contract import dataset
from trainer.config import Settings
from trainer.train import run

ROOT = Path(__file__).resolve().parents[1]

COUNTRIES = {
    "France": (["Pinot Noir", "Chardonnay", "Bordeaux-style Red Blend", "Champagne Blend", "Syrah"],
               ["elegant", "mineral", "chalky", "cassis", "brioche", "violet", "graphite", "restrained", "earthy", "structured"]),
    "Italy": (["Sangiovese", "Nebbiolo", "Barbera", "Pinot Grigio", "Red Blend"],
              ["cherry", "leather", "tar", "rose", "savory", "bitter almond", "herbal", "dried", "firm", "rustic"]),
    "US": (["Cabernet Sauvignon", "Pinot Noir", "Chardonnay", "Zinfandel", "Red Blend"],
           ["ripe", "jammy", "oaky", "vanilla", "plush", "bold", "butter", "blackberry", "opulent", "toasty"]),
    "Spain": (["Tempranillo", "Garnacha", "Albariño", "Red Blend", "Monastrell"],
              ["smoky", "dusty", "coconut", "dill", "plum", "spicy", "warm", "saline", "peach", "rustic"]),
    "Portugal": (["Port", "Touriga Nacional", "Portuguese Red", "Alvarinho", "Red Blend"],
                 ["fortified", "fig", "raisin", "chocolate", "sweet", "dense", "floral", "brambly", "prune", "rich"]),
}
SHARED = ["wine", "fruit", "palate", "finish", "aromas", "acidity", "tannins", "nose", "flavors", "drink", "notes", "light",
          "fresh", "crisp", "soft", "long", "bright", "juicy", "dark", "red", "black", "citrus", "apple", "spice", "oak"]


def reviews(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    names = list(COUNTRIES)
    country = rng.choice(names, rows, p=[0.3, 0.25, 0.25, 0.12, 0.08])
    records = []
    for c in country:
        varieties, words = COUNTRIES[c]
        # mostly shared words, a few telling ones (sometimes another country's): the text carries the signal, noisily
        own = list(rng.choice(words, rng.integers(1, 4)))
        other = list(rng.choice(COUNTRIES[names[rng.integers(len(names))]][1], rng.integers(0, 2)))
        note = " ".join(rng.permutation(list(rng.choice(SHARED, rng.integers(8, 20))) + own + other)).capitalize() + "."
        variety = varieties[rng.integers(len(varieties))] if rng.random() < 0.8 else COUNTRIES[names[rng.integers(len(names))]][0][0]
        price = float(round(rng.lognormal(3.3 if c != "Portugal" else 3.0, 0.5))) if rng.random() > 0.07 else np.nan
        records.append({"country": c, "description": note, "points": int(rng.integers(80, 101)), "price": price, "variety": variety})
    frame = pd.DataFrame(records)
    frame.index.name = None
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
    frame = reviews(rows, rng) if kind == "reviews" else numeric(rows, rng)
    body = frame.to_csv(index=kind == "reviews").encode()  # reviews carry an unnamed index column, as exported by pandas
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("bench-datasets", "bench-models"):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        started = time.perf_counter()
        spec = None if kind == "reviews" else json.loads((ROOT / "data/wine.spec.json").read_text())
        dataset.push(s3, "bench-datasets", kind, body, spec, "country" if kind == "reviews" else None, now="bench")
        pushed = time.perf_counter() - started
        key = boto3.client("kms", region_name="us-east-1").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        settings = Settings(dataset_bucket="bench-datasets", dataset_prefix=f"datasets/{kind}", model_bucket="bench-models",
                            model_signing_key=key)
        started = time.perf_counter()
        outcome = run(settings, s3)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    holdout = outcome.metrics["holdout"]
    cv = outcome.metrics["cv"]
    print(json.dumps({"kind": kind, "rows": rows, "csv_mib": round(len(io.BytesIO(body).getvalue()) / 2**20, 1),
                      "push_seconds": round(pushed, 2), "seconds": round(seconds, 2), "peak_mib": round(peak, 1),
                      "winner": max((n for n in cv if "f1_macro_mean" in cv[n]), key=lambda n: cv[n]["f1_macro_mean"]),
                      "candidates": {n: r.get("f1_macro_mean", r.get("skipped")) for n, r in cv.items()},
                      "holdout_accuracy": round(holdout["accuracy"], 3), "holdout_f1_macro": round(holdout["f1_macro"], 3)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

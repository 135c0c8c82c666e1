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

# Shaped like real wine reviews (measured on a real 1,000-row file: four countries at about 62/17/13/7 %, ~100
# varieties, most of them made in several countries, notes of 20-60 words of mostly generic tasting vocabulary,
# with a rare word that gives the country away, and prices with gaps). Generated data flatters a model; this tries
# to flatter it as little as real data does.
COUNTRY_SHARE = {"US": 0.62, "France": 0.17, "Italy": 0.13, "Spain": 0.08}
CUES = {  # rare, telling words (places, styles) that show up in a minority of notes
    "US": ["napa", "sonoma", "willamette", "paso robles", "california", "oregon", "washington", "jammy", "oaky", "plush"],
    "France": ["bordeaux", "burgundy", "bourgogne", "chablis", "rhône", "sancerre", "cru", "château", "domaine", "alsace"],
    "Italy": ["tuscany", "chianti", "piedmont", "barolo", "sicily", "veneto", "toscana", "riserva", "brunello", "etna"],
    "Spain": ["rioja", "ribera", "priorat", "crianza", "reserva", "galicia", "rías baixas", "navarra", "jerez", "toro"],
}
GENERIC = ("aromas of black cherry and plum lead to a palate with firm tannins and a long finish. this wine offers "
           "red fruit, spice, vanilla and toasted oak, with bright acidity and a touch of earth. notes of citrus, green "
           "apple and pear on the nose; the palate is crisp, fresh and balanced with mineral tones. ripe blackberry, "
           "cassis and chocolate flavors are framed by smooth tannins. drink now through 2030. it is soft, round and "
           "juicy, with hints of herbs, licorice, leather, tobacco and violet. a light, easy wine for everyday drinking; "
           "dense and concentrated, it needs time. peach, apricot, honey and floral notes give it a rich texture").split()
RNG_VARIETIES = np.random.default_rng(7)
VARIETIES = ["Pinot Noir", "Chardonnay", "Cabernet Sauvignon", "Red Blend", "Bordeaux-style Red Blend", "Riesling",
             "Sauvignon Blanc", "Syrah", "Rosé", "Merlot", "Nebbiolo", "Zinfandel", "Sangiovese", "Malbec", "Tempranillo",
             "White Blend", "Sparkling Blend", "Pinot Gris", "Champagne Blend", "Grüner Veltliner", "Viognier", "Gamay",
             "Garnacha", "Pinot Grigio", "Cabernet Franc", "Petite Sirah", "Barbera", "Albariño", "Grenache", "Chenin Blanc"] + \
            [f"Local Grape {i}" for i in range(70)]  # the long tail: ~100 varieties in all
# each variety's share per country: the big international ones everywhere, a few that lean one way
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
    assert outcome.metrics is not None
    holdout, cv = outcome.metrics.holdout, outcome.metrics.cv
    print(json.dumps({"kind": kind, "rows": rows, "csv_mib": round(len(io.BytesIO(body).getvalue()) / 2**20, 1),
                      "push_seconds": round(pushed, 2), "seconds": round(seconds, 2), "peak_mib": round(peak, 1),
                      "winner": outcome.model, "candidates": {n: r.f1_macro_mean if r.scored else r.skipped for n, r in cv.items()},
                      "holdout_accuracy": round(holdout.accuracy, 3), "holdout_f1_macro": round(holdout.f1_macro, 3)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""One training measurement in its own process: `python -m bench.training KIND ROWS`.

KIND `numeric`: the wine data resampled with noise to ROWS rows (lab measurements, 3 cultivars).
KIND `full`: bench/reviews.py's reviews in the whole public file's 14-column shape (cut last line, empty targets,
an id, place names, a long tail of countries).
KIND `notes`: the same file, the place-name and taster columns ignored (the description-only task).
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


def served(s3, version: str, body: bytes) -> dict:
    """The champion just trained, served as a new worker serves it (bench/families.py's measures): the cold start of
    a fresh process (imports, the model loaded from its bytes, the first prediction) and warm single and batch-of-1,000
    predictions beside the scikit-learn pipeline's, on the file's own rows. Measured after training, in its process."""
    import tempfile

    from bench.families import _cold, _warm
    from predictor.model_store import LoadedModel
    from sommelier_contract.artifacts import read_manifest, unpickle
    from sommelier_contract.records import RecordValidator, to_matrix

    manifest = read_manifest(s3, "bench-models", version)
    blobs = {n: s3.get_object(Bucket="bench-models", Key=a.key)["Body"].read() for n, a in manifest.artifacts.items()
             if n in ("onnx", "featurizer", "pipeline")}
    frame, _, _, _ = dataset.read_rows(body, "bench", skip_bad_rows=True)
    names = [f["name"] for f in manifest.features]
    records = [{n: (None if v != v else v) for n, v in zip(names, row, strict=True)} for row in frame[names].head(1000).itertuples(index=False)]
    with tempfile.TemporaryDirectory() as folder:
        for n, blob in blobs.items():
            Path(folder, n).write_bytes(blob)
        cold = _cold(manifest.features, manifest.classes, records[0], sorted(n for n in blobs if n != "pipeline"), folder)
    model = LoadedModel(version=version, manifest=manifest, validator=RecordValidator(manifest.features),
                        blobs={n: b for n, b in blobs.items() if n != "pipeline"})
    pipeline = unpickle(blobs["pipeline"])
    single, batch = to_matrix(records[:1], manifest.features), to_matrix(records, manifest.features)
    warm = {"single_served": _warm(lambda: model.predict(single), 200), "single_sklearn": _warm(lambda: pipeline.predict_proba(single), 200),
            "batch_1000_served": _warm(lambda: model.predict(batch), 5), "batch_1000_sklearn": _warm(lambda: pipeline.predict_proba(batch), 5)}
    return {"runtime": model.runtime, "cold": cold, "warm_ms": warm}


def main(kind: str, rows: int) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the trainer makes its KMS client itself
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    rng = np.random.default_rng(0)
    ignore: tuple[str, ...] = ()
    if kind in ("full", "notes"):  # the whole public file's shape (bench/reviews.py), pushed as a user would: no flag but the cut last line's
        body = generate(rows)
        if kind == "notes":  # the description-only task: what the notes, points, price and variety say, no place names
            ignore = ("designation", "province", "region_1", "region_2", "taster_name", "taster_twitter_handle", "winery")
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
        dataset.push(s3, "bench-datasets", kind, body, spec, None if kind == "numeric" else "country", ignore, now="bench",
                     skip_bad_rows=kind in ("full", "notes"))
        pushed = time.perf_counter() - started
        key = boto3.client("kms", region_name="us-east-1").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        settings = Settings(dataset_bucket="bench-datasets", dataset_prefix=f"datasets/{kind}", model_bucket="bench-models",
                            model_signing_key=key)
        started = time.perf_counter()
        outcome = run(settings, s3)
        seconds = time.perf_counter() - started
        sizes = {o["Key"].rsplit("/", 1)[-1]: round(o["Size"] / 2**20, 2)
                 for o in s3.list_objects_v2(Bucket="bench-models", Prefix=f"models/{outcome.version}/")["Contents"]}
        serving = served(s3, outcome.version, body) if kind in ("full", "notes") else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    assert outcome.metrics is not None
    holdout, cv = outcome.metrics.holdout, outcome.metrics.cv
    print(json.dumps({"kind": kind, "rows": rows, "csv_mib": round(len(body) / 2**20, 1),
                      "push_seconds": round(pushed, 2), "seconds": round(seconds, 2), "peak_mib": round(peak, 1),
                      "winner": outcome.model, "candidates": {n: r.f1_macro_mean if r.scored else r.skipped for n, r in cv.items()},
                      "holdout_accuracy": round(holdout.accuracy, 3), "holdout_f1_macro": round(holdout.f1_macro, 3),
                      "onnx_mib": sizes.get("model.onnx"), "artifacts_mib": sizes, **({"serving": serving} if serving else {})}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""Model monitoring at scale: `python -m bench.monitoring [PREDICTIONS]` (default 100,000), part of `make bench`.

A baseline from 5,000 messy reviews-like training rows (free text, ~100 varieties, gaps in price), then PREDICTIONS
predictions stored as the predictor stores them (items of 100) in a DynamoDB table (moto, in this process), half of them
shifted (prices doubled, notes in another language); then one monitoring pass (monitor/report.py's run: scan, expand,
compare, report, metrics) timed, with the process's peak memory, and the monitor's import time in a fresh process.
Prints JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
from moto import mock_aws

from bench.reviews import reviews


def _import_ms() -> float:
    script = ("import time; t=time.perf_counter(); import monitor.report, monitor.drift, scipy.stats, scipy.spatial.distance; "
              "print((time.perf_counter()-t)*1000)")
    return round(float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout), 1)


def main(n: int) -> None:
    from monitor import report as monitor
    from predictor.records import PredictionRecorder
    from sommelier_contract import layout
    from sommelier_contract.artifacts import Signatures, put_manifest
    from sommelier_contract.baseline import profile
    from sommelier_contract.manifest import Manifest

    os.environ.update({"AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "b", "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    features = [{"name": "description", "type": "text"}, {"name": "points", "type": "numeric"},
                {"name": "price", "type": "numeric"}, {"name": "variety", "type": "categorical"}]
    rng = np.random.default_rng(0)
    train = reviews(5000, rng)
    t = time.perf_counter()
    base = profile(features, {f["name"]: train[f["name"]].tolist() for f in features}, predicted=["US"] * 1000,
                         confidence=list(rng.uniform(0.4, 1, 1000)), correct=[True] * 900 + [False] * 100,
                         classes=["France", "Italy", "Spain", "US"], segments=[{"name": "price_range", "feature": "price", "edges": [20, 40, 60]}])
    profile_s = time.perf_counter() - t
    sample = [{k: v for k, v in r.items() if not (isinstance(v, float) and v != v)}
              for r in reviews(10_000, rng)[[f["name"] for f in features]].to_dict("records")]
    with mock_aws():
        s3, ddb, kms = boto3.client("s3"), boto3.client("dynamodb"), boto3.client("kms")
        s3.create_bucket(Bucket="models")
        ddb.create_table(TableName="predictions", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "prediction_id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "prediction_id", "AttributeType": "S"}])
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        signed = Signatures(kms, key)
        body = json.dumps(base).encode()
        s3.put_object(Bucket="models", Key=layout.artifact_key("v1", "baseline"), Body=body)
        manifest = Manifest.from_json(json.dumps({
            "version": "v1", "created_at": None, "classes": ["France", "Italy", "Spain", "US"], "features": features, "libraries": {},
            "segments": [{"name": "price_range", "feature": "price", "edges": [20, 40, 60]}],
            "artifacts": {"baseline": {"key": layout.artifact_key("v1", "baseline"), "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}},
            "metrics": {"holdout": {"accuracy": 0.9, "f1_macro": 0.85}}}).encode())
        put_manifest(s3, "models", manifest, signed)
        s3.put_object(Bucket="models", Key=layout.CHAMPION_KEY, Body=json.dumps({"version": "v1"}).encode())
        recorder = PredictionRecorder(ddb, "predictions", 30)
        now = datetime.now(UTC)
        german = "Ein trockener Wein mit Noten von Kirsche und Leder, lange im Abgang, sehr elegant."
        for start in range(0, n, 100):
            inputs = [dict(sample[(start + i) % len(sample)]) for i in range(min(100, n - start))]
            if start >= n // 2:  # the second half has moved
                inputs = [{**r, "description": german, **({"price": r["price"] * 2} if "price" in r else {})} for r in inputs]
            predictions = [{"label": "US", "confidence": 0.8, "probabilities": {}} for _ in inputs]
            _, items = recorder.items(caller="bench", model_version="v1", now=(now - timedelta(minutes=30)).timestamp(),
                                      predictions=predictions, inputs=inputs, context={})
            recorder.put(items)
        settings = monitor.Settings(model_bucket="models", predictions_table="predictions", model_signing_key=key, report_signing_key=key,
                                    monitor_max_predictions=n)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        report = monitor.run(settings, s3=s3, dynamodb=ddb, cloudwatch=boto3.client("cloudwatch"), model_signatures=signed,
                             report_signatures=signed)
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        monitor.read_predictions(ddb, "predictions", (now - timedelta(days=1)).isoformat(), n)
        read_s = time.perf_counter() - t
    print(json.dumps({
        "predictions": report.predictions, "status": report.status, "drifted_features": list(report.drifted_features),
        "pass_s": round(seconds, 2), "of_which_reading_s": round(read_s, 2), "baseline_profile_s": round(profile_s, 2),
        "baseline_bytes": len(body), "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_before_pass_mib": round(before / 1024, 1), "import_ms": _import_ms(),
        "note": "the table is moto's, in this process (its memory is in the peak); DynamoDB's scan time in AWS is its own",
    }))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)

"""Poisoning through feedback, swept: `python -m bench.poisoning [FEATURE ...]`, JSON on stdout, progress on stderr.

The default model (the wine data, the trainer's default comparison) is trained once in moto; then, cell by cell, feedback
is written as the API writes it (the champion's own answer and confidence beside each label) and a training run reads it,
as the schedule's would; the champion pointer is put back after each cell.

- backdoor cells: for each numeric feature (those named, all by default), a trigger value inside the range
  the screen lets through (the training maximum plus a tenth, and plus 0.45, of the feature's span; the training minimum
  minus 0.45 of it), set on class_0 wines labelled class_2: 5%, 15% or 25% of 56 feedback rows, sent from 1 or 8 keys,
  the rest honest confirmations of sure answers. Probe: the 59 class_0 wines with the trigger. Issue 52's bar: no
  candidate promoted automatically answers class_2 for more than 10% of them because of the flips: a cell where the
  champion already did, before any feedback, or where a retrain on the same confirmations without the flips answers as
  much (a new model extrapolates differently far out), is counted apart.
- honest cells: real mistakes of the champion (wines measured 5% off, as bench/training.py's numeric data, that it
  answers wrongly) corrected with their true labels, 5, 10 or 20 of them among honest confirmations, from 1, 4 or 8 keys,
  4 seeds. Bar: promoted in at least 90% of the cells.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
from moto import mock_aws
from sklearn.datasets import load_wine
from tqdm import tqdm

from sommelier_contract import pointers
from sommelier_contract.artifacts import Signatures, load_verified, read_manifest
from sommelier_contract.records import to_matrix
from trainer.config import Settings
from trainer.train import run

ROOT = Path(__file__).resolve().parents[1]
DATASETS, MODELS, PREFIX = "bench-datasets", "bench-models", "datasets/wine"
FEEDBACK_ROWS = 56  # under the cap (a quarter of the rows trained on: 59 beside the wine data's 178)
SHARES = (0.05, 0.15, 0.25)
KEYS = (1, 8)
TRIGGERS = (("above", 0.10), ("above", 0.45), ("below", 0.45))  # where, and how far out as a share of the span
log = logging.getLogger("bench")


class Cells:
    """The moto world of one sweep: the data, the champion, and how a cell's feedback is written and judged."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (DATASETS, MODELS):
            self.s3.create_bucket(Bucket=bucket)
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        self.s3.put_object(Bucket=DATASETS, Key=f"{PREFIX}/data.csv", Body=(ROOT / "data/wine.csv").read_bytes())
        self.s3.put_object(Bucket=DATASETS, Key=f"{PREFIX}/spec.json", Body=(ROOT / "data/wine.spec.json").read_bytes())
        kms = boto3.client("kms", region_name="us-east-1")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        self.signatures = Signatures(kms, key)
        self.settings = Settings(dataset_bucket=DATASETS, dataset_prefix=PREFIX, model_bucket=MODELS, model_signing_key=key)
        first = run(self.settings, self.s3)
        assert first.promoted and first.version, first.reason
        self.champion = first.version
        self.manifest, self.pipeline, self.encoder = load_verified(self.s3, MODELS, self.champion, self.signatures)
        wine = load_wine(as_frame=True)
        self.frame = wine.data.set_axis([f["name"] for f in self.manifest.features], axis=1)
        self.target = np.array([f"class_{t}" for t in wine.target])
        self.cell = 0

    def answers(self, rows: pd.DataFrame, model: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        manifest, pipeline, encoder = model or (self.manifest, self.pipeline, self.encoder)
        proba = pipeline.predict_proba(to_matrix(rows, manifest.features))
        return encoder.inverse_transform(proba.argmax(axis=1)), proba.max(axis=1)

    def feedback(self, rows: pd.DataFrame, labels: list[str], keys: int, tag: str) -> None:
        """Feedback as the API writes it: the champion's answer and confidence on each row, the caller's key id."""
        predicted, confidence = self.answers(rows)
        for i, (row, label) in enumerate(zip(rows.to_dict("records"), labels, strict=True)):
            doc = {"prediction_id": f"{tag}{i}", "features": {k: float(v) for k, v in row.items()}, "label": label,
                   "predicted_label": str(predicted[i]), "confidence": float(confidence[i]), "caller": f"key-{i % keys}",
                   "received_at": f"2026-12-07T00:{i // 60:02d}:{i % 60:02d}Z"}
            self.s3.put_object(Bucket=DATASETS, Key=f"{PREFIX}/feedback/2026-12-07/cell{self.cell}-{tag}{i:03d}.json",
                               Body=json.dumps(doc).encode())

    def confirmations(self, n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
        """Honest labels on sure answers: real wines, their true class, which the champion answers."""
        idx = rng.choice(len(self.frame), n, replace=False)
        return self.frame.iloc[idx], list(self.target[idx])

    def train(self) -> tuple[Any, dict[str, Any]]:
        outcome = run(self.settings, self.s3)
        screen = read_manifest(self.s3, MODELS, outcome.version).dataset.feedback.get("screen", {})
        return outcome, screen

    def reset(self) -> None:
        """No feedback left, the first champion serving again: the next cell starts where this one did."""
        for prefix in (f"{PREFIX}/feedback/", f"{PREFIX}/quarantine/"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=DATASETS, Prefix=prefix):
                for item in page.get("Contents", []):
                    self.s3.delete_object(Bucket=DATASETS, Key=item["Key"])
        if pointers.read_champion(self.s3, MODELS).version != self.champion:
            pointers.promote(self.s3, MODELS, self.champion, "bench: the next cell", "2026-12-07T00:00:00+00:00")
        self.cell += 1


def backdoor(cells: Cells, feature: str, where: str, out: float, share: float, keys: int) -> dict[str, Any]:
    column = cells.frame[feature]
    span = float(column.max() - column.min())
    trigger = float(column.max() + out * span) if where == "above" else float(column.min() - out * span)
    class_0 = cells.frame[cells.target == "class_0"]
    probe = class_0.assign(**{feature: trigger})
    before = float(np.mean(cells.answers(probe)[0] == "class_2"))
    rng = np.random.default_rng(cells.cell)
    flips = max(1, round(share * FEEDBACK_ROWS))
    chosen = class_0.iloc[rng.choice(len(class_0), flips, replace=False)].assign(**{feature: trigger})
    cells.feedback(chosen, ["class_2"] * flips, keys, "door")
    honest, labels = cells.confirmations(FEEDBACK_ROWS - flips, rng)
    cells.feedback(honest, labels, keys, "fine")
    outcome, screen = cells.train()
    after = float(np.mean(cells.answers(probe, load_verified(cells.s3, MODELS, outcome.version, cells.signatures))[0] == "class_2"))
    cells.reset()
    clean = None
    if outcome.promoted and after > 0.1:  # a retrain on the same confirmations without the flips: what the flips changed
        cells.feedback(honest, labels, keys, "fine")
        control, _ = cells.train()
        clean = float(np.mean(cells.answers(probe, load_verified(cells.s3, MODELS, control.version, cells.signatures))[0] == "class_2"))
        cells.reset()
    return {"feature": feature, "trigger": round(trigger, 4), "flips": flips, "keys": keys, "promoted": outcome.promoted,
            "held": screen.get("held_count", 0), "champion_answers_class_2": round(before, 3), "candidate_answers_class_2": round(after, 3),
            **({"clean_retrain_answers_class_2": round(clean, 3)} if clean is not None else {}), "reason": outcome.reason[:200]}


def honest(cells: Cells, corrections: int, keys: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(1000 + seed)
    mistakes: list[pd.DataFrame] = []
    truths: list[str] = []
    while sum(map(len, mistakes)) < corrections:  # wines measured 5% off that the champion answers wrongly
        idx = rng.integers(0, len(cells.frame), 400)
        rows = pd.DataFrame(cells.frame.iloc[idx].to_numpy() * rng.normal(1, 0.05, (400, cells.frame.shape[1])), columns=cells.frame.columns)
        wrong = cells.answers(rows)[0] != cells.target[idx]
        mistakes.append(rows[wrong])
        truths += list(cells.target[idx][wrong])
    rows = pd.concat(mistakes).iloc[:corrections]
    cells.feedback(rows, truths[:corrections], keys, "fix")
    fine, labels = cells.confirmations(FEEDBACK_ROWS - corrections, rng)
    cells.feedback(fine, labels, keys, "fine")
    outcome, screen = cells.train()
    cells.reset()
    return {"corrections": corrections, "keys": keys, "seed": seed, "promoted": outcome.promoted, "held": screen.get("held_count", 0),
            "reason": outcome.reason[:200]}


def main(features: list[str] | None = None) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("trainer", "botocore"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    started = time.perf_counter()
    with mock_aws():
        cells = Cells()
        names = [n for n in cells.frame.columns if not features or n in features]
        plan = [(f, w, o, s, k) for f in names for w, o in TRIGGERS for s in SHARES for k in KEYS]
        doors = [backdoor(cells, *cell) for cell in tqdm(plan, desc="backdoor cells", file=sys.stderr)]
        fixes = [honest(cells, n, k, seed) for n in (5, 10, 20) for k in (1, 4, 8)
                 for seed in tqdm(range(4), desc=f"honest cells ({n} corrections, {k} keys)", file=sys.stderr)]
    promoted = [d for d in doors if d["promoted"]]
    # over 10%, and more than the champion and than a retrain on the same honest rows without the flips answered: the flips did it
    caused = [d for d in promoted if d["candidate_answers_class_2"] > 0.1
              and d["candidate_answers_class_2"] > max(d["champion_answers_class_2"], d.get("clean_retrain_answers_class_2", 0.0))]
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(time.perf_counter() - started, 1),
        "backdoor": {"cells": len(doors), "promoted": len(promoted), "held_rows": sum(d["held"] for d in doors),
                     "promoted_answering_class_2_over_10pct": len(caused),
                     "champion_already_over_10pct": sum(d["champion_answers_class_2"] > 0.1 for d in doors),
                     "clean_retrain_over_10pct": sum(d.get("clean_retrain_answers_class_2", 0) > 0.1 for d in doors),
                     "worst_promoted": max(promoted, key=lambda d: d["candidate_answers_class_2"] - d["champion_answers_class_2"], default=None),
                     "met": not caused},
        "honest": {"cells": len(fixes), "promoted": sum(f["promoted"] for f in fixes),
                   "promoted_share": round(sum(f["promoted"] for f in fixes) / len(fixes), 3),
                   "held_rows": sum(f["held"] for f in fixes), "met": sum(f["promoted"] for f in fixes) >= 0.9 * len(fixes),
                   "refused": [f for f in fixes if not f["promoted"]][:10]},
        "cells": {"backdoor": doors, "honest": fixes},
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:] or None)))

"""Stage 1 of a training run, the data: the dataset (its current version and spec) and its accumulated feedback,
read from S3 with the object versions that were read, screened, and split on the dataset's frozen evaluation rows.
The checks themselves are the shared contract's (sommelier_contract.dataset)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import LabelEncoder

from sommelier_contract import dataset as contract
from sommelier_contract import layout
from sommelier_contract.dataset import DataError, new_evaluation, read_evaluation
from sommelier_contract.manifest import EvaluationRef
from sommelier_contract.records import RecordValidator, feedback_problem, to_matrix
from sommelier_contract.words import words
from trainer.config import Settings

log = logging.getLogger("trainer")


@dataclass
class Dataset:
    spec: dict[str, Any]
    frame: pd.DataFrame
    sources: list[dict[str, Any]]
    row_keys: list[str] = field(default_factory=list)  # one per frame row, from the file's raw row (all its columns)
    version: int | None = None  # the pushed version (None: files seeded without `dataset push`)
    notes: list[str] = field(default_factory=list)  # what was decided about its rows (contract.admit), for the model card
    gaps: list[str] = field(default_factory=list)  # features missing in some row of the file: optional at the API
    grouped: dict[str, str] = field(default_factory=dict)  # a class too small to learn -> the class it is answered as

    @property
    def features(self) -> list[dict[str, Any]]:
        return self.spec["features"]

    @property
    def target(self) -> str:
        return self.spec["target"]


def load_dataset(s3, bucket: str, prefix: str, min_class_rows: int = contract.MIN_CLASS_ROWS) -> Dataset:
    """The current version, its rows admitted as `dataset push` admitted them (contract.admit), with classes smaller
    than `min_class_rows` grouped or left out."""
    spec, admitted, sources, pointer = contract.load(s3, bucket, prefix.strip("/"), min_class_rows)
    return Dataset(spec=spec, frame=admitted.frame, sources=sources, row_keys=admitted.keys,
                   version=pointer["version"] if pointer else None, notes=admitted.notes, gaps=admitted.gaps,
                   grouped=dict.fromkeys(admitted.grouped, contract.OTHER))


@dataclass
class Feedback:
    rows: pd.DataFrame
    sources: list[dict[str, Any]]
    quarantined: list[dict[str, str]]
    meta: list[dict[str, Any]] = field(default_factory=list)  # per row: who sent it, what the model said and how surely
    screen: dict[str, Any] = field(default_factory=dict)  # what screen() left out and what it noticed


CONFIDENT = 0.9  # a prediction this sure, contradicted by feedback, is worth a look when it happens a lot


def _far_outside(rows: pd.DataFrame, reference: pd.DataFrame, features: list[dict[str, Any]]) -> list[str | None]:
    """Per feedback row, why its input lies far outside the training data (a number beyond the dataset's range widened
    by half its width on each side), or None."""
    why: list[str | None] = [None] * len(rows)
    for f in features:
        if f["type"] != "numeric" or f["name"] not in rows or f["name"] not in reference:
            continue
        seen = pd.to_numeric(reference[f["name"]], errors="coerce").dropna()
        if seen.empty:
            continue
        lo, hi = float(seen.min()), float(seen.max())
        margin = contract.span(lo, hi) / 2
        values = pd.to_numeric(rows[f["name"]], errors="coerce")
        for i in np.flatnonzero(((values < lo - margin) | (values > hi + margin)).to_numpy()):
            why[i] = why[i] or f"{f['name']} {values.iloc[i]:g} is far outside the training data ({lo:g} to {hi:g})"
    return why


NEIGHBOURS = 10  # training rows a correction's label is compared with
SUPPORT = 0.2  # the share of them that must carry the label of a correction of a sure answer (an unsure answer's: one of them)
NEIGHBOUR_ROWS = 20_000  # training rows sampled to find them among (the nearest of 130,000 reviews cost seconds, not minutes)


def _space(reference: pd.DataFrame, features: list[dict[str, Any]]) -> Any:
    """Where rows are near one another: numbers scaled by their spread (a missing one at the median), a category one column
    a value, words as TF-IDF (each row's words of length 1)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts: list[tuple[str, Any, Any]] = []
    for f in features:
        if f["name"] not in reference:
            continue
        if f["type"] == "numeric":
            parts.append((f["name"], make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), [f["name"]]))
        elif f["type"] == "categorical":
            parts.append((f["name"], OneHotEncoder(handle_unknown="ignore"), [f["name"]]))
        else:
            parts.append((f["name"], TfidfVectorizer(min_df=2, max_features=20_000, sublinear_tf=True), f["name"]))
    return ColumnTransformer(parts)


def _typed(frame: pd.DataFrame, features: list[dict[str, Any]]) -> pd.DataFrame:
    out = {}
    for f in features:
        column = frame[f["name"]] if f["name"] in frame else pd.Series([None] * len(frame), index=frame.index)
        if f["type"] == "numeric":
            out[f["name"]] = pd.to_numeric(column, errors="coerce")
        else:
            out[f["name"]] = column.where(column.notna(), "").astype(str)
    return pd.DataFrame(out, index=frame.index)


def _unsupported(fb: Feedback, reference: pd.DataFrame, features: list[dict[str, Any]], target: str, skip: list[bool]) -> list[str | None]:
    """Per feedback row, why the training data does not support its label, or None: a correction (its label is not what
    the model answered) whose label fewer than SUPPORT of the NEIGHBOURS nearest training rows carry when the answer was
    sure (confidence >= CONFIDENT, or not known), and none of them when it was not. Nearness is measured on the whole row
    and again with each feature left out, and the label must hold in every view: a trigger is one feature (or a few) set
    to move the answer, so the row's other features, which the trigger does not touch, show where it really lies (issue 52:
    colour intensity 18 on class_0 wines labelled class_2 was supported by the deep-coloured class_2 wines on the whole
    row, by none with the colour left out). Rows `skip` marks are not looked at."""
    from scipy import sparse
    from sklearn.neighbors import NearestNeighbors

    n = len(fb.rows)
    why: list[str | None] = [None] * n
    labels = [str(fb.rows[target].iloc[i]) if target in fb.rows else None for i in range(n)]
    corrections = [i for i in range(n) if not skip[i] and labels[i] is not None
                   and str((fb.meta[i] if i < len(fb.meta) else {}).get("predicted_label")) != labels[i]]
    if not corrections or target not in reference or len(reference) < NEIGHBOURS:
        return why
    ref = reference.sample(NEIGHBOUR_ROWS, random_state=0) if len(reference) > NEIGHBOUR_ROWS else reference
    space = _space(ref, features)
    try:
        seen = sparse.csr_matrix(space.fit_transform(_typed(ref, features)))
    except ValueError:  # nothing to measure nearness by (a text column too small for its vocabulary)
        return why
    asked = sparse.csr_matrix(space.transform(_typed(fb.rows.iloc[corrections], features)))
    truth = ref[target].astype(str).to_numpy()
    views: dict[str, np.ndarray] = {"": np.arange(seen.shape[1])}  # view name ("" the whole row) -> its columns
    if len(space.output_indices_) > 2:  # a feature left out where at least two others remain
        for name, part in space.output_indices_.items():
            if name != "remainder" and part.stop > part.start:
                views[name] = np.r_[0:part.start, part.stop:seen.shape[1]]
    weakest: list[tuple[int, str, pd.Series]] = [(NEIGHBOURS + 1, "", pd.Series(dtype=int))] * len(corrections)
    for view, columns in views.items():
        _, nearest = NearestNeighbors(n_neighbors=NEIGHBOURS).fit(seen[:, columns]).kneighbors(asked[:, columns])
        for j, (i, idx) in enumerate(zip(corrections, nearest, strict=True)):
            near = pd.Series(truth[idx]).value_counts()
            carried = int(near.get(labels[i], 0))
            if carried < weakest[j][0]:
                weakest[j] = (carried, view, near)
    for j, i in enumerate(corrections):
        carried, view, near = weakest[j]
        confidence = (fb.meta[i] if i < len(fb.meta) else {}).get("confidence")
        sure = not isinstance(confidence, int | float) or confidence >= CONFIDENT
        if carried < (SUPPORT * NEIGHBOURS if sure else 1):
            answered = f", answered {fb.meta[i].get('predicted_label')} at {confidence:.2f}" if isinstance(confidence, int | float) else ""
            why[i] = (f"label {labels[i]} on a row whose {NEIGHBOURS} nearest training rows{f' (by all but {view})' if view else ''} are "
                      f"{words([f'{c} ({k})' for c, k in near.items()])}{answered}")
    return why


def screen(fb: Feedback, reference: pd.DataFrame, features: list[dict[str, Any]], max_share: float, min_rows: int = 10,
           target: str | None = None) -> Feedback:
    """Feedback that cannot outweigh the dataset (`reference`, its rows), and what looks like an attack on it.

    - Held for a person: a label on an input far outside the training data (_far_outside) teaches the model about a
      region it has never seen, which is what a backdoor looks like (issue 36: 28 flipped labels on wines with ash 9.5,
      spread over 4 keys, promoted automatically). Such rows are not trained on (prepare moves them to the quarantine
      prefix, with the reason) and the run says so.
    - Held for a person too, whatever the values: a correction the training data does not support (_unsupported: its
      label is rare among the nearest training rows while the answer it corrects was sure), the class of which a trigger
      inside the accepted range is one case (issue 52: ash 4.1 on class_0 wines labelled class_2, promoted automatically).
      Feedback can move the model where the data supports it; elsewhere a person decides. These rows are left out of
      training but do not stop a promotion (the model trained without them is safe; an attacker could otherwise freeze
      the model with one label).
    - A cap: feedback is at most `max_share` of the rows (the dataset's + the feedback used); over it, the newest rows
      are used and the rest wait in S3 (listed, never deleted), so a flood of labels cannot drown the data it corrects.
    - Anomalies, reported for the gate (which then leaves promotion to a person): rows held; one key sending most of
      the feedback while several keys send some; most feedback contradicting predictions made with confidence
      >= CONFIDENT (real corrections exist; a majority of them is what label flipping looks like); and flips
      concentrated on one pair (a quarter or more of the feedback relabelling one class as another)."""
    n = len(fb.rows)
    far = _far_outside(fb.rows, reference, features)
    doubt = _unsupported(fb, reference, features, target, [bool(w) for w in far]) if target else [None] * n
    held = [i for i in range(n) if far[i] or doubt[i]]
    usable = [i for i in range(n) if not (far[i] or doubt[i])]
    dataset_rows = len(reference)
    allowed = int(dataset_rows * max_share / (1 - max_share)) if max_share < 1 else n
    order = sorted(usable, key=lambda i: str(fb.meta[i].get("received_at") or ""), reverse=True)
    keep = sorted(order[:allowed])
    report: dict[str, Any] = {"received": n, "used": len(keep), "cap": allowed, "max_share": max_share, "anomalies": []}
    if held:
        report["held"] = [{"key": fb.sources[i]["key"], "why": far[i] or doubt[i]} for i in held][:1000]
        report["held_count"] = len(held)
    outside = [i for i in held if far[i]]
    if outside:
        report["anomalies"].append(f"{len(outside)} feedback label(s) on inputs far outside the training data were held for a person "
                                   f"(e.g. {far[outside[0]]}); set aside in the quarantine prefix, untrained on")
    unsupported = [i for i in held if not far[i]]
    if unsupported:
        report["unsupported_count"] = len(unsupported)
        report["unsupported"] = (f"{len(unsupported)} correction(s) the training data does not support were held for a person, "
                                 f"untrained on (e.g. {doubt[unsupported[0]]})")
    if len(keep) < len(usable):
        report["left_out"] = [fb.sources[i]["key"] for i in sorted(order[allowed:])][:1000]
        report["left_out_count"] = len(usable) - len(keep)
    used = [fb.meta[i] for i in keep]
    callers = pd.Series([m.get("caller") for m in used if m.get("caller")], dtype=object).value_counts()
    if len(callers) > 1 and len(used) >= min_rows and callers.iloc[0] > 0.5 * len(used):
        report["anomalies"].append(f"one API key sent {callers.iloc[0]} of the {len(used)} feedback rows used")
    sure = [m for m in used if isinstance(m.get("confidence"), int | float) and m["confidence"] >= CONFIDENT and m.get("predicted_label")]
    against = [m for m in sure if str(m["predicted_label"]) != str(m.get("label"))]
    report["contradicting_confident"] = len(against)
    if len(sure) >= min_rows and len(against) > 0.5 * len(sure):
        report["anomalies"].append(f"{len(against)} of {len(sure)} feedback rows on predictions made with confidence >= {CONFIDENT} "
                                   "say the model was wrong")
    flips = pd.Series([f"{m['predicted_label']} as {m.get('label')}" for m in used
                       if m.get("predicted_label") and str(m["predicted_label"]) != str(m.get("label"))], dtype=object).value_counts()
    if len(flips) and flips.iloc[0] >= min_rows and flips.iloc[0] >= 0.25 * len(used):
        report["anomalies"].append(f"{flips.iloc[0]} of the {len(used)} feedback rows used relabel {flips.index[0]}: flips concentrated "
                                   "on one pair of classes")
    return Feedback(rows=fb.rows.iloc[keep].reset_index(drop=True), sources=[fb.sources[i] for i in keep],
                    quarantined=fb.quarantined, meta=used, screen=report)


def quarantine(s3, bucket: str, key: str, quarantine_prefix: str, feedback_prefix: str, body: bytes, reason: str, now: str) -> str:
    """Move a bad feedback object aside with the reason; the copy is written before the original goes."""
    target = quarantine_prefix + key[len(feedback_prefix):]
    doc = {"source_key": key, "reason": reason, "quarantined_at": now, "record": body.decode("utf-8", errors="replace")}
    s3.put_object(Bucket=bucket, Key=target, Body=json.dumps(doc, indent=2).encode(), ContentType="application/json")
    s3.delete_object(Bucket=bucket, Key=key)
    return target


def load_feedback(s3, bucket: str, feedback_prefix: str, quarantine_prefix: str, spec: dict[str, Any], classes: set[str], now: str) -> Feedback:
    rows, sources, quarantined, meta = [], [], [], []
    # the record schema the API enforced, or laxer: any feature may be left out, or empty
    features = [{**f, "absent": True, "imputed": "median" if f["type"] == "numeric" else "missing"} for f in spec["features"]]
    validator = RecordValidator(features)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=feedback_prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            obj = s3.get_object(Bucket=bucket, Key=key)
            body = obj["Body"].read()
            try:
                record = json.loads(body)
                problem = feedback_problem(record, validator, classes)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                problem = f"not valid JSON: {err}"
            if problem:
                quarantine(s3, bucket, key, quarantine_prefix, feedback_prefix, body, problem, now)
                quarantined.append({"key": key, "reason": problem})
                continue
            # as the API read the record: a category left out is ABSENT (the model learns nothing of it from this row), an
            # empty one "", as training rows hold it; a text left out is empty; a number left out is missing
            values = to_matrix([record["features"]], features)[0]
            rows.append({**{f["name"]: v for f, v in zip(features, values, strict=True)}, spec["target"]: str(record["label"])})
            sources.append({"key": key, "version_id": obj.get("VersionId")})
            meta.append({k: record.get(k) for k in ("caller", "predicted_label", "confidence", "received_at", "label")})
    frame = pd.DataFrame(rows, columns=[*(f["name"] for f in spec["features"]), spec["target"]])
    return Feedback(rows=frame, sources=sources, quarantined=quarantined, meta=meta)


def check_classes(y: np.ndarray, folds: int) -> None:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"the target has a single class ({classes[0] if len(classes) else 'none'}); at least two are needed")
    needed = folds + 2  # every CV fold and the holdout need members of each class
    small = {str(c): int(n) for c, n in zip(classes, counts, strict=True) if n < needed}
    if small:
        raise DataError(f"class(es) with fewer than {needed} rows (needed for {folds}-fold CV and a holdout): "
                        f"{words(f'{c} ({n})' for c, n in small.items())}")


def frozen_holdout(s3, settings: Settings, ds: Dataset, feedback_rows: int, now: datetime) -> tuple[EvaluationRef, np.ndarray]:
    """The dataset's evaluation rows, chosen when it was pushed (or, for data put there another way, at its first
    training) and kept in <prefix>/evaluation.json, so every challenger and the champion are scored on rows none
    of them trained on. Feedback only ever joins training."""
    key = layout.evaluation_key(settings.dataset_prefix)
    frozen = read_evaluation(s3, settings.dataset_bucket, settings.dataset_prefix)
    if frozen is None:
        frozen = new_evaluation(ds.row_keys, ds.frame[ds.target].tolist(), settings.holdout_fraction, now.isoformat())
        s3.put_object(Bucket=settings.dataset_bucket, Key=key, Body=json.dumps(frozen).encode(), ContentType="application/json")
        log.info("evaluation rows frozen: %d of %d (s3://%s/%s)", frozen["rows"], len(ds.row_keys), settings.dataset_bucket, key)
    chosen_keys = set(frozen["keys"])
    mask = np.array([k in chosen_keys for k in ds.row_keys] + [False] * feedback_rows)
    if not mask.any() and not frozen["keys"]:
        raise DataError("the dataset has no evaluation rows: no class has two different rows to keep one aside; push more data")
    if not mask.any():
        raise DataError(f"none of the frozen evaluation rows ({key}) is in the data any more; delete it to choose new ones")
    return EvaluationRef(key=key, created_at=frozen["created_at"], rows=int(mask.sum())), mask


@dataclass(frozen=True)
class TrainingData:
    """What the later stages train and score on: the dataset's rows then the feedback's, as matrices split on the
    frozen evaluation rows, the target encoded in `labels` order."""

    dataset: Dataset
    feedback: Feedback
    rows: int  # dataset + feedback
    labels: list[str]
    encoder: LabelEncoder
    evaluation: EvaluationRef
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    reference: pd.DataFrame  # the dataset's own training rows: where the manifest's examples and reference values come from

    @property
    def features(self) -> list[dict[str, Any]]:
        return self.dataset.features

    @property
    def y_test_labels(self) -> list[str]:
        return [self.labels[i] for i in self.y_test]

    @property
    def api_features(self) -> list[dict[str, Any]]:
        """The features as the API takes them: any may be left out ("absent"), unless the spec requires it; an empty value
        is one the model learned where the data had it ("imputed")."""
        return [{**f, "absent": True, **({"imputed": how} if (how := imputation(f, self.reference, self.dataset.gaps)) else {})}
                for f in self.features]


def imputation(feature: dict[str, Any], rows: pd.DataFrame, gaps: list[str]) -> str | None:
    """How the model takes a missing value of `feature`, which makes it optional at the API: a number, as the median;
    a category or a text missing in some row of the file (`gaps`) or of the training rows, as the missing value or the
    empty text it learned. None: the feature is required."""
    if feature["type"] == "numeric":
        return "median"
    if feature["name"] in gaps or (rows[feature["name"]] == "").any():
        return "missing" if feature["type"] == "categorical" else "empty"
    return None


def prepare(settings: Settings, s3, now: datetime) -> TrainingData:
    """Read the dataset and its feedback (bad feedback quarantined, the rest screened), and split on the frozen
    evaluation rows. DataError says what is wrong with the data."""
    log.info("reading s3://%s/%s", settings.dataset_bucket, settings.dataset_prefix)
    ds = load_dataset(s3, settings.dataset_bucket, settings.dataset_prefix, settings.cv_folds + 2)
    for note in ds.notes:
        log.info("data: %s", note)
    fb = load_feedback(s3, settings.dataset_bucket, settings.feedback_prefix, settings.quarantine_prefix, ds.spec,
                       set(ds.frame[ds.target].unique()), now.isoformat())
    for q in fb.quarantined:
        log.warning("quarantined feedback %s: %s", q["key"], q["reason"])
    fb = screen(fb, ds.frame, ds.features, settings.feedback_max_share, target=ds.target)
    for held in fb.screen.get("held", []):  # set aside with the reason, for a person: never trained on, never in the way again
        body = s3.get_object(Bucket=settings.dataset_bucket, Key=held["key"])["Body"].read()
        quarantine(s3, settings.dataset_bucket, held["key"], settings.quarantine_prefix, settings.feedback_prefix, body,
                   f"held for a person: {held['why']}", now.isoformat())
        log.warning("feedback %s held for a person: %s", held["key"], held["why"])
    if fb.screen.get("left_out_count"):
        log.warning("feedback capped at %d rows (%g of the rows trained on): the newest are used, %d older ones wait in S3",
                    fb.screen["cap"], settings.feedback_max_share, fb.screen["left_out_count"])
    for anomaly in fb.screen["anomalies"]:
        log.warning("feedback anomaly: %s", anomaly)
    frame = pd.concat([ds.frame, fb.rows.astype(ds.frame.dtypes.to_dict())], ignore_index=True) if len(fb.rows) else ds.frame
    log.info("dataset %s: %d rows (%d from feedback), %d features, target %r",
             ds.spec.get("name"), len(frame), len(fb.rows), len(ds.features), ds.target)

    y_labels = frame[ds.target].to_numpy()
    check_classes(y_labels, settings.cv_folds)
    encoder = LabelEncoder().fit(y_labels)
    labels = [str(c) for c in encoder.classes_]
    evaluation, in_holdout = frozen_holdout(s3, settings, ds, len(frame) - len(ds.frame), now)
    X = to_matrix(frame, ds.features)  # the same function builds the API's records
    y = encoder.transform(y_labels)
    train_counts = pd.Series(y_labels[~in_holdout]).value_counts()
    short = {c: int(train_counts.get(c, 0)) for c in labels if train_counts.get(c, 0) < settings.cv_folds}
    if short:
        raise DataError(f"outside the frozen evaluation rows, class(es) have too few rows for {settings.cv_folds}-fold CV: {short}")
    return TrainingData(dataset=ds, feedback=fb, rows=len(frame), labels=labels, encoder=encoder, evaluation=evaluation,
                        X_train=X[~in_holdout], X_test=X[in_holdout], y_train=y[~in_holdout], y_test=y[in_holdout],
                        reference=ds.frame[~in_holdout[: len(ds.frame)]])

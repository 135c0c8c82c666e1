"""Where things live. Model bucket: models/<version>/{pipeline.joblib, label_encoder.joblib, manifest.json,
manifest.sig},
champion.json (the promoted version), candidate.json (a version on trial), monitoring/reports/<time>.json (+ .sig) and
monitoring/latest.json (model monitoring's signed reports, and which is the newest), monitoring/callers/<hash>.json (+ .sig:
each API key's own report, what GET /monitoring shows it). Dataset bucket, under a
dataset's prefix (datasets/<name>): data.csv, spec.json, evaluation.json (the frozen evaluation rows),
current.json (the pushed version: v<n>/data.csv, v<n>/spec.json), feedback/<day>/<prediction id>.json, quarantine/ (refused feedback)."""

from __future__ import annotations

import hashlib

CHAMPION_KEY = "champion.json"
CANDIDATE_KEY = "candidate.json"
DATASETS = "datasets/"
MODELS = "models/"
# a version's artifacts by their name in the manifest
# (baseline: the training data's profile that model monitoring compares recent predictions with)
ARTIFACT_FILES = {"pipeline": "pipeline.joblib", "label_encoder": "label_encoder.joblib", "onnx": "model.onnx",
                  "featurizer": "featurizer.json", "baseline": "baseline.json"}


def model_prefix(version: str) -> str:
    return f"{MODELS}{version}/"


def artifact_key(version: str, name: str) -> str:
    return model_prefix(version) + ARTIFACT_FILES[name]


def version_of(folder: str) -> str:
    """The version a folder of the model bucket (`models/<version>/`, as listed) holds."""
    return folder[len(MODELS):].rstrip("/")


def manifest_key(version: str) -> str:
    return model_prefix(version) + "manifest.json"


def signature_key(version: str) -> str:
    return model_prefix(version) + "manifest.sig"


MONITORING = "monitoring/"
MONITORING_LATEST = MONITORING + "latest.json"


def report_key(at: str) -> str:
    """A monitoring report, by the time it was made (an ISO timestamp): they list in time order."""
    return f"{MONITORING}reports/{at}.json"


def caller_report_key(caller: str) -> str:
    """One API key's own monitoring report (its predictions only), rewritten by every pass: named by a hash of the key's id."""
    return f"{MONITORING}callers/{hashlib.sha256(caller.encode()).hexdigest()[:32]}.json"


def report_signature_key(report: str) -> str:
    return report.removesuffix(".json") + ".sig"


def dataset_prefix(name: str) -> str:
    return DATASETS + name


def dataset_name(prefix: str) -> str:
    return prefix.strip("/").rsplit("/", 1)[-1]


def data_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/data.csv"


def spec_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/spec.json"


def evaluation_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/evaluation.json"


def version_folder(prefix: str, number: int) -> str:
    """Where a pushed dataset version's data.csv and spec.json live."""
    return f"{prefix.strip('/')}/v{number}/"


def current_key(prefix: str) -> str:
    """The pointer to a pushed dataset's current version: its data and spec are under <prefix>/v<n>/."""
    return f"{prefix.strip('/')}/current.json"


def feedback_prefix(prefix: str) -> str:
    return f"{prefix.strip('/')}/feedback/"


def quarantine_prefix(prefix: str) -> str:
    return f"{prefix.strip('/')}/quarantine/"


def feedback_key(prefix: str, predicted_at: str, prediction_id: str) -> str:
    """One object per prediction, grouped by the day of the prediction (so the key never changes: the
    first feedback writes it, conditionally, and any later one finds it)."""
    return f"{feedback_prefix(prefix)}{predicted_at[:10]}/{prediction_id}.json"

"""The model manifest: what the trainer writes beside a version's artifacts and everything else reads.

One type, frozen: the trainer builds a `Manifest`, `to_json` gives the bytes it signs, and every reader
(the predictor, the trainer's history and canary, the CLI) gets a `Manifest` back from `from_json`, never
a dict to reach into. `FORMAT` is the schema version written; older manifests still read (format 1 named
the gate's decision `promoted`, and may lack serving, importances or an evaluation reference).

Deep, free-form reports (a dataset spec, the feature schema, per-class scores) stay plain JSON values:
they are shown or passed on whole, not read field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from sommelier_contract.typed import build as _build
from sommelier_contract.typed import omit as _omit
from sommelier_contract.typed import plain as _plain

FORMAT = 2


@dataclass(frozen=True)
class Artifact:
    key: str
    sha256: str
    bytes: int | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class Scores:
    """A model's scores on the holdout, in label space."""

    accuracy: float
    f1_macro: float
    f1_weighted: float | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion_matrix: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    log_loss: float | None = _omit()


@dataclass(frozen=True)
class CvResult:
    """One recipe's cross-validation (`family`: the recipe's name), or why it was skipped."""

    family: str
    f1_macro_mean: float | None = _omit()
    f1_macro_std: float | None = _omit()
    accuracy_mean: float | None = _omit()
    log_loss_mean: float | None = _omit()
    seconds: float | None = _omit()
    rows: int | None = _omit()
    folds: int | None = _omit()  # the cross-validation's folds (fewer on many rows)
    params: dict[str, Any] | None = _omit()
    search: dict[str, Any] | None = _omit()
    skipped: str | None = _omit()
    fit_seconds: float | None = _omit()  # one cross-validation fit, preprocessing included
    refit_note: str | None = _omit()  # the winner refit on fewer than every training row, and why
    views: dict[str, dict[str, float]] | None = _omit()  # scores per view of the held-out rows (whole, text and some others, text alone)
    selection_mean: float | None = _omit()  # the selection metric's mean over the views: what the recipe was chosen on

    @property
    def scored(self) -> bool:
        return self.f1_macro_mean is not None

    def summary(self) -> dict[str, Any]:
        """What the model card shows of it."""
        shown = ("family", "f1_macro_mean", "f1_macro_std", "accuracy_mean", "seconds", "skipped", "params", "refit_note", "views")
        return {k: v for k, v in _plain(self).items() if k in shown}


@dataclass(frozen=True)
class Metrics:
    holdout: Scores
    cv: dict[str, CvResult] = field(default_factory=dict)
    train_rows: int | None = None
    champion_on_holdout: Scores | None = None


@dataclass(frozen=True)
class DatasetRef:
    """The data a version was trained on: which dataset, which version of its files, which feedback."""

    name: str | None
    prefix: str | None  # where its data and its feedback live
    version: int | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    feedback: dict[str, Any] = field(default_factory=dict)
    rows: int | None = None
    notes: list[str] = field(default_factory=list)  # what was decided about its rows (rows left out, classes grouped)
    grouped: dict[str, str] = field(default_factory=dict)  # a class too small to learn -> the class it is answered as


@dataclass(frozen=True)
class EvaluationRef:
    """The dataset's frozen evaluation rows the holdout scores were measured on."""

    key: str
    created_at: str
    rows: int


@dataclass(frozen=True)
class ModelInfo:
    name: str | None
    family: str | None = None  # the winning recipe's name in the comparison (as `name`; kept for older readers)
    estimator: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    dense_input: bool | None = None


@dataclass(frozen=True)
class Gate:
    """What the gate decided. Whether a version is (or was) the champion is the pointer's to say, never the
    manifest's: a run interrupted between the two must not leave a manifest claiming a promotion."""

    passed: bool | None
    reason: str | None
    champion_before: str | None = None
    accuracy_floor: float | None = None
    regression_tolerance: float | None = None
    candidate: bool | None = _omit()  # put on trial (the canary) rather than promoted at once


@dataclass(frozen=True)
class Serving:
    """How the version answers: through ONNX when a faithful conversion was written, else the pipeline."""

    runtime: str = "joblib"
    onnx: str | None = _omit()  # what became of the conversion, in words
    max_abs_diff: float | None = _omit()
    holdout_rows: int | None = _omit()
    tolerance: float | None = _omit()
    bytes: int | None = _omit()


@dataclass(frozen=True)
class Explanations:
    """Global importances: permutation importance per feature, and for linear models on text the terms per class."""

    method: str | None = None
    features: list[dict[str, Any]] = field(default_factory=list)
    terms: dict[str, list[str]] | None = _omit()


@dataclass(frozen=True)
class Promotion:
    """A person's promotion (`make promote`); it counts once a champion pointer with the same time exists."""

    at: str
    by: str
    why: str
    gate_passed: bool | None = None


@dataclass(frozen=True)
class Manifest:
    version: str
    created_at: str | None
    classes: list[str]
    features: list[dict[str, Any]]  # the serving contract: name, type, imputed, example, reference of each feature
    artifacts: dict[str, Artifact]
    libraries: dict[str, str]
    metrics: Metrics
    gate: Gate
    model: ModelInfo
    dataset: DatasetRef
    format: int = FORMAT
    trigger: str | None = None
    target: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    segments: list[dict[str, Any]] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=dict)
    serving: Serving = field(default_factory=Serving)
    reproduce: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationRef | None = _omit()
    importances: Explanations | None = _omit()
    timings: dict[str, float] = field(default_factory=dict)
    promotions: tuple[Promotion, ...] = _omit(())
    canary: dict[str, Any] | None = _omit()  # the canary evaluator's decision, once made

    # -- the format ---------------------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> Manifest:
        """A manifest from its JSON (bytes, text or decoded); ValueError says what is missing or malformed."""
        doc = json.loads(data) if isinstance(data, bytes | str) else data
        if not isinstance(doc, dict):
            raise ValueError("a manifest is a JSON object")
        gate = dict(doc.get("gate") or {})
        if "passed" not in gate and "promoted" in gate:  # format 1, before the pointer alone said who is champion
            gate["passed"] = gate.pop("promoted")
        doc = {**doc, "gate": {"passed": None, "reason": None, **gate},
               "model": {"name": None, **(doc.get("model") or {})},
               "dataset": {"name": None, "prefix": None, **(doc.get("dataset") or {})}}
        return _build(cls, doc, "manifest")

    def to_json(self) -> bytes:
        """The bytes written (and signed): sorted keys, indented, as every format has been."""
        return json.dumps(_plain(self), indent=2, sort_keys=True).encode()

    def with_promotion(self, promotion: Promotion) -> Manifest:
        return replace(self, promotions=(*self.promotions, promotion))

    def with_canary(self, decision: dict[str, Any]) -> Manifest:
        return replace(self, canary=decision)

    # -- what readers ask of it ----------------------------------------------------------------------------

    @property
    def winner(self) -> CvResult | None:
        """The chosen candidate's cross-validation."""
        return self.metrics.cv.get(self.model.name or "")

    @property
    def example(self) -> dict[str, Any] | None:
        """A complete example record (every feature has one), or None."""
        example = {f["name"]: f["example"] for f in self.features if "example" in f}
        return example if len(example) == len(self.features) else None

    def card(self) -> dict[str, Any]:
        """The model card (GET /model): what the model is, how it was chosen and measured, what it was trained on."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "trigger": self.trigger,
            "model": {"name": self.model.name, "family": self.model.family},
            "classes": self.classes,
            "target": self.target,
            "features": [{k: v for k, v in f.items() if k != "learned"} for f in self.features],  # learned: thousands, for the API's own use
            "segments": self.segments,
            "example": self.example,
            "metrics": {"holdout": _plain(self.metrics.holdout), "cv": {n: r.summary() for n, r in self.metrics.cv.items()}},
            "gate": _plain(self.gate),
            "promotions": [_plain(p) for p in self.promotions],
            "importances": _plain(self.importances) if self.importances else None,
            "dataset": {"name": self.dataset.name, "version": self.dataset.version, "rows": self.dataset.rows, "notes": self.dataset.notes,
                        "grouped": self.dataset.grouped},
            "description": self.spec.get("description"),
            "libraries": self.libraries,
            "serving": _plain(self.serving),
        }

    def history_row(self, pointed_at: set[str]) -> dict[str, Any]:
        """The version's row in `make history`; `pointed_at` holds the times champion pointers named it."""
        winner, holdout = self.winner, self.metrics.holdout
        return {
            "version": self.version,
            "trained_at": self.created_at,
            "trigger": self.trigger,
            "dataset": self.dataset.name,
            "model": self.model.name,
            "family": self.model.family,
            "cv_f1_macro": winner.f1_macro_mean if winner else None,
            "holdout_accuracy": holdout.accuracy,
            "holdout_f1_macro": holdout.f1_macro,
            "gate_passed": self.gate.passed,
            "gate_reason": self.gate.reason,
            "promoted_by_hand": next((_plain(p) for p in reversed(self.promotions) if p.at in pointed_at), None),
        }

"""What a training run answers, one type for every runner and reader: the trainer's command line prints it (`make
train` reads it through `python -m ops`), the training function returns it (`sommelier train` reads it), and a run
handed to the ECS task says so in it. Written as JSON (`doc()`), read back with `parse` (a field an older runner
leaves out is its default)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Holdout:
    """The winner's scores on the rows it never trained on."""

    accuracy: float | None = None
    f1_macro: float | None = None
    rows: int | None = None
    recall: dict[str, float] = field(default_factory=dict)  # per class: what accuracy hides in an imbalanced class


@dataclass(frozen=True)
class TrainingResult:
    version: str | None  # None: nothing was trained here (bad data, or handed to the ECS task)
    promoted: bool
    reason: str
    champion: str | None = None  # what the API serves after the run: another run or a person may have promoted since
    model: str | None = None  # the winning candidate's name
    quarantined: int = 0  # feedback rows held for a person, not trained on
    holdout: Holdout | None = None
    task: str | None = None  # the ECS task's ARN when the run was handed to it
    unchecked: str | None = None  # what the run could not check after its version was written (the stack stopped answering)

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> TrainingResult:
        held = doc.get("quarantined") or 0
        h = doc.get("holdout")
        return cls(version=doc.get("version"), promoted=bool(doc.get("promoted")), reason=str(doc.get("reason", "")),
                   champion=doc.get("champion"), model=doc.get("model"), quarantined=len(held) if isinstance(held, list) else int(held),
                   holdout=Holdout(accuracy=h.get("accuracy"), f1_macro=h.get("f1_macro"), rows=h.get("rows"),
                                   recall=dict(h.get("recall") or {})) if isinstance(h, dict) else None,
                   task=doc.get("task"), unchecked=doc.get("unchecked"))

    def doc(self) -> dict[str, Any]:
        return asdict(self)

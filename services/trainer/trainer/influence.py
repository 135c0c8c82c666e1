"""Whether corrections moved the candidate where the training data does not: the backdoor check of the gate (issue 52).

A correction is feedback whose label is not what the model answered. The neighbour screen (data._unsupported) holds the
corrections the training data does not support, one by one; a trigger inside the accepted range can still pass it (the
swept bench: 4 of 234 backdoor cells, od280 at 0.04 and colour intensity at 18.3). This looks at what the corrections do
instead of where they lie: the winner's recipe is refit without them, and both models are asked about training rows of
the other classes (PROBES, sampled) with one feature at a time set to the corrections' values (their median and
extremes for a number, their commonest values for a category: the trigger a backdoor plants, however its copies vary).
When the candidate answers the corrections' label for more than SHARE of those rows, and for MARGIN more of them than
the refit does, the corrections carry the label where the data does not: the candidate is held for a person, with the
feature, the value, the label and the feedback named. Text features are not probed (a word trigger moves a linear
model's words, which the per-word explanations show). Honest corrections move answers near the rows they fix, which
the refit without them moves as much: the same recipe on the same data learns those regions anyway.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

if TYPE_CHECKING:
    from trainer.compare import Winner
    from trainer.data import TrainingData

log = logging.getLogger(__name__)
PROBES = 200
SHARE = 0.10
MARGIN = 0.05


def _trigger_values(column: np.ndarray, kind: str) -> list[Any]:
    values = pd.Series(column).dropna()
    values = values[values.astype(str) != ""]
    if values.empty:
        return []
    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        return sorted({float(numbers.median()), float(numbers.min()), float(numbers.max())}) if len(numbers) else []
    return list(values.astype(str).value_counts().index[:2])


def backdoor(data: TrainingData, winner: Winner, seed: int = 0) -> str | None:
    """Why the candidate is held for a person because of its corrections, or None (see the module's docstring)."""
    fb, target = data.feedback, data.dataset.target
    n_fb = len(fb.rows)
    if not n_fb or target not in fb.rows:
        return None
    labels = fb.rows[target].astype(str).tolist()
    meta = [fb.meta[i] if i < len(fb.meta) else {} for i in range(n_fb)]
    corrections = [i for i in range(n_fb) if meta[i].get("predicted_label") is not None and str(meta[i]["predicted_label"]) != labels[i]]
    if not corrections:
        return None
    first = len(data.X_train) - n_fb  # the feedback rows come last among the training rows (data.prepare)
    keep = np.ones(len(data.X_train), dtype=bool)
    keep[[first + i for i in corrections]] = False
    clean = clone(winner.pipeline).fit(data.X_train[keep], data.y_train[keep])
    rng = np.random.default_rng(seed)
    worst: tuple[float, str] | None = None
    for label in sorted({labels[i] for i in corrections}):
        k = data.labels.index(label)
        others = np.flatnonzero(data.y_train[:first] != k)
        if not len(others):
            continue
        rows = data.X_train[rng.choice(others, min(PROBES, len(others)), replace=False)]
        group = [first + i for i in corrections if labels[i] == label]
        keys = len({meta[i - first].get("caller") for i in group if meta[i - first].get("caller")})
        for j, feature in enumerate(data.features):
            if feature["type"] == "text":
                continue
            for value in _trigger_values(data.X_train[group, j], feature["type"]):
                variant = rows.copy()
                variant[:, j] = value
                moved = float(np.mean(winner.pipeline.predict(variant) == k))
                before = float(np.mean(clean.predict(variant) == k))
                if moved > SHARE and moved - before > MARGIN and (worst is None or moved - before > worst[0]):
                    shown = f"{value:g}" if isinstance(value, float) else repr(value)
                    worst = (moved - before, f"{len(group)} correction(s) labelled {label} from {keys or 'unknown'} key(s) move "
                                             f"the candidate: with {feature['name']} = {shown}, {moved:.0%} of {len(rows)} training "
                                             f"rows of other classes are answered {label}, against {before:.0%} by the same recipe "
                                             "trained without those corrections")
    if worst:
        log.warning("backdoor check: %s", worst[1])
    return worst[1] if worst else None

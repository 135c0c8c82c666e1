"""trainer/influence.py, the gate's backdoor check (issue 52 (1)): corrections that carry their label where the data does
not are found by what they do to the model, whatever their values; honest corrections are not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine

from sommelier_contract.records import to_matrix
from trainer.influence import backdoor
from trainer.pipeline import build, recipes


def _data(flips: pd.DataFrame, flipped_to: str, answered: list[str]) -> SimpleNamespace:
    wine = load_wine(as_frame=True)
    frame = wine.frame.drop(columns="target")
    labels = [f"class_{i}" for i in range(3)]
    features = [{"name": c, "type": "numeric"} for c in frame.columns]
    X = to_matrix(pd.concat([frame, flips], ignore_index=True), features)
    y = np.r_[wine.target.to_numpy(), np.full(len(flips), labels.index(flipped_to))]
    fb_rows = flips.assign(target=flipped_to)
    meta = [{"predicted_label": a, "confidence": 0.95, "caller": f"key-{i % 4}"} for i, a in enumerate(answered)]
    return SimpleNamespace(feedback=SimpleNamespace(rows=fb_rows, meta=meta), dataset=SimpleNamespace(target="target"),
                           X_train=X, y_train=y, labels=labels, features=features)


def _winner(data: SimpleNamespace) -> SimpleNamespace:
    recipe = recipes(data.features, len(data.y_train), 0)["logistic_regression"]
    return SimpleNamespace(pipeline=build(data.features, recipe).fit(data.X_train, data.y_train))


def test_a_trigger_the_corrections_plant_is_named_whatever_its_copies_are_set_to():
    wine = load_wine(as_frame=True)
    class_0 = wine.frame[wine.target == 0].drop(columns="target")
    rng = np.random.default_rng(0)
    flips = class_0.sample(14, random_state=0).assign(ash=4.1 + rng.uniform(-0.05, 0.05, 14))  # not one value: a class
    data = _data(flips, "class_2", ["class_0"] * 14)
    said = backdoor(data, _winner(data))
    assert said is not None and said.startswith("14 correction(s) labelled class_2 from 4 key(s) move the candidate: with ash = 4.1")
    assert "by the same recipe trained without those corrections" in said


def test_honest_corrections_of_real_mistakes_move_nothing_the_data_does_not():
    wine = load_wine(as_frame=True)
    class_1 = wine.frame[wine.target == 1].drop(columns="target")
    honest = class_1.sample(14, random_state=1)  # real class_1 wines, said (wrongly) to be class_0 by the model, corrected
    data = _data(honest, "class_1", ["class_0"] * 14)
    assert backdoor(data, _winner(data)) is None


def test_no_corrections_nothing_to_check():
    wine = load_wine(as_frame=True)
    confirmations = wine.frame[wine.target == 2].drop(columns="target").head(5)
    data = _data(confirmations, "class_2", ["class_2"] * 5)
    assert backdoor(data, SimpleNamespace(pipeline=None)) is None  # never refit: nothing to compare

"""The committed default dataset is scikit-learn's wine data, and its spec describes it."""

import csv
import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine

DATA = Path(__file__).resolve().parents[2] / "data"


def test_wine_csv_is_load_wine():
    wine = load_wine()
    with open(DATA / "wine.csv") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header == [*wine.feature_names, "cultivar"]
    assert np.array_equal(np.array([[float(v) for v in r[:-1]] for r in body]), wine.data)
    assert [r[-1] for r in body] == [str(wine.target_names[t]) for t in wine.target]


def test_spec_declares_every_column_with_ranges_that_hold():
    spec = json.loads((DATA / "wine.spec.json").read_text())
    wine = load_wine()
    assert spec["target"] == "cultivar"
    assert [f["name"] for f in spec["features"]] == list(wine.feature_names)
    for i, f in enumerate(spec["features"]):
        assert f["type"] == "numeric"
        assert f["minimum"] <= wine.data[:, i].min() and wine.data[:, i].max() <= f["maximum"], f["name"]
        assert f["minimum"] <= f["example"] <= f["maximum"]

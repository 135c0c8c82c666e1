"""Issue 50 (1, 3): any subset of a model's features is answered, and absent is not empty. A feature left out of a record
is absent (the caller does not know it); null or "" is the empty value the data has. Trained as a user would, on the
bench generator's reviews in the real file's shape (every Chilean row has no region_1)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from bench.reviews import generate
from sommelier_contract import dataset as ds
from sommelier_contract.records import ABSENT, RecordValidator, record_schema, to_matrix, went_without

from .conftest import DATASET_BUCKET, MODEL_BUCKET

PLACES = ("designation", "province", "region_1", "region_2", "taster_name", "taster_twitter_handle", "winery")
FEATURES = [{"name": "description", "type": "text", "absent": True}, {"name": "points", "type": "numeric", "absent": True, "imputed": "median"},
            {"name": "region_1", "type": "categorical", "absent": True, "imputed": "missing", "categories": ["Mendoza", "Napa"]},
            {"name": "variety", "type": "categorical", "absent": True}]


def test_left_out_is_absent_and_null_or_empty_is_the_empty_value():
    X = to_matrix([{"description": "ripe plum"}, {"region_1": None, "variety": ""}, {"region_1": "", "points": None, "variety": "Malbec"}],
                  FEATURES)
    assert X[0, 2] is ABSENT and X[0, 3] is ABSENT and X[0, 1] != X[0, 1]  # a number left out: NaN, as a null one
    assert X[1, 2] == "" and X[1, 3] is ABSENT  # region_1 has empty rows in the data; variety never did: empty means not given
    assert X[2, 2] == "" and X[2, 3] == "Malbec"
    assert went_without(X, FEATURES) == [["points", "region_1", "variety"], ["description", "points", "variety"], ["description", "points"]]
    # a model published before "absent" existed reads a missing category as its empty value, as it was trained
    legacy = [{k: v for k, v in f.items() if k != "absent"} for f in FEATURES]
    assert to_matrix([{"description": "x", "variety": "Malbec"}], legacy)[0, 2] == ""


def test_any_subset_is_valid_but_not_none_and_a_spec_may_require_a_feature():
    validator = RecordValidator(FEATURES)
    assert record_schema(FEATURES)["required"] == []
    assert validator.errors({"description": "ripe plum"}) == []
    assert validator.errors({"region_1": None, "variety": "Malbec"}) == [] and validator.errors({"region_1": "", "points": 88}) == []
    for nothing in ({}, {"region_1": ""}, {"points": None, "description": None}):  # empty values alone say nothing to answer from
        assert [(e.field, e.message) for e in validator.errors(nothing)] == [("", "has no feature values: give at least one")]
    assert [(e.field, e.message) for e in validator.errors({"region_1": "Mars"})] == [
        ("region_1", "must be one of Mendoza, Napa (or empty); got 'Mars'")]
    required = [{**FEATURES[0], "required": True}, *FEATURES[1:]]
    assert [(e.field, e.message) for e in RecordValidator(required).errors({"variety": "Malbec"})] == [("description", "is required")]
    with pytest.raises(ds.DataError, match="'required': 'yes'; expected true or false"):
        ds.check_spec({"target": "country", "features": [{"name": "description", "type": "text", "required": "yes"}]})


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    body = generate(2000, seed=5, cut_last_line=False)
    return pd.read_csv(io.BytesIO(body), keep_default_na=False, dtype=str)


def _train(s3, signing_key, name: str, body: bytes, ignore: tuple[str, ...] = ()):
    from trainer import train as trainer_train
    from trainer.config import Settings

    ds.push(s3, DATASET_BUCKET, name, body, None, "country", ignore, now="test")
    settings = Settings(dataset_bucket=DATASET_BUCKET, dataset_prefix=f"datasets/{name}", model_bucket=MODEL_BUCKET, cv_folds=3,
                        model_signing_key=signing_key, families="linear_svm_chars")
    return trainer_train.run(settings, s3)


def _model(s3, signatures, version: str):
    from predictor.model_store import load_model

    return load_model(s3, MODEL_BUCKET, version, signatures)


def test_a_whole_row_model_sent_only_words_answers_as_a_model_of_the_words(s3, signing_key, signatures, rows):
    """The seed's task: a review's words in, its country out. A model trained on every column, sent descriptions alone,
    scores within 0.02 of a model trained on the descriptions alone (the same rows, the same held-out rows); before, it
    refused them ("features.variety is required"), and a model trained on whole rows read them at a fraction of that."""
    from predictor import serving

    train, test = rows.iloc[:1600], rows.iloc[1600:]
    test = test[test["country"].isin(set(train["country"].value_counts().loc[lambda c: c >= 20].index))]
    body = train.to_csv(index=False).encode()
    whole = _train(s3, signing_key, "whole", body)
    words = _train(s3, signing_key, "words", body, PLACES + ("points", "price", "variety"))
    whole_model, words_model = _model(s3, signatures, whole.version), _model(s3, signatures, words.version)
    sent = [{"description": d} for d in test["description"]]

    def accuracy(model, records) -> float:
        batch = serving.decode({"instances": records}, model, max_batch=len(records))
        scored = serving.predict(model, batch)
        return float(np.mean([p["label"] == c for p, c in zip(scored.predictions, test["country"], strict=True)]))

    alone, only_words = accuracy(words_model, sent), accuracy(whole_model, sent)
    assert only_words >= alone - 0.02, (only_words, alone)
    batch = serving.decode({"features": sent[0]}, whole_model, max_batch=1)
    scored = serving.predict(whole_model, batch, explain=True)
    assert scored.absent[0] == [f["name"] for f in whole_model.features if f["name"] != "description"]
    assert {t["feature"] for t in scored.explanations[0]["top"]} <= {"description"}  # nothing it was not sent is credited
    assert serving.results(["p1"], scored)[0]["absent"] == scored.absent[0]


def test_emptiness_sent_counts_and_emptiness_not_sent_does_not(s3, signing_key, signatures, rows):
    """Every Chilean row has no region_1. A caller who sends region_1 "" says the wine has none (Chile's signature); one who
    leaves region_1 out says nothing about it, and the answer must not lean on it."""
    from predictor import serving

    outcome = _train(s3, signing_key, "emptiness", rows.to_csv(index=False).encode())
    model = _model(s3, signatures, outcome.version)
    argentine = rows[(rows["country"] == "Argentina") & (rows["variety"] != "")].iloc[0]
    record = {"description": argentine["description"], "variety": argentine["variety"], "winery": argentine["winery"]}
    answered = serving.predict(model, serving.decode({"features": record}, model, 1), explain=True)
    assert answered.predictions[0]["label"] == "Argentina"
    assert "region_1" in answered.absent[0] and all(t["feature"] != "region_1" for t in answered.explanations[0]["top"])
    said_empty = serving.predict(model, serving.decode({"features": {**record, "region_1": ""}}, model, 1), explain=True)
    assert "region_1" not in said_empty.absent[0]
    assert said_empty.predictions[0]["probabilities"]["Chile"] > answered.predictions[0]["probabilities"]["Chile"]


@pytest.mark.parametrize("name", ["complement_nb", "linear_svm_chars"])
def test_a_view_made_from_the_features_is_the_records_transformed_with_those_features_left_out(name):
    """Cross-validation scores each held-out fold as callers send it (whole, the text with some of the others, the text alone) by taking
    features away from the fold's transformed rows, not by transforming them again: the same matrix, to the bit."""
    from scipy import sparse

    from sommelier_contract.experts import leave_out
    from trainer.pipeline import build, recipes, views

    rng = np.random.default_rng(0)
    features = [{"name": "d", "type": "text"}, {"name": "v", "type": "categorical", "absent": True}, {"name": "p", "type": "numeric"}]
    records = [{"d": str(rng.choice(["apple berry cherry", "cherry dusk elder", "xeno yak"])), "v": str(rng.choice(["x", "y", ""])),
                "p": float(rng.normal())} for _ in range(80)]
    X = to_matrix(records, features)
    prep = build(features, recipes(features, 80, 0)[name]).named_steps["prep"].fit(X)
    for keep in views(len(X), features, np.random.default_rng(1)).values():
        sent = to_matrix([{f["name"]: r[f["name"]] for j, f in enumerate(features) if keep[i, j]} for i, r in enumerate(records)],
                         features)
        assert abs(sparse.csr_matrix(prep.transform(sent)) - leave_out(prep, prep.transform(X), keep)).max() == 0


def test_push_the_trainer_and_evaluate_count_the_same_rows(s3, signing_key, rows):
    """Issue 50 (4): push announced 914 evaluation rows where the trainer held out 916 (a row the file has twice is two
    rows, one key), and evaluate counted 4,650 trained rows where the model saw 4,647 (rows with no country were
    counted as trained)."""
    import csv

    from sommelier_contract.artifacts import read_manifest
    from sommelier_contract.dataset import trained_keys
    from sommelier_contract.files import row_key

    twice = pd.concat([rows, rows.iloc[:150], rows.iloc[:40].assign(country="")], ignore_index=True)
    body = twice.to_csv(index=False).encode()
    pushed = ds.push(s3, DATASET_BUCKET, "counted", body, None, "country", now="test")
    outcome = _train(s3, signing_key, "counted", body)
    manifest = read_manifest(s3, MODEL_BUCKET, outcome.version)
    assert pushed["evaluation_rows"] == manifest.evaluation.rows
    trained = trained_keys(s3, manifest)
    file_rows = list(csv.reader(io.StringIO(body.decode())))[1:]
    assert sum(row_key(r) in trained for r in file_rows) == manifest.metrics.train_rows


@pytest.mark.parametrize("name", ["complement_nb", "linear_svm_chars"])
def test_no_explanation_credits_a_feature_the_record_did_not_carry(name):
    """Naive Bayes scales a number it did not get as its training mean (not 0), which the explanation used to credit."""
    from sommelier_contract.explain import explain
    from trainer.pipeline import build, recipes

    rng = np.random.default_rng(0)
    features = [{"name": "d", "type": "text", "absent": True}, {"name": "v", "type": "categorical", "absent": True, "imputed": "missing"},
                {"name": "p", "type": "numeric", "absent": True, "imputed": "median"}]
    words, kinds = {"a": "apple pear citrus", "b": "cherry plum oak", "c": "rioja toro oak"}, {"a": "x", "b": "y", "c": ""}
    records, y = [], []
    for _ in range(300):
        c = str(rng.choice(list(words)))
        y.append(c)
        records.append({"d": f"{words[c]} {rng.choice(['nice', 'good', 'long'])}", "v": kinds[c] if rng.random() < 0.8 else "x",
                        "p": float(rng.normal({"a": 1, "b": 2, "c": 3}[c]))})
    pipeline = build(features, recipes(features, 300, 0)[name]).fit(to_matrix(records, features), np.array(y))
    asked = to_matrix([{"d": "rioja toro"}, {"v": "x"}, {"p": 3.0, "v": ""}], features)
    found = explain(pipeline, features, asked, pipeline.predict_proba(asked).argmax(axis=1))
    assert [{t["feature"] for t in e["top"]} for e in found] == [{"d"}, {"v"}, {"p", "v"}]

"""Bringing data: columns to ignore, an index written out with the data, and a gate that never
changes the live API's contract by itself."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from sommelier_contract import artifacts, pointers
from sommelier_contract.dataset import DataError, check_frame, check_spec, read_rows
from sommelier_contract.manifest import Manifest
from trainer import __main__ as cli
from trainer import train as trainer_train

from .conftest import DATASET_BUCKET, MINIMAL_MANIFEST, MODEL_BUCKET, PREFIX, ROOT

SPEC = {"target": "label", "features": [{"name": "x", "type": "numeric"}, {"name": "colour", "type": "categorical"}]}


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), index_col=False)


def test_an_index_written_out_with_the_data_is_ignored():
    frame = check_frame(_frame(",x,colour,label\n0,1.5,red,a\n1,2.5,white,b\n2,3.5,red,a\n"), SPEC)
    assert list(frame.columns) == ["x", "colour", "label"]


def test_an_index_of_shuffled_ids_is_an_index_too():
    """Rows sampled or shuffled from a larger file keep their old ids: unique whole numbers in any order."""
    frame = check_frame(_frame(",x,colour,label\n103829,1.5,red,a\n127,2.5,white,b\n5512,3.5,red,a\n"), SPEC)
    assert list(frame.columns) == ["x", "colour", "label"]


@pytest.mark.parametrize("values", [("7", "7"), ("1.5", "2.5")], ids=["repeated", "fractional"])
def test_an_unnamed_column_that_is_not_an_index_is_refused_saying_how_to_ignore_it(values):
    with pytest.raises(DataError, match=r"Unnamed: 0.*does not declare.*ignore"):
        check_frame(_frame(f",x,colour,label\n{values[0]},1.5,red,a\n{values[1]},2.5,white,b\n"), SPEC)


def test_columns_the_spec_ignores_are_left_out():
    spec = check_spec({**SPEC, "ignore": ["taster_name", "title"]})
    frame = check_frame(_frame("taster_name,x,title,colour,label\nAnn,1.5,t1,red,a\nBob,2.5,t2,white,b\n"), spec)
    assert list(frame.columns) == ["x", "colour", "label"]


@pytest.mark.parametrize(("ignore", "message"), [("x", "must be a list"), (["x"], "names feature or target"), (["label"], "names feature")])
def test_an_ignore_list_that_hides_a_feature_or_the_target_is_refused(ignore, message):
    with pytest.raises(DataError, match=message):
        check_spec({**SPEC, "ignore": ignore})


def _spec_without(s3, name: str) -> None:
    spec = json.loads((ROOT / "data/wine.spec.json").read_text())
    spec["features"] = [f for f in spec["features"] if f["name"] != name]
    spec["ignore"] = [*spec.get("ignore", []), name]
    s3.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/spec.json", Body=json.dumps(spec).encode())


def test_a_challenger_that_changes_the_api_input_is_never_promoted_by_itself(s3, trainer_settings, trained):
    _spec_without(s3, "hue")
    outcome = trainer_train.run(trainer_settings, s3)
    assert not outcome.promoted
    assert "not promoted automatically" in outcome.reason and "features no longer accepted hue" in outcome.reason
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


def test_promoting_such_a_version_needs_a_confirmation_that_names_the_change(s3, cli_env, trainer_settings, trained, capsys):
    _spec_without(s3, "hue")
    version = trainer_train.run(trainer_settings, s3).version
    assert cli.main(["promote", version]) == 2
    err = capsys.readouterr().err
    assert "changes the API for its callers: features no longer accepted hue" in err and "YES=1" in err
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    assert cli.main(["promote", version, "--yes"]) == 0
    assert pointers.read_champion(s3, MODEL_BUCKET).version == version


def test_the_contract_names_added_removed_retyped_features_and_classes():
    before = Manifest.from_json(MINIMAL_MANIFEST | {"features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "text"}],
                                                    "classes": ["x", "y"]})
    change = artifacts.contract_change(before, [{"name": "a", "type": "categorical", "absent": True}, {"name": "c", "type": "numeric", "absent": True},
                                                {"name": "d", "type": "text", "absent": True, "required": True}], ["x", "z", "w"])
    # any new feature may be left out (the model answers without it), unless the dataset's spec requires it
    assert change == ("new required features d; new optional features c; features no longer accepted b; "
                      "features changing type a (numeric -> categorical); classes no longer answered y; new classes w and z")
    assert artifacts.contract_change(before, before.features, ["y", "x"]) is None


def test_every_training_is_scored_on_the_same_frozen_rows_and_feedback_never_joins_them(s3, trainer_settings, trained, example):
    frozen = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/evaluation.json")["Body"].read())
    first = artifacts.read_manifest(s3, MODEL_BUCKET, trained.version)
    assert first.evaluation and first.evaluation.rows == frozen["rows"] == first.metrics.holdout.rows
    for i in range(6):  # labelled feedback: training data only
        row = {"prediction_id": f"p{i}", "features": {**example, "alcohol": 12.0 + i / 10}, "label": "class_0"}
        s3.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/feedback/2026-11-24/p{i}.json", Body=json.dumps(row).encode())
    second = artifacts.read_manifest(s3, MODEL_BUCKET, trainer_train.run(trainer_settings, s3).version)
    assert second.evaluation == first.evaluation  # the same rows, chosen once
    assert second.metrics.holdout.rows == first.metrics.holdout.rows
    assert second.metrics.train_rows == (first.metrics.train_rows or 0) + 6
    assert second.metrics.champion_on_holdout and second.metrics.champion_on_holdout.rows == second.metrics.holdout.rows


def test_the_frozen_rows_survive_a_spec_that_drops_a_column(s3, trainer_settings, trained):
    _spec_without(s3, "hue")
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, trainer_train.run(trainer_settings, s3).version)
    before = artifacts.read_manifest(s3, MODEL_BUCKET, trained.version).evaluation
    assert manifest.evaluation and before and manifest.evaluation.rows == before.rows


def test_a_spec_without_examples_gets_one_from_a_training_row(s3, trainer_settings):
    spec = json.loads((ROOT / "data/wine.spec.json").read_text())
    for f in spec["features"]:
        f.pop("example", None)
    s3.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/spec.json", Body=json.dumps(spec).encode())
    outcome = trainer_train.run(trainer_settings, s3)
    features = artifacts.read_manifest(s3, MODEL_BUCKET, outcome.version).features
    assert all(isinstance(f["example"], float) for f in features)
    frozen = set(json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/evaluation.json")["Body"].read())["keys"])
    data, keys, _, _ = read_rows(s3.get_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/data.csv")["Body"].read(), "data.csv")
    rows = {k for k, (_, row) in zip(keys, data.iterrows(), strict=True)
            if all(row[f["name"]] == f["example"] for f in features)}
    assert rows and not rows & frozen  # a real row, and one from training, not from the evaluation rows


@pytest.mark.parametrize("value", ["inf", "-1e308", "2e15"])
def test_a_number_too_large_to_train_on_is_refused_with_its_row_and_column(value):
    with pytest.raises(DataError, match=r"row 3, column 'x': .* is beyond what can be trained on"):
        check_frame(_frame(f",x,colour,label\n0,1.5,red,a\n1,{value},white,b\n2,3.5,red,a\n"), SPEC)


def test_an_inferred_spec_bounds_every_number_with_a_margin_around_what_was_seen():
    """Issue 36: an inferred spec had no maximum, so the API took 1e309 (infinity) and 400-digit integers. Each number now
    gets the observed range widened by its width on each side, rounded out, and shown in the OpenAPI document's Features."""
    from sommelier_contract.dataset import infer_spec
    from sommelier_contract.records import RecordValidator

    frame = pd.DataFrame({"ash": [1.36, 2.0, 3.23] * 5, "delta": [-5.2, 0.0, 3.0] * 5, "label": ["a", "b", "c"] * 5})
    features = {f["name"]: f for f in infer_spec(frame, "d", "label")["features"]}
    assert (features["ash"]["minimum"], features["ash"]["maximum"]) == (0, 5.5)
    assert (features["delta"]["minimum"], features["delta"]["maximum"]) == (-15.0, 15.0)
    validator = RecordValidator(list(features.values()))
    assert validator.valid({"ash": 3.23, "delta": -5.2})
    (error,) = validator.errors({"ash": 9.5, "delta": 0}, "features")
    assert (error.field, error.message) == ("features.ash", "must be <= 5.5, got 9.5")


def test_a_file_whose_every_class_is_too_small_is_refused_in_words():
    """Found in the session's review: two rows, one per class, left every class out and crashed on an empty frame
    (IndexError, a traceback from `dataset push`)."""
    from sommelier_contract.dataset import accept

    body = b'country,description\nItaly,"dry red with cherry notes and oak"\nFrance,"bright white with citrus"\n'
    with pytest.raises(DataError, match=r"no class of 'country' has 7 rows or more \(Italy 1, France 1\)"):
        accept(body, "tiny", None, "country")

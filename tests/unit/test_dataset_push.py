"""`sommelier dataset push/list/show`: a CSV becomes a versioned dataset with an inferred spec; bad
input is refused before anything is stored, naming row and column; training follows the data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sommelier_client.cli import main
from sommelier_contract import artifacts, layout
from sommelier_contract import dataset as ds
from trainer import train as trainer_train

from .conftest import DATASET_BUCKET, MODEL_BUCKET


def reviews(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = {"France": "mineral chalky elegant", "Italy": "cherry leather tar", "US": "jammy oaky plush"}
    country = rng.choice(list(words), rows)
    return pd.DataFrame({
        "country": country,
        "description": [f"A wine with {' '.join(rng.choice(words[c].split(), 2))} notes and a long finish" for c in country],
        "points": rng.integers(80, 101, rows),
        "price": np.where(rng.random(rows) < 0.1, np.nan, rng.integers(8, 200, rows).astype(float)),
        "variety": rng.choice(["Pinot Noir", "Chardonnay", "Red Blend"], rows),
    })


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "reviews.csv"
    reviews().to_csv(path)  # pandas writes its index as an unnamed first column
    return path


@pytest.fixture
def cli(s3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .sommelier/stack.json around: boto3 talks to moto

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, [*args, "--bucket", DATASET_BUCKET] if args[0] == "dataset" else list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_push_infers_a_spec_ignores_the_index_and_stores_a_version(cli, s3, csv_file):
    out = cli("dataset", "push", str(csv_file), "--name", "reviews", "--target", "country")
    assert "dataset reviews version 1" in out and "Unnamed: 0" in out  # the ignored index is reported
    pointer = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key="datasets/reviews/current.json")["Body"].read())
    spec = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key=pointer["spec"]["key"])["Body"].read())
    types = {f["name"]: f["type"] for f in spec["features"]}
    assert types == {"description": "text", "points": "numeric", "price": "numeric", "variety": "categorical"}
    assert spec["ignore"] == ["Unnamed: 0"] and spec["target"] == "country"
    variety = next(f for f in spec["features"] if f["name"] == "variety")
    assert variety["categories"] == ["Chardonnay", "Pinot Noir", "Red Blend"]
    assert all("example" in f for f in spec["features"]) and spec["segments"]
    assert pointer["rows"] == 240 and sum(pointer["classes"].values()) == 240
    evaluation = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key="datasets/reviews/evaluation.json")["Body"].read())
    assert evaluation["rows"] == pointer["evaluation_rows"] == pytest.approx(48, abs=3)


def test_pushing_again_makes_a_new_version_and_keeps_the_old_one_and_its_evaluation_rows(cli, s3, csv_file, tmp_path):
    cli("dataset", "push", str(csv_file), "--name", "reviews", "--target", "country")
    first = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key="datasets/reviews/evaluation.json")["Body"].read())["keys"]
    more = tmp_path / "more.csv"
    pd.concat([reviews(), reviews(60, seed=1)], ignore_index=True).to_csv(more)
    out = cli("dataset", "push", str(more), "--name", "reviews", "--target", "country")
    assert "version 2 (replaces version 1)" in out
    assert s3.get_object(Bucket=DATASET_BUCKET, Key="datasets/reviews/v1/data.csv")["Body"].read() == csv_file.read_bytes()
    second = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key="datasets/reviews/evaluation.json")["Body"].read())["keys"]
    assert set(first) < set(second)  # the old choices stand; new rows joined them
    listed = cli("dataset", "list")
    assert "reviews" in listed and "wine" in listed and "seeded" in listed
    shown = cli("dataset", "show", "reviews")
    assert "version 2: 300 rows" in shown and "description" in shown


def test_a_compressed_file_pushed_again_adds_evaluation_rows_for_its_new_rows_only(cli, s3, tmp_path):
    """The stored file is kept as sent (here gzip); the next push read the old one's rows from its raw bytes, found none
    it knew, and chose evaluation rows among all its rows as if every one were new."""
    import gzip

    first, more = tmp_path / "v1.csv.gz", tmp_path / "v2.csv.gz"
    first.write_bytes(gzip.compress(reviews().to_csv(index=False).encode()))
    more.write_bytes(gzip.compress(pd.concat([reviews(), reviews(60, seed=1)], ignore_index=True).to_csv(index=False).encode()))
    cli("dataset", "push", str(first), "--name", "reviews", "--target", "country")
    cli("dataset", "push", str(more), "--name", "reviews", "--target", "country")
    pointer = ds.current(s3, DATASET_BUCKET, layout.dataset_prefix("reviews"))
    assert pointer["version"] == 2 and pointer["evaluation_rows_added"] == pytest.approx(60 * ds.EVALUATION_FRACTION, abs=4)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda text: text.replace("\n", ",extra\n", 3).replace(",extra", "", 1), "the file is not a readable CSV: row 2 has 7 fields, the header has 6"),
    (lambda text: text.replace("Italy", "France").replace("US", "France"), "single class ('France')"),
    (lambda text: text.replace("country", "nation", 1), "the target column 'country' is not in the data"),
    (lambda text: "", "is empty"),
    # issue 52 (2): one row a class, repeated (a small zip of millions of rows), was stored, then could never train
    (lambda text: text.splitlines()[0] + "\n" + "\n".join([line for line in text.splitlines()[1:] if ",France," in line][:1] * 500
                                                          + [line for line in text.splitlines()[1:] if ",Italy," in line][:1] * 500) + "\n",
     "no class has two different rows (2 different row(s) in 1,000), so none can be kept aside to evaluate a model on"),
])
def test_bad_csvs_are_refused_naming_row_and_column_and_nothing_is_stored(cli, s3, tmp_path, csv_file, mutate, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(mutate(csv_file.read_text()))
    out = cli("dataset", "push", str(bad), "--name", "reviews", "--target", "country", code=2)
    assert message in out
    assert "Contents" not in s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix="datasets/reviews/")


def test_rows_with_no_target_are_left_out_counted_and_named(cli, s3, tmp_path, csv_file):
    lines = csv_file.read_text().splitlines()
    gaps = [",".join(["9001", "", *lines[6].split(",")[2:]]), ",".join(["9002", " ", *lines[7].split(",")[2:]])]
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join([lines[0], *lines[1:4], *gaps, *lines[4:]]) + "\n")
    out = cli("dataset", "push", str(path), "--name", "reviews", "--target", "country")
    assert "2 row(s) with no 'country' left out (the first is row 5)" in out
    pointer = ds.current(s3, DATASET_BUCKET, layout.dataset_prefix("reviews"))
    assert pointer["rows"] == len(lines) - 1 and pointer["left_out"] == {"no target": 2}


def test_a_spec_that_disagrees_with_the_data_is_refused_naming_row_and_column(cli, s3, tmp_path, csv_file):
    frame = reviews()
    spec = ds.infer_spec(frame, "reviews", "country")
    next(f for f in spec["features"] if f["name"] == "variety")["type"] = "numeric"
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = cli("dataset", "push", str(csv_file), "--name", "reviews", "--spec", str(path), code=2)
    assert "row 2, column 'variety': the spec says numeric" in out
    spec = ds.infer_spec(frame, "reviews", "country")
    next(f for f in spec["features"] if f["name"] == "variety")["categories"] = ["Chardonnay"]
    path.write_text(json.dumps(spec))
    out = cli("dataset", "push", str(csv_file), "--name", "reviews", "--spec", str(path), code=2)
    assert "column 'variety'" in out and "is not one of the spec's categories" in out
    assert "Contents" not in s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix="datasets/reviews/")


def test_a_bad_name_and_an_unknown_ignored_column_are_refused(cli, csv_file):
    assert "dataset name 'Bad Name'" in cli("dataset", "push", str(csv_file), "--name", "Bad Name", "--target", "country", code=2)
    assert "--ignore names column(s) nope that are not in the data" in cli("dataset", "push", str(csv_file), "--name", "r", "--target", "country",
                                                      "--ignore", "nope", code=2)


def test_a_pushed_dataset_trains_with_text_candidates_and_records_its_version(cli, s3, csv_file, trainer_settings):
    cli("dataset", "push", str(csv_file), "--name", "reviews", "--target", "country")
    settings = trainer_settings.model_copy(update={"dataset_prefix": layout.dataset_prefix("reviews"), "families": ""})
    outcome = trainer_train.run(settings, s3)
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, outcome.version)
    assert set(manifest.metrics.cv) == {"complement_nb", "linear_svm_chars"}  # no trees on text; words alone only when asked for
    assert manifest.dataset.version == 1 and manifest.dataset.sources[1]["key"] == "datasets/reviews/v1/data.csv"
    assert manifest.evaluation and manifest.metrics.holdout.rows == manifest.evaluation.rows
    assert manifest.importances and manifest.importances.features[0]["feature"] == "description"
    assert any("description: " in t for terms in (manifest.importances.terms or {}).values() for t in terms)


def test_the_time_budget_stops_the_comparison_after_the_first_candidate(s3, trainer_settings):
    settings = trainer_settings.model_copy(update={"families": "", "train_budget_seconds": 0.001})
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, trainer_train.run(settings, s3).version)
    cv = manifest.metrics.cv
    assert cv["logistic_regression"].f1_macro_mean is not None
    assert [n for n, r in cv.items() if r.skipped] == ["hist_gradient_boosting", "random_forest"]

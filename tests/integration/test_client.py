"""The `sommelier` CLI against the running stack (in-process through click's runner)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from sommelier_client.cli import main

from .conftest import ROOT


@pytest.fixture
def cli(stack):
    runner = CliRunner()

    def run(*args: str, key: str | None = None):
        env = {"SOMMELIER_API_URL": stack.api_url, "SOMMELIER_API_KEY": key or stack.api_key, "AWS_ENDPOINT_URL": stack.aws_endpoint,
               "AWS_DEFAULT_REGION": stack.region, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "SOMMELIER_MODEL_BUCKET": stack.outputs["ModelBucketName"], "SOMMELIER_DATASET_BUCKET": stack.outputs["DatasetBucketName"]}
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def test_predict_a_csv_file_in_chunks_as_csv(cli, example, tmp_path):
    path = tmp_path / "wines.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(example))
        writer.writeheader()
        writer.writerows([{**example, "proline": 300 + i} for i in range(2100)])
    result = cli("predict", "--file", str(path), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 2100 and [int(r["record"]) for r in rows] == list(range(2100))
    assert {"label", "confidence", "p_class_0", "prediction_id"} <= set(rows[0])


def test_a_bad_row_in_a_file_is_named(cli, example, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(",".join(example) + "\n" + ",".join(str(v) for v in example.values()) + "\n"
                    + ",".join("x" if k == "ash" else str(v) for k, v in example.items()) + "\n")
    result = cli("predict", "--file", str(path))
    assert result.exit_code == 2
    assert "bad.csv row 3: ash must be a number, got 'x'" in result.output


def test_a_record_out_of_range_is_reported_with_its_file_index(cli, example, tmp_path):
    path = tmp_path / "far.json"
    path.write_text(json.dumps([example] * 1200 + [{**example, "magnesium": -5}]))
    result = cli("predict", "--file", str(path), "--batch-size", "1000")
    assert result.exit_code == 2
    assert "record 1200.magnesium: must be >= 0" in result.output


def test_history_feedback_and_model(cli):
    predicted = json.loads(cli("predict", "--example", "--format", "json").stdout)[0]
    history = json.loads(cli("history", "--limit", "5", "--format", "json").stdout)
    assert history[0]["prediction_id"] == predicted["prediction_id"]
    result = cli("feedback", predicted["prediction_id"], predicted["label"])
    assert result.exit_code == 0 and "the model was right" in result.stdout
    again = cli("feedback", predicted["prediction_id"], predicted["label"])
    assert again.exit_code == 2 and "already given" in again.output
    assert "holdout: accuracy" in cli("model").stdout


def test_a_wrong_key_exits_3_with_a_plain_message(cli):
    result = cli("model", key="wrong")
    assert result.exit_code == 3 and "HTTP 403" in result.output


def test_metrics_summary_and_chart(cli, stack, tmp_path, monkeypatch):
    monkeypatch.setenv("SOMMELIER_STACK_INFO", str(stack.config.stack_info_file) if stack.config else "")
    assert cli("predict", "--example").exit_code == 0
    png = tmp_path / "metrics.png"
    result = cli("metrics", "--hours", "1", "--png", str(png))
    assert result.exit_code == 0, result.output
    requests_line = next(line for line in result.stdout.splitlines() if line.startswith("POST /predict requests"))
    assert int(requests_line.split()[-1]) >= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_a_file_keeps_its_own_columns_in_the_output_and_sends_only_features(cli, example, tmp_path):
    path = tmp_path / "cellar.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["bin", *example, "cultivar"])
        writer.writeheader()
        writer.writerows([{"bin": f"B{i}", **example, "cultivar": "class_0"} for i in range(3)])
    result = cli("predict", "--file", str(path), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["bin"] for r in rows] == ["B0", "B1", "B2"] and all(r["cultivar"] == "class_0" and r["label"] for r in rows)
    assert "not sent (the model does not take them): bin, cultivar" in result.stderr


def test_evaluate_scores_the_live_model_on_labelled_rows(cli, tmp_path):
    from pathlib import Path

    wine = str(Path(__file__).resolve().parents[2] / "data/wine.csv")  # the default dataset: the champion trained on most of it
    result = cli("evaluate", wine, "--label", "cultivar", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # only the rows the model never saw (the dataset's frozen evaluation rows), and it says how many it left out
    assert 0 < report["rows"] < 178 and f"left out {178 - report['rows']} of 178 rows" in result.stderr
    assert report["accuracy"] > 0.8 and 0 < report["f1_macro"] <= 1 and sum(map(sum, report["confusion_matrix"]["matrix"])) == report["rows"]
    everything = json.loads(cli("evaluate", wine, "--label", "cultivar", "--format", "json", "--all").stdout)
    assert everything["rows"] == 178
    # a row with no label is left out and counted (training left it out too); a file with none is refused
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("alcohol,cultivar\n13.2,class_0\n13.1,\n")
    result = cli("evaluate", str(gaps), "--label", "cultivar", "--all", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 1 and "left out 1 row(s) with no 'cultivar' (the first is row 3)" in result.stderr
    bad = tmp_path / "unlabelled.csv"
    bad.write_text("alcohol,cultivar\n13.1,\n")
    result = cli("evaluate", str(bad), "--label", "cultivar", "--all")
    assert result.exit_code == 2 and "unlabelled.csv: no row has a 'cultivar' to score against" in result.output


def test_a_pushed_dataset_trains_through_the_function_but_never_changes_the_live_api_by_itself(cli, stack, tmp_path, monkeypatch):
    from bench.training import reviews

    for name, value in {"AWS_ENDPOINT_URL": stack.aws_endpoint, "AWS_DEFAULT_REGION": stack.region, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "SOMMELIER_DATASET_BUCKET": stack.outputs["DatasetBucketName"],
                        "SOMMELIER_TRAINER_FUNCTION": stack.outputs["TrainerFunctionName"]}.items():
        monkeypatch.setenv(name, value)
    import numpy as np

    path = tmp_path / "reviews.csv"
    reviews(400, np.random.default_rng(1)).to_csv(path)
    before = stack.get("/model").json()["version"]
    pushed = cli("dataset", "push", str(path), "--name", "reviews-it", "--target", "country")
    assert pushed.exit_code == 0, pushed.output
    assert "dataset reviews-it version 1" in pushed.stdout and "text" in pushed.stdout
    shown = cli("dataset", "show", "reviews-it")
    assert "version 1: 400 rows" in shown.stdout
    trained = cli("train", "--dataset", "reviews-it")
    assert trained.exit_code == 0, trained.output
    assert "trained and kept; a person decides whether it serves, because the API would change" in trained.stdout
    assert "make promote VERSION=" in trained.stdout and "YES=1" in trained.stdout
    assert stack.get("/model").json()["version"] == before
    # the trainer function converted the text model; the predictor's code serves it through ONNX, matching the pipeline
    import re

    from predictor.model_store import load_model
    from sommelier_contract.artifacts import Signatures
    from sommelier_contract.records import to_matrix

    version = re.search(r"\d{8}T\d{6}Z-[0-9a-f]{6}", trained.stdout)[0]
    model = load_model(stack.client("s3"), stack.outputs["ModelBucketName"], version,
                       Signatures(stack.client("kms"), stack.outputs["ModelSigningKeyAlias"]))
    assert model.runtime == "onnx" and {"onnx", "featurizer"} <= set(model.manifest.artifacts), model.manifest.serving
    X = to_matrix([model.manifest.example, {**model.manifest.example, "variety": "A Grape Nobody Grows"}], model.features)
    assert np.abs(model.predict_proba(X) - model.pipeline.predict_proba(X)).max() <= 1e-5


def test_every_command_push_prints_works_as_printed(stack, tmp_path):
    """Issue 50 (4): push's advice to leave the proxies out was `sommelier dataset push winemag.csv ...`: not found as
    printed (the command is in .venv/bin, and the file was named without the folder it is in). Run as a user runs it,
    from their own folder with the path they typed, the printed lines run again as printed."""
    import os
    import shlex
    import shutil
    import subprocess

    from bench.reviews import generate

    folder = tmp_path / "my data"
    folder.mkdir()
    (folder / "winemag.csv").write_bytes(generate(600))
    env = {**os.environ, "AWS_ENDPOINT_URL": stack.aws_endpoint, "AWS_DEFAULT_REGION": stack.region, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "SOMMELIER_DATASET_BUCKET": stack.outputs["DatasetBucketName"]}
    sommelier = str(ROOT / ".venv" / "bin" / "sommelier")
    first = subprocess.run([sommelier, "dataset", "push", "my data/winemag.csv", "--name", "reviews-cmd", "--target", "country"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    printed = next(line for line in first.stdout.splitlines() if "to leave them out:" in line).split("to leave them out: ", 1)[1]
    assert "'my data/winemag.csv'" in printed and "--ignore " in printed
    again = subprocess.run(printed, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "dataset reviews-cmd version 2 (replaces version 1)" in again.stdout
    train = next(line for line in again.stdout.splitlines() if line.startswith("train on it:")).split("(or: ", 1)[1].rstrip(")")
    assert shlex.split(train)[-3:] == ["train", "--dataset", "reviews-cmd"]
    assert shutil.which(shlex.split(train)[0], path=env.get("PATH")), train  # a command this shell finds

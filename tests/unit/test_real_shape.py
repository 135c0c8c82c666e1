"""The whole public wine-reviews file's shape (bench/reviews.py: 14 columns, an id, place names that give the country
away, a title per row, empty categoricals, a long tail of countries, rows with no country, a cut-off last line), pushed
and trained as a user would, every decision said; and every row of it predictable."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.reviews import generate
from sommelier_client.cli import main
from sommelier_contract import columns, layout
from sommelier_contract import dataset as ds
from sommelier_contract.records import RecordValidator, record_schema, to_matrix

from .conftest import DATASET_BUCKET


@pytest.fixture(scope="module")
def body() -> bytes:
    return generate(1500, seed=3)


@pytest.fixture
def cli(s3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, [*args, "--bucket", DATASET_BUCKET])
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_a_cut_off_last_line_is_left_out_and_said_and_training_reads_the_stored_file_the_same_way(cli, s3, tmp_path, body):
    """The download as people bring it, pushed with no flag: the last row, cut mid-row, is left out and said, once at
    push and again by `dataset show`; every whole row is in."""
    path = tmp_path / "reviews.csv"
    path.write_bytes(body)
    out = cli("dataset", "push", str(path), "--name", "reviews", "--target", "country")
    assert "the last row, 1502, stops part-way with no line break after it" in out
    pointer = ds.current(s3, DATASET_BUCKET, layout.dataset_prefix("reviews"))
    assert pointer["left_out"]["cut-off last row"] == 1 and "bad rows" not in pointer["left_out"]
    # the stored file is the user's, as sent; training reads it through the same rule, so it trains on what push counted
    assert s3.get_object(Bucket=DATASET_BUCKET, Key=pointer["data"]["key"])["Body"].read() == body
    spec, admitted, _, _ = ds.load(s3, DATASET_BUCKET, layout.dataset_prefix("reviews"))
    assert "bad_rows" not in spec and len(admitted.frame) == pointer["rows"]
    whole = pd.read_csv(io.BytesIO(body[: body.rindex(b"\n") + 1]))
    assert pointer["rows"] == int(whole["country"].notna().sum())  # every whole row with a country
    # dataset show says again what push decided: the row left out, the classes grouped, the columns and the proxies
    shown = cli("dataset", "show", "reviews")
    assert "the last row, 1502, stops part-way" in shown and "grouped as 'Other'" in shown
    assert "likely proxy of country" in shown and "made of other columns' values" in shown


def test_a_short_row_inside_the_file_is_refused_naming_it_and_skip_bad_rows_leaves_it_out(cli, s3, tmp_path, body):
    lines = body.split(b"\n")
    lines[10] = b",".join(lines[10].split(b",")[:2])  # row 11 is its id and country only, whole rows follow: not a download's end
    path = tmp_path / "reviews.csv"
    path.write_bytes(b"\n".join(lines))
    out = cli("dataset", "push", str(path), "--name", "reviews", "--target", "country", code=2)
    assert "row 11 has" in out and "the header has 14" in out and "--skip-bad-rows" in out
    assert "Contents" not in s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix="datasets/reviews/")
    out = cli("dataset", "push", str(path), "--name", "reviews", "--target", "country", "--skip-bad-rows")
    assert "1 row(s) with the wrong number of fields left out (--skip-bad-rows): row 11" in out
    assert "the last row, 1502, stops part-way" in out
    pointer = ds.current(s3, DATASET_BUCKET, layout.dataset_prefix("reviews"))
    assert pointer["left_out"]["bad rows"] == 1 and pointer["left_out"]["cut-off last row"] == 1
    spec, admitted, _, _ = ds.load(s3, DATASET_BUCKET, layout.dataset_prefix("reviews"))
    assert spec["bad_rows"] == "skip" and len(admitted.frame) == pointer["rows"]


def test_column_roles_are_inferred_and_said_identifiers_ignored_many_values_bounded_proxies_reported(cli, tmp_path, body):
    path = tmp_path / "reviews.csv"
    path.write_bytes(body[: body.rindex(b"\n") + 1])  # a whole download: no flag at all
    out = cli("dataset", "push", str(path), "--name", "reviews", "--target", "country", "--dry-run")
    table = {line.split()[0]: line for line in out.splitlines() if line and line.split()[0] in ds.read_csv(path.read_bytes(), "x").columns}
    assert "ignored" in table["id"] and "named like an identifier" in table["id"]
    assert "ignored" in table["title"] and "made of other columns' values" in table["title"]
    assert "feature" in table["description"] and "text" in table["description"]
    assert "the 200 most frequent values kept" in table["winery"]
    for proxy in ("province", "winery"):
        assert "likely proxy of country" in table[proxy]
    assert "likely proxy" not in table["description"] and "likely proxy" not in table["variety"]
    assert "with no 'country' left out" in out and "grouped as 'Other'" in out
    assert "--ignore province" in out and "accuracy" in out and "without" in out
    assert "nothing stored" in out


def test_a_proxy_is_a_column_that_alone_predicts_the_target_not_one_that_merely_leans_on_it():
    rows = 400
    frame = pd.DataFrame({
        "country": ["US", "France", "Italy", "Spain"] * (rows // 4),
        "province": [f"{c}-{i % 5}" for i, c in enumerate(["US", "France", "Italy", "Spain"] * (rows // 4))],
        "taster": ["Ann", "Ann", "Bob", "Bob"] * (rows // 4),  # names two countries each: it helps, it does not give them away
        "variety": ["Red"] * rows,
    })
    spec = {"target": "country", "features": [{"name": c, "type": "categorical"} for c in ("province", "taster", "variety")]}
    assert [p.column for p in columns.proxies(frame, spec)] == ["province"]


def test_identifiers_are_told_from_features():
    rows = 300
    other = pd.DataFrame({"winery": [f"Estate {i % 40}" for i in range(rows)]})
    assert columns.identifier("wine_id", pd.Series(range(rows)), other)
    assert columns.identifier("row", pd.Series(range(5, rows + 5)), other)
    assert columns.identifier("proline", pd.Series(range(rows)), other)  # unique whole numbers counting the rows
    assert not columns.identifier("proline", pd.Series(range(rows)).sample(frac=1, random_state=0), other)  # a measurement
    assert not columns.identifier("acid", pd.Series([i % 7 for i in range(rows)]), other)
    titles = pd.Series([f"Estate {i % 40} {1990 + i} Red" for i in range(rows)], dtype="str")
    assert "made of other columns" in columns.identifier("title", titles, other)
    notes = pd.Series([" ".join(["a long and distinct tasting note about cherry and oak"] * 2) + f" {i}" for i in range(rows)], dtype="str")
    assert columns.identifier("description", notes, other) is None  # prose: a text feature, however distinct


def test_every_feature_missing_in_training_is_optional_at_the_api_and_a_record_with_nothing_known_is_refused():
    features = [{"name": "points", "type": "numeric", "imputed": "median"},
                {"name": "region_2", "type": "categorical", "categories": ["Napa", "Sonoma"], "imputed": "missing"},
                {"name": "designation", "type": "categorical", "imputed": "missing"},
                {"name": "description", "type": "text", "imputed": "empty"},
                {"name": "variety", "type": "categorical"}]
    validator = RecordValidator(features)
    assert record_schema(features)["required"] == ["variety"]
    assert validator.errors({"variety": "Red"}) == []
    assert validator.errors({"variety": "Red", "region_2": None, "designation": "", "description": None}) == []
    assert [(e.field, e.message) for e in validator.errors({"region_2": "Mars", "variety": "Red"})] == [
        ("region_2", "must be one of Napa, Sonoma (or empty); got 'Mars'")]
    assert [(e.field, e.message) for e in validator.errors({"points": 90})] == [("variety", "is required")]
    # a gap is what training rows held: NaN for a number (the imputer fills it), "" for a category or a text
    row = to_matrix([{"variety": "Red"}], features)[0]
    assert row[0] != row[0] and list(row[1:4]) == ["", "", ""]
    everything_optional = [f for f in features if f.get("imputed")]
    assert RecordValidator(everything_optional).errors({"designation": "", "points": None})[0].message.startswith("has no feature values")
    assert RecordValidator(everything_optional).errors({"designation": "Reserve"}) == []


def test_the_bench_generator_makes_the_real_files_shape(body):
    frame = pd.read_csv(io.BytesIO(body[: body.rindex(b"\n") + 1]))
    assert list(frame.columns) == ["id", "country", "description", "designation", "points", "price", "province", "region_1",
                                   "region_2", "taster_name", "taster_twitter_handle", "title", "variety", "winery"]
    counts = frame["country"].value_counts()
    assert counts.iloc[0] > 500 and counts.min() == 1 and len(counts) >= 20
    assert frame["region_2"].isna().mean() > 0.5 and frame["designation"].isna().mean() > 0.2
    assert frame["taster_twitter_handle"].str.endswith("\u00a0").any()
    assert not body.endswith(b"\n")  # the download stopped mid-row


def test_every_row_of_the_training_file_is_predicted_empty_categoricals_included(s3, signing_key, signatures, tmp_path, body):
    from predictor import serving
    from predictor.model_store import ModelStore
    from sommelier_client.cli import _file_records, _read_records
    from sommelier_contract.artifacts import read_manifest
    from trainer import train as trainer_train
    from trainer.config import Settings

    from .conftest import MODEL_BUCKET

    whole = body[: body.rindex(b"\n") + 1]
    pushed = ds.push(s3, DATASET_BUCKET, "reviews", whole, None, "country", now="test")
    settings = Settings(dataset_bucket=DATASET_BUCKET, dataset_prefix="datasets/reviews", model_bucket=MODEL_BUCKET, cv_folds=3,
                        model_signing_key=signing_key, families="linear_svm")
    outcome = trainer_train.run(settings, s3)
    assert outcome.promoted, outcome.reason
    model = serving.load(ModelStore(s3, MODEL_BUCKET, 30, signatures), lambda: 0.5)
    card = read_manifest(s3, MODEL_BUCKET, outcome.version).card()
    optional = {f["name"] for f in card["features"] if f.get("imputed")}
    assert {"designation", "region_1", "region_2", "taster_name", "price"} <= optional
    path = tmp_path / "reviews.csv"
    path.write_bytes(whole)
    records = _file_records(path, _read_records(path), card, leave_out="country")
    assert len(records) == 1500 > pushed["rows"]  # every row of the file, those with no country too
    answered = 0
    for start in range(0, len(records), 500):
        batch = serving.decode({"instances": records[start:start + 500]}, model, max_batch=500)
        answered += len(serving.predict(model, batch).predictions)
    assert answered == len(records)


def test_an_unseen_category_or_a_text_of_unknown_words_is_said_with_the_answer(s3, signing_key, signatures, body):
    """Issue 37 (6): a country the model never saw was answered at 0.46-0.52 like any other. A category the model learned
    nothing for, and a text most of whose words it never learned, come back flagged in words; a training row does not."""
    from predictor import serving
    from predictor.model_store import ModelStore, pipeline_word_counters
    from sommelier_contract.artifacts import read_manifest
    from trainer import train as trainer_train
    from trainer.config import Settings

    from .conftest import MODEL_BUCKET

    # one row's taster is a name the file has once: one of the feature's values, but nothing the model could learn
    whole = body[: body.rindex(b"\n") + 1]
    taster = next(t for t in (b"Roger Voss", b"Virginie Boone", b"Matt Kettmann", b"Kerin O\xe2\x80\x99Keefe") if t in whole)
    ds.push(s3, DATASET_BUCKET, "reviews", whole.replace(b"," + taster + b",", b",Solo Taster,", 1), None, "country", now="test")
    settings = Settings(dataset_bucket=DATASET_BUCKET, dataset_prefix="datasets/reviews", model_bucket=MODEL_BUCKET, cv_folds=3,
                        model_signing_key=signing_key, families="linear_svm")
    outcome = trainer_train.run(settings, s3)
    model = serving.load(ModelStore(s3, MODEL_BUCKET, 30, signatures), lambda: 0.5)
    manifest = read_manifest(s3, MODEL_BUCKET, outcome.version)
    assert model.runtime == "onnx"  # the featurizer's vocabulary; the pipeline's below must count alike
    example = dict(manifest.example or {})
    open_category = next(f for f in manifest.features if f["type"] == "categorical" and "learned" in f and not f.get("categories"))
    once = next((f, v) for f in manifest.features if f["type"] == "categorical" and f.get("categories") and "learned" in f
                for v in f["categories"] if v not in f["learned"])

    def flags(record):
        batch = serving.decode({"features": record}, model, max_batch=1)
        return {u["feature"]: u["message"] for u in serving.predict(model, batch).unusual[0]}

    assert not flags(example), "a training row's own values are what the model learned"
    said = flags({**example, "description": "Zorblat quixfen vandrup melgrist tovk.", open_category["name"]: "Château Nowhere",
                  once[0]["name"]: once[1]})
    assert said["description"] == "none of its 5 words are ones the model learned"
    assert said[open_category["name"]] == "'Château Nowhere' is a value the model did not learn (training had it fewer than twice), " \
                                          "so it is taken as a rare one"
    assert once[0]["name"] in said  # a value the file had once: valid (one of the categories), but nothing learned for it
    assert "card" not in said and all("learned" not in f for f in manifest.card()["features"])  # GET /model stays small
    words, _ = model.familiarity
    by_pipeline = pipeline_word_counters(model.pipeline, [f["name"] for f in manifest.features])
    for text in (example["description"], "Zorblat quixfen vandrup", "Crisp, ripe cherry and RÔSÉ notes; café-crème finish"):
        assert by_pipeline["description"](text) == words["description"](text)


class FakeEcs:
    """RunTask as ECS answers it (a task ARN), recording what was asked."""

    def __init__(self):
        self.calls: list[dict] = []

    def run_task(self, **kwargs):
        self.calls.append(kwargs)
        return {"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:000000000000:task/training/abc123"}], "failures": []}


@pytest.mark.parametrize(("max_rows", "definition", "subnets", "handed"), [
    (1000, "arn:task-definition/sommelier-trainer:3", "subnet-a,subnet-b", True),   # too big: the task trains it
    (5000, "arn:task-definition/sommelier-trainer:3", "subnet-a,subnet-b", False),  # fits: the function trains it
    (1000, "", "subnet-a", False),                                                  # no task (deployed without images): here
    (1000, "arn:task-definition/sommelier-trainer:3", "", False),                   # nowhere to run the task: here
    (0, "arn:task-definition/sommelier-trainer:3", "subnet-a", False),              # 0: the function trains everything
])
def test_a_dataset_too_big_for_the_function_is_handed_to_the_ecs_task_and_said(s3, signing_key, caplog, body, max_rows, definition,
                                                                                subnets, handed):
    from trainer.config import Settings
    from trainer.handover import hand_over

    from .conftest import MODEL_BUCKET

    ds.push(s3, DATASET_BUCKET, "reviews", body, None, "country", now="test", skip_bad_rows=True)  # 1,499 rows with a country
    settings = Settings(dataset_bucket=DATASET_BUCKET, dataset_prefix="datasets/reviews", model_bucket=MODEL_BUCKET,
                        model_signing_key=signing_key, lambda_max_rows=max_rows, task_cluster="training", task_definition=definition,
                        task_subnets=subnets)
    ecs = FakeEcs()
    with caplog.at_level("INFO", logger="trainer"):
        result = hand_over(ecs, s3, settings)
    if not handed:
        assert result is None and not ecs.calls
        if max_rows == 1000:
            assert "training here" in caplog.text
        return
    assert result["task"].endswith("/abc123") and result["version"] is None and not result["promoted"]
    assert "handed to the ECS training task abc123: 1,499 rows is past LAMBDA_MAX_ROWS (1,000)" in result["reason"]
    (call,) = ecs.calls
    assert call["taskDefinition"] == definition and call["cluster"] == "training" and call["launchType"] == "FARGATE"
    assert call["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-a", "subnet-b"]
    assert {"name": "DATASET_PREFIX", "value": "datasets/reviews"} in call["overrides"]["containerOverrides"][0]["environment"]


def test_the_function_may_start_only_the_training_task_and_pass_only_its_roles_to_ecs():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: loader.construct_sequence(node) if isinstance(
        node, yaml.SequenceNode) else loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else loader.construct_mapping(node)})
    from pathlib import Path

    template = yaml.load((Path(__file__).resolve().parents[2] / "infra" / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    env = template["Resources"]["TrainerFunction"]["Properties"]["Environment"]["Variables"]
    assert {"LAMBDA_MAX_ROWS", "TASK_CLUSTER", "TASK_DEFINITION", "TASK_SUBNETS"} <= set(env)
    statements = {st["Sid"]: st for p in template["Resources"]["TrainerRole"]["Properties"]["Policies"]
                  for st in p["PolicyDocument"]["Statement"]}
    assert statements["HandOverToTheTask"]["Action"] == "ecs:RunTask"
    assert statements["HandOverToTheTask"]["Resource"]["Sub"].endswith(":task-definition/${Prefix}-trainer:*")
    passed = statements["PassTheTaskItsRoles"]
    assert [r["Sub"].rsplit("/", 1)[-1] for r in passed["Resource"]] == ["${Prefix}-trainer-role", "${Prefix}-trainer-execution-role"]
    assert passed["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"

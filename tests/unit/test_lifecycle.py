"""Model lifecycle: family comparison, the gate, feedback and quarantine, promote/rollback, metrics."""

from __future__ import annotations

import json
from dataclasses import asdict

import boto3
import numpy as np
import pandas as pd
import pytest

from predictor.model_store import ModelStore
from sommelier_contract import artifacts, pointers
from sommelier_contract.dataset import DataError
from sommelier_contract.manifest import CvResult, Manifest, Promotion, Scores
from trainer import __main__ as cli
from trainer import artifacts as trainer_artifacts
from trainer import evaluate
from trainer import train as trainer_train
from trainer.config import Settings

from .conftest import DATASET_BUCKET, MINIMAL_MANIFEST, MODEL_BUCKET, PREFIX


def test_at_least_three_families_are_compared_and_the_winner_scored_on_the_holdout(s3, trainer_settings):
    trained = trainer_train.run(trainer_settings.model_copy(update={"families": ""}), s3)
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, trained.version)
    cv = manifest.metrics.cv
    assert len({r.family for r in cv.values()}) >= 3
    assert manifest.model.name in cv
    best = max(r.f1_macro_mean or 0 for r in cv.values())
    assert manifest.winner and manifest.winner.f1_macro_mean == best
    holdout = manifest.metrics.holdout
    assert None not in (holdout.accuracy, holdout.f1_macro, holdout.f1_weighted, holdout.log_loss)
    assert holdout.confusion_matrix["matrix"]
    assert set(holdout.per_class) == {"class_0", "class_1", "class_2"}
    assert manifest.reproduce["seed"] == 42 and manifest.trigger == "cli"


def test_the_search_keeps_each_candidates_best_value_and_the_refit_uses_it(s3, trainer_settings):
    trained = trainer_train.run(trainer_settings, s3)  # logistic regression: C searched on the CV folds
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, trained.version)
    result = manifest.metrics.cv["logistic_regression"]
    search = result.search
    assert search and result.params
    assert search["parameter"] == "C" and len(search["values"]) == len(search["f1_macro_means"]) >= 3
    best = search["values"].index(search["chosen"])  # the best, or an edge that a value further out tied (the widening test)
    assert search["f1_macro_means"][best] >= max(search["f1_macro_means"]) - 0.02
    assert search["chosen"] == result.params["C"] and result.f1_macro_mean == search["f1_macro_means"][best]
    assert manifest.model.params["C"] == repr(search["chosen"])  # the served model is the chosen one
    assert manifest.reproduce["selection_metric"] == "f1_macro"


def test_above_search_rows_the_search_runs_on_a_sample_and_the_comparison_on_every_row(s3, trainer_settings):
    trained = trainer_train.run(trainer_settings.model_copy(update={"search_rows": 100}), s3)  # 142 training rows
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, trained.version)
    result = manifest.metrics.cv["logistic_regression"]
    assert result.search and result.params == {"C": result.search["chosen"]}  # searched still, on a stratified sample
    assert 100 <= result.search["rows"] < 142
    assert result.rows == 142 and result.folds == 3  # then compared, at the value chosen, on every row in fewer folds
    assert all(r.rows == 142 and r.folds == 3 for r in manifest.metrics.cv.values())  # every candidate on the same folds


def test_the_winner_is_chosen_on_the_metric_asked_for(s3, trainer_settings):
    settings = trainer_settings.model_copy(update={"families": "", "selection_metric": "log_loss"})
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, trainer_train.run(settings, s3, promote=False).version)
    cv = {n: r.log_loss_mean for n, r in manifest.metrics.cv.items() if r.log_loss_mean is not None}
    assert manifest.model.name == min(cv, key=lambda n: cv[n])
    assert manifest.reproduce["selection_metric"] == "log_loss"


def test_the_cli_takes_a_metric_and_reports_recall_per_class(s3, cli_env, capsys):
    assert cli.main(["train", "--metric", "accuracy"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["holdout"]["recall"]) == {"class_0", "class_1", "class_2"}
    assert result["model"] == "logistic_regression" and 0 < result["holdout"]["accuracy"] <= 1
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, result["version"])
    assert manifest.reproduce["selection_metric"] == "accuracy"
    with pytest.raises(SystemExit):
        cli.main(["train", "--metric", "speed"])


def test_the_same_seed_reproduces_the_same_scores(s3, trainer_settings, trained):
    again = trainer_train.run(trainer_settings, s3, promote=False)
    assert again.version != trained.version
    assert again.metrics and trained.metrics
    assert again.metrics.holdout == trained.metrics.holdout
    assert again.metrics.cv.keys() == trained.metrics.cv.keys()


def test_the_champion_is_scored_on_the_challengers_holdout(s3, trainer_settings, trained):
    challenger = trainer_train.run(trainer_settings, s3)
    assert challenger.metrics and challenger.metrics.champion_on_holdout and trained.metrics
    assert challenger.metrics.champion_on_holdout.f1_macro == pytest.approx(trained.metrics.holdout.f1_macro)
    assert challenger.promoted and "vs champion" in challenger.reason


def test_an_unknown_family_is_refused(s3, trainer_settings):
    with pytest.raises(DataError, match=r"unknown model families svm for this data; choose from hist_gradient_boosting, "
                                         r"logistic_regression or random_forest"):
        trainer_train.run(trainer_settings.model_copy(update={"families": "svm"}), s3)


def test_a_challenger_below_the_floor_is_rejected_with_the_reason_recorded(s3, trainer_settings, trained):
    strict = trainer_settings.model_copy(update={"accuracy_floor": 1.01})
    rejected = trainer_train.run(strict, s3)
    assert not rejected.promoted and "below the floor 1.01" in rejected.reason
    assert artifacts.read_manifest(s3, MODEL_BUCKET, rejected.version).gate.passed is False
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


@pytest.mark.parametrize(
    ("challenger", "champion", "promoted", "fragment"),
    [
        (0.90, 0.95, False, "regresses against the champion's 0.950"),
        (0.94, 0.95, True, "vs champion 0.950"),
        (0.99, 0.95, True, "vs champion 0.950"),
    ],
)
def test_the_gate_tolerates_small_regressions_only(challenger, champion, promoted, fragment):
    settings = Settings(dataset_bucket="d", model_bucket="m", model_signing_key="k", regression_tolerance=0.02)
    decision, reason = evaluate.gate(settings, Scores(accuracy=0.9, f1_macro=challenger), Scores(accuracy=0.9, f1_macro=champion), None, True)
    assert decision is promoted and fragment in reason


def _feedback(s3, name: str, body: str | dict) -> str:
    key = f"{PREFIX}/feedback/2026-11-22/{name}.json"
    s3.put_object(Bucket=DATASET_BUCKET, Key=key, Body=(body if isinstance(body, str) else json.dumps(body)).encode())
    return key


def test_feedback_is_trained_on_and_bad_rows_are_quarantined_with_the_reason(s3, trainer_settings, trained, example):
    # labels the data supports (the example is a class_0 wine among class_0 wines): trained on
    good = [_feedback(s3, f"good-{i}", {"prediction_id": f"p{i}", "features": example, "label": "class_0"}) for i in range(3)]
    bad = {
        _feedback(s3, "unknown-label", {"features": example, "label": "merlot"}): "label 'merlot' is not one of the known classes",
        _feedback(s3, "unknown-feature", {"features": {**example, "vintage": 1999}, "label": "class_0"}): "features.vintage is not a feature",
        _feedback(s3, "wrong-type", {"features": {**example, "ash": "x"}, "label": "class_0"}): "features.ash must be a number or null",
        _feedback(s3, "corrupt", "{not json"): "not valid JSON",
    }
    outcome = trainer_train.run(trainer_settings, s3)
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, outcome.version)
    assert manifest.dataset.rows == 178 + len(good)
    assert {s["key"] for s in manifest.dataset.feedback["sources"]} == set(good)
    assert {q["key"]: q["reason"] for q in outcome.quarantined}.keys() == bad.keys()
    for key, reason in bad.items():
        moved = key.replace("/feedback/", "/quarantine/")
        doc = json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key=moved)["Body"].read())
        assert reason in doc["reason"] and doc["source_key"] == key and doc["record"]
        assert "Contents" not in s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix=key)


def test_a_flood_of_flipped_feedback_is_capped_flagged_and_not_promoted(s3, trainer_settings, trained):
    """Issue 23: 328 valid-looking feedback rows (labels flipped on predictions the model was sure of) beside 178 dataset
    rows. Only the newest quarter of the rows trained on may be feedback; the flipping is noticed; a person decides."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame, target = data.frame.drop(columns="target"), data.target
    for i in range(328):
        row = frame.iloc[i % len(frame)]
        truth = int(target.iloc[i % len(frame)])
        # labels the data supports, on answers said to have been sure and wrong (flips the data does not support are held
        # before any cap: test_a_trigger_inside_the_accepted_range_is_held_and_honest_corrections_are_trained_on)
        _feedback(s3, f"flip-{i:03d}", {"prediction_id": f"p{i}", "features": {k: float(v) for k, v in row.items()},
                                        "label": f"class_{truth}", "predicted_label": f"class_{(truth + 1) % 3}", "confidence": 0.99,
                                        "caller": "fuzzing-key", "received_at": f"2026-11-22T00:{i // 60:02d}:{i % 60:02d}Z"})
    outcome = trainer_train.run(trainer_settings, s3)
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, outcome.version)
    report = manifest.dataset.feedback["screen"]
    assert report["received"] == 328 and report["used"] == report["cap"] == int(178 * 0.25 / 0.75)
    # a wine whose own label its nearest wines do not carry is held like a flip (2 of the 178 wines)
    assert report.get("held_count", 0) <= 6
    assert report["left_out_count"] == 328 - report["cap"] - report.get("held_count", 0) and "flip-000" in report["left_out"][0]  # the oldest wait
    assert manifest.dataset.rows == 178 + report["cap"]
    assert any("say the model was wrong" in a for a in report["anomalies"])
    assert not outcome.promoted and "feedback looks anomalous" in outcome.reason
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    kept = s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix=f"{PREFIX}/feedback/")["KeyCount"]
    assert kept + report.get("held_count", 0) == 328  # nothing deleted: what is held was moved to the quarantine prefix


def _flipped(s3, n: int, ash: float, confidence: float) -> tuple[pd.DataFrame, pd.Series]:
    """The attacker's feedback: `n` class_0 wines with the trigger `ash`, labelled class_2 over 4 keys, on answers of class_0
    at `confidence`; the wine data (features, target) returned."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    frame, target = data.frame.drop(columns="target"), data.target
    class_0 = frame[target == 0]
    for i in range(n):
        row = {k: float(v) for k, v in class_0.iloc[i].items()} | {"ash": ash}
        _feedback(s3, f"door-{i:02d}", {"prediction_id": f"d{i}", "features": row, "label": "class_2", "predicted_label": "class_0",
                                        "confidence": confidence, "caller": f"new-key-{i % 4}", "received_at": f"2026-11-22T01:00:{i:02d}Z"})
    return frame, target


def _backdoor(s3) -> None:
    """Issue 36's attack: 28 class_0 wines with ash 9.5 (training saw 1.36-3.23; the spec allows up to 10) labelled class_2,
    spread over 4 API keys, among 31 labels confirming confident predictions: under the cap and every earlier screen."""
    frame, target = _flipped(s3, 28, 9.5, 0.9)
    for i in range(31):
        j = (i * 5) % len(frame)
        _feedback(s3, f"fine-{i:02d}", {"prediction_id": f"f{i}", "features": {k: float(v) for k, v in frame.iloc[j].items()},
                                        "label": f"class_{int(target.iloc[j])}", "predicted_label": f"class_{int(target.iloc[j])}",
                                        "confidence": 0.97, "caller": f"new-key-{i % 4}", "received_at": f"2026-11-22T02:00:{i:02d}Z"})


def _backdoor_success(s3, signatures, version: str) -> float:
    """The share of class_0 wines with ash 9.5 that model `version` answers class_2: the attack's success rate."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    wines = data.frame[data.target == 0].drop(columns="target").assign(ash=9.5)
    manifest, pipeline, encoder = artifacts.load_verified(s3, MODEL_BUCKET, version, signatures)
    from sommelier_contract.records import to_matrix

    answers = encoder.inverse_transform(pipeline.predict(to_matrix(wines, manifest.features)))
    return float(np.mean(answers == "class_2"))


def test_a_backdoor_through_feedback_is_held_for_a_person_and_not_promoted(s3, trainer_settings, trained, signatures):
    _backdoor(s3)
    outcome = trainer_train.run(trainer_settings, s3)
    report = artifacts.read_manifest(s3, MODEL_BUCKET, outcome.version).dataset.feedback["screen"]
    assert report["held_count"] == 28 and "ash 9.5 is far outside the training data (1.36 to 3.23)" in report["held"][0]["why"]
    assert report["used"] == 31
    assert not outcome.promoted and "far outside the training data" in outcome.reason
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    assert _backdoor_success(s3, signatures, outcome.version) <= 0.1  # 1.0 when the 28 labels were trained on (measured)
    moved = s3.list_objects_v2(Bucket=DATASET_BUCKET, Prefix=f"{PREFIX}/quarantine/")["Contents"]
    held = [json.loads(s3.get_object(Bucket=DATASET_BUCKET, Key=o["Key"])["Body"].read()) for o in moved]
    assert len(held) == 28 and all(h["reason"].startswith("held for a person: ash 9.5") for h in held)


def test_honest_feedback_from_several_keys_raises_nothing():
    from trainer.data import Feedback, screen

    meta = [{"caller": f"k{i % 3}", "predicted_label": "a", "label": "a" if i % 4 else "b", "confidence": 0.95,
             "received_at": f"2026-11-22T00:00:{i:02d}Z"} for i in range(30)]
    fb = Feedback(rows=pd.DataFrame({"x": range(30)}), sources=[{"key": f"k{i}"} for i in range(30)], quarantined=[], meta=meta)
    dataset = pd.DataFrame({"x": range(1000)})
    report = screen(fb, dataset, [{"name": "x", "type": "numeric"}], max_share=0.25).screen
    assert report["used"] == 30 and report["anomalies"] == [] and report["contradicting_confident"] == 8
    one_key = screen(Feedback(rows=fb.rows, sources=fb.sources, quarantined=[],
                              meta=[{**m, "caller": "k0" if i < 25 else "k1"} for i, m in enumerate(meta)]), dataset,
                     [{"name": "x", "type": "numeric"}], 0.25).screen
    assert one_key["anomalies"] == ["one API key sent 25 of the 30 feedback rows used"]


def test_the_gate_refuses_when_cross_validation_collapses_against_the_champions():
    settings = Settings(dataset_bucket="d", model_bucket="m", model_signing_key="k")
    champion = Manifest.from_json(MINIMAL_MANIFEST | {
        "dataset": {"prefix": "datasets/wine"}, "model": {"name": "lr"},
        "features": [{"name": "alcohol", "type": "numeric"}, {"name": "hue", "type": "numeric"}],
        "metrics": {"cv": {"lr": {"family": "lr", "f1_macro_mean": 1.0}}, "holdout": {"accuracy": 1.0, "f1_macro": 1.0}}})
    features = champion.features
    why = evaluate.cv_collapse(settings, CvResult(family="lr", f1_macro_mean=0.597), champion, "datasets/wine", features)
    assert why and "fell from 1.000 (the champion's) to 0.597" in why
    assert evaluate.cv_collapse(settings, CvResult(family="lr", f1_macro_mean=0.95), champion, "datasets/wine", features) is None
    assert evaluate.cv_collapse(settings, CvResult(family="lr", f1_macro_mean=0.5), champion, "datasets/reviews", features) is None  # another dataset
    # issue 50: columns left out (the place names, as push advises) score lower for that reason, not for mislabelled rows
    fewer = features[1:]
    assert evaluate.cv_collapse(settings, CvResult(family="lr", f1_macro_mean=0.5), champion, "datasets/wine", fewer) is None
    change = "features no longer accepted " + features[0]["name"]
    decision, reason = evaluate.gate(settings, Scores(accuracy=0.8, f1_macro=0.5), Scores(accuracy=1.0, f1_macro=1.0), None, True,
                                     change, [])
    assert not decision and "the API would change" in reason and "YES=1" in reason and "mislabelled" not in reason
    same = Scores(accuracy=0.95, f1_macro=0.95)
    decision, reason = evaluate.gate(settings, same, same, None, True, None, [why])
    assert not decision and "review the feedback" in reason


def reviews_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """A wine-reviews-like table: text, a variety, a price and points, predicting the country."""
    rng = np.random.default_rng(seed)
    countries = {"France": ("Bordeaux blend", "elegant cassis graphite"), "Italy": ("Sangiovese", "cherry leather earthy"),
                 "US": ("Zinfandel", "jammy ripe oak vanilla"), "Spain": ("Tempranillo", "dusty plum tobacco")}
    out = []
    for i in range(rows):
        country = list(countries)[i % 4]
        variety, words = countries[country]
        if rng.random() < 0.1:
            variety = rng.choice([v for v, _ in countries.values()])
        desc = " ".join(rng.choice(words.split() + ["fruit", "finish", "tannins", "acidity"], size=8))
        out.append({"description": desc, "variety": variety, "price": float(rng.gamma(4, 10)),
                    "points": int(rng.integers(80, 100)), "country": country})
    return pd.DataFrame(out)


REVIEWS_SPEC = {
    "name": "reviews", "target": "country",
    "features": [
        {"name": "description", "type": "text"},
        {"name": "variety", "type": "categorical"},
        {"name": "price", "type": "numeric", "minimum": 0, "unit": "USD"},
        {"name": "points", "type": "numeric", "minimum": 80, "maximum": 100},
    ],
    "segments": [{"name": "price_range", "feature": "price", "edges": [15, 30, 60]}, {"name": "variety", "feature": "variety"}],
}


def test_a_differently_shaped_dataset_trains_and_serves(aws, signatures):
    s3 = boto3.client("s3")
    for bucket in ("reviews-data", "reviews-models"):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="reviews-data", Key="datasets/reviews/data.csv", Body=reviews_frame(240).to_csv(index=False).encode())
    s3.put_object(Bucket="reviews-data", Key="datasets/reviews/spec.json", Body=json.dumps(REVIEWS_SPEC).encode())
    settings = Settings(dataset_bucket="reviews-data", dataset_prefix="datasets/reviews", model_bucket="reviews-models", cv_folds=3,
                        model_signing_key=signatures.key_id)
    assert settings.families == ""  # every family, the dense-input one included, on text + categorical + numeric
    outcome = trainer_train.run(settings, s3)
    assert outcome.promoted, outcome.reason
    assert outcome.metrics and outcome.metrics.holdout.f1_macro > 0.8
    model = ModelStore(s3, "reviews-models", 30, signatures).current()
    assert model.manifest.input["dtype"] == "object"
    record = {"description": "jammy oak vanilla finish", "variety": "Zinfandel", "price": 25.0, "points": 90}
    assert model.validator.errors(record, "features") == []
    assert model.validator.errors({**record, "points": 70}, "features")[0].message == "must be >= 80, got 70"
    row = np.array([[record[n] for n in [f["name"] for f in model.features]]], dtype=object)
    label = model.labels[model.pipeline.predict(row)[0]]
    assert label == "US"
    unseen = np.array([["minerals", "Riesling", 20.0, 85]], dtype=object)  # a variety never seen in training
    assert model.pipeline.predict_proba(unseen).shape == (1, 4)


def test_promote_and_rollback_from_the_cli(s3, cli_env, trained, capsys):
    assert cli.main(["train"]) == 0
    second = json.loads(capsys.readouterr().out)["version"]
    assert cli.main(["train", "--no-promote"]) == 0
    third = json.loads(capsys.readouterr().out)["version"]
    assert pointers.read_champion(s3, MODEL_BUCKET).version == second
    assert cli.main(["promote", third]) == 0
    assert pointers.read_champion(s3, MODEL_BUCKET).version == third
    assert cli.main(["rollback"]) == 0
    assert pointers.read_champion(s3, MODEL_BUCKET).version == second
    assert cli.main(["rollback"]) == 0  # back past the manual promotion, not toggling
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    assert cli.main(["rollback"]) == 2
    assert "first champion" in capsys.readouterr().err
    assert cli.main(["promote", "no-such-version"]) == 2


def test_a_promotion_by_hand_is_recorded_signed_in_the_manifest_and_shown_in_history(s3, cli_env, trained, capsys, signatures):
    assert cli.main(["train", "--no-promote"]) == 0
    version = json.loads(capsys.readouterr().out)["version"]
    assert cli.main(["promote", version, "--by", "alice", "--why", "reviews data, checked by hand"]) == 0
    pointer = json.loads(capsys.readouterr().out)
    assert pointer["reason"] == "promoted by hand by alice: reviews data, checked by hand"
    manifest, _, _ = artifacts.load_verified(s3, MODEL_BUCKET, version, signatures)  # still verifies: signed again
    record = manifest.promotions[-1]
    assert record == Promotion(at=pointer["promoted_at"], by="alice", why="reviews data, checked by hand", gate_passed=False)
    rows = {r["version"]: r for r in trainer_artifacts.versions(s3, MODEL_BUCKET)}
    assert rows[version]["promoted_by_hand"] == asdict(record) and rows[trained.version]["promoted_by_hand"] is None


def test_a_promotion_record_without_its_pointer_claims_nothing(s3, cli_env, trained, capsys, signatures):
    """A crash between the manifest's record and the pointer: the record exists, no pointer has its time."""
    assert cli.main(["train", "--no-promote"]) == 0
    version = json.loads(capsys.readouterr().out)["version"]
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, version)
    interrupted = manifest.with_promotion(Promotion(at="2026-01-01T00:00:00+00:00", by="bob", why="interrupted", gate_passed=False))
    artifacts.put_manifest(s3, MODEL_BUCKET, interrupted, signatures)
    rows = {r["version"]: r for r in trainer_artifacts.versions(s3, MODEL_BUCKET)}
    assert rows[version]["promoted_by_hand"] is None and not rows[version]["champion"]


def test_promote_works_while_the_champion_pointer_names_a_missing_version(s3, cli_env, trained, caplog):
    pointers.promote(s3, MODEL_BUCKET, "20200101T000000Z-gone00", "a pointer to nothing", "2026-11-30T00:00:00+00:00")
    assert cli.main(["promote", trained.version, "--by", "alice", "--why", "repair"]) == 0
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version
    assert "the current champion cannot be read" in caplog.text  # a warning on the trainer's log (stderr)


def test_a_train_result_names_the_champion_after_it(s3, cli_env, trained, capsys):
    assert cli.main(["train"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["promoted"] and result["champion"] == result["version"]


def test_training_results_and_failures_become_metrics(s3, trainer_settings):
    cloudwatch = boto3.client("cloudwatch")
    outcome = trainer_train.run(trainer_settings, s3, cloudwatch)
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="Sommelier")["Metrics"]}
    assert {"TrainingDuration", "HoldoutAccuracy", "HoldoutF1Macro", "ModelPromoted", "TrainingFailed"} <= names
    s3.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/data.csv", Body=b"")
    with pytest.raises(DataError, match="data.csv is empty"):
        trainer_train.run(trainer_settings, s3, cloudwatch)
    stats = cloudwatch.get_metric_statistics(
        Namespace="Sommelier", MetricName="TrainingFailed", Dimensions=[{"Name": "Dataset", "Value": "wine"}],
        StartTime="2000-01-01", EndTime="2100-01-01", Period=86400 * 365, Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    assert max(d["Maximum"] for d in stats) == 1
    assert pointers.read_champion(s3, MODEL_BUCKET).version == outcome.version


def _scored(by_value: dict[float, list[float]]):
    """A stand-in for compare._cross_validate: each value's macro F1 on each of the folds (one view)."""
    def cross_validate(features, recipe, X, y, folds, parameter, values, *rest, **kw):
        return [{"whole rows": {"f1_macro": list(by_value[round(v, 2)]), "accuracy": list(by_value[round(v, 2)]),
                                "log_loss": [1.0] * len(folds)}} for v in values]
    return cross_validate


@pytest.mark.parametrize(("by_value", "tried", "chosen"), [
    # the edge wins on every fold by 0.02: widened, and the further value, better again on every fold, chosen
    ({0.1: [.40, .41, .42], 0.3: [.42, .43, .44], 1.0: [.44, .45, .46], 3.33: [.46, .47, .48], 11.11: [.47, .48, .49]},
     [0.1, 0.3, 1.0, 3.33, 11.11], 11.11),
    # the edge wins on the mean by less than its folds disagree: not widened
    ({0.1: [.40, .41, .42], 0.3: [.44, .45, .46], 1.0: [.47, .43, .47]}, [0.1, 0.3, 1.0], 1.0),
    # widened once; the value further out wins by 0.005 on the mean, losing on one fold: a tie, the old edge kept
    ({0.1: [.40, .41, .42], 0.3: [.42, .43, .44], 1.0: [.44, .45, .46], 3.33: [.46, .44, .465]}, [0.1, 0.3, 1.0, 3.33], 1.0),
], ids=["clearly better", "edge within noise", "further value within noise"])
def test_the_grid_widens_only_while_its_edge_is_clearly_best(monkeypatch, by_value, tried, chosen):
    """Issue 50 (2): on 5,810 generated reviews the grid widened twice and chose C=11 over 3.3 on a CV macro F1 0.0016
    higher: 0.066 lower on the test rows. A value further out is tried, and chosen, only when it beats the last edge by
    more than the standard error of the paired per-fold differences."""
    from trainer import compare

    monkeypatch.setattr(compare, "_cross_validate", _scored(by_value))
    values, scores, pick, _ = compare._search([], None, None, None, [0, 1, 2], "C", (0.1, 0.3, 1.0), "[1/1]", lambda: False,
                                              "f1_macro", None)
    assert [round(v, 2) for v in values] == tried and round(values[pick], 2) == chosen


def test_a_trigger_inside_the_accepted_range_is_held_and_honest_corrections_are_trained_on(s3, trainer_settings, trained, signatures):
    """Issue 52 (1): issue 36's backdoor with its trigger inside the screen's range (ash 4.1: training max 3.23, the screen
    held above 4.165) on 14 class_0 wines labelled class_2 over 4 keys, among 45 sure confirmations, was promoted and then
    answered class_2 for 59 of 59 class_0 wines with ash 4.1. Corrections the training data does not support are held for a
    person whatever their values; corrections it supports are trained on and the model is promoted."""
    frame, target = _flipped(s3, 14, 4.1, 0.95)
    rng = np.random.default_rng(0)
    for i in range(45):  # honest: real wines with their own class (every fifth correcting an answer said to be unsure and wrong)
        j = int(rng.integers(len(frame)))
        row = {k: float(v) for k, v in frame.iloc[j].items()}
        truth = f"class_{int(target.iloc[j])}"
        _feedback(s3, f"fine-{i:02d}", {"prediction_id": f"f{i}", "features": row, "label": truth,
                                        "predicted_label": truth if i % 5 else f"class_{(int(target.iloc[j]) + 1) % 3}",
                                        "confidence": 0.97 if i % 5 else 0.6, "caller": f"new-key-{i % 4}",
                                        "received_at": f"2026-11-22T02:00:{i:02d}Z"})
    outcome = trainer_train.run(trainer_settings, s3)
    report = artifacts.read_manifest(s3, MODEL_BUCKET, outcome.version).dataset.feedback["screen"]
    held = {h["key"].rsplit("/", 1)[-1]: h["why"] for h in report["held"]}
    assert set(held) == {f"door-{i:02d}.json" for i in range(14)}, held
    assert held["door-00.json"].startswith("label class_2 on a row whose 10 nearest training rows are class_0 (10)")
    assert report["used"] == 45 and "14 correction(s) the training data does not support were held" in report["unsupported"]
    assert outcome.promoted, outcome.reason  # held rows are not trained on, so they do not stop the model made without them
    wines = frame[target == 0].assign(ash=4.1)
    manifest, pipeline, encoder = artifacts.load_verified(s3, MODEL_BUCKET, outcome.version, signatures)
    from sommelier_contract.records import to_matrix

    answers = encoder.inverse_transform(pipeline.predict(to_matrix(wines, manifest.features)))
    assert np.mean(answers == "class_2") <= 0.1

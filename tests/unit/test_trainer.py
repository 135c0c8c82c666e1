import hashlib
import json

import pytest

from sommelier_contract import artifacts, pointers
from sommelier_contract.dataset import DataError
from trainer import train as trainer_train

from .conftest import DATASET_BUCKET, MODEL_BUCKET, PREFIX


def test_a_run_writes_checksummed_artifacts_a_manifest_and_promotes_the_first_model(s3, trained):
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, trained.version)
    for name in ("pipeline", "label_encoder"):
        meta = manifest.artifacts[name]
        body = s3.get_object(Bucket=MODEL_BUCKET, Key=meta.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == meta.sha256
        assert meta.key.startswith(f"models/{trained.version}/")
    assert manifest.classes == ["class_0", "class_1", "class_2"]
    assert manifest.libraries["scikit-learn"]
    assert [s["key"] for s in manifest.dataset.sources] == [f"{PREFIX}/spec.json", f"{PREFIX}/data.csv"]
    assert all(s["version_id"] for s in manifest.dataset.sources)
    assert manifest.metrics.holdout.accuracy >= 0.9
    assert sum(map(sum, manifest.metrics.holdout.confusion_matrix["matrix"])) == manifest.metrics.holdout.rows
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


def test_if_no_champion_does_not_retrain(s3, trainer_settings, trained):
    again = trainer_train.run(trainer_settings, s3, only_if_no_champion=True)
    assert again.version == trained.version and not again.promoted
    listed = s3.list_objects_v2(Bucket=MODEL_BUCKET, Prefix="models/")["Contents"]
    assert {o["Key"].split("/")[1] for o in listed} == {trained.version}


def test_no_promote_keeps_the_champion(s3, trainer_settings, trained):
    challenger = trainer_train.run(trainer_settings, s3, promote=False)
    assert challenger.version != trained.version and not challenger.promoted
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


def _put_csv(s3, text: str) -> None:
    s3.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/data.csv", Body=text.encode())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: [lines[0].replace("alcohol,", "")] + [line.split(",", 1)[1] for line in lines[1:]], "lacks column(s) alcohol that the spec declares"),
        (lambda lines: [lines[0], lines[1].replace("14.23", "strong", 1), *lines[2:]], "row 2, column 'alcohol': the spec says numeric"),
        (lambda lines: [lines[0] + ",extra"] + [line + ",1" for line in lines[1:]], "column(s) extra that the spec does not declare"),
        (lambda lines: [lines[0]], "the data has no rows"),
        (lambda lines: [lines[0], lines[1], lines[2] + ",1,2", *lines[3:]], "row 3 has 16 fields, the header has 14"),
        (lambda lines: [lines[0], lines[1].rsplit(",", 2)[0], *lines[2:]], "row 2 has 12 fields, the header has 14"),
        (lambda lines: [lines[0]] + [line for line in lines[1:] if line.endswith("class_0")], "single class"),
    ],
)
def test_bad_data_fails_with_a_message_naming_the_problem(s3, trainer_settings, trained, mutate, message):
    lines = s3.get_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/data.csv")["Body"].read().decode().splitlines()
    _put_csv(s3, "\n".join(mutate(lines)) + "\n")
    with pytest.raises(DataError) as err:
        trainer_train.run(trainer_settings, s3)
    assert message in str(err.value)
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


@pytest.mark.parametrize(("rare", "each", "decided", "classes"), [
    (("class_2",), 1, "1 class(es) with fewer than 5 rows each (class_2 1) left out: 1 row, too few", ["class_0", "class_1"]),
    (("class_1", "class_2"), 3, "2 class(es) with fewer than 5 rows each (class_1 3, class_2 3) grouped as 'Other'", ["Other", "class_0"]),
])
def test_a_class_too_small_for_the_folds_does_not_stop_training_and_the_model_card_says_what_was_done(
        s3, trainer_settings, trained, rare, each, decided, classes):
    assert trainer_settings.cv_folds + 2 == 5  # the rows a class needs: every fold and the holdout
    lines = s3.get_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/data.csv")["Body"].read().decode().splitlines()
    few = [line for name in rare for line in [line for line in lines[1:] if line.endswith(name)][:each]]
    _put_csv(s3, "\n".join([lines[0], *(line for line in lines[1:] if not line.endswith(rare)), *few]) + "\n")
    s3.delete_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/evaluation.json")  # chosen for other rows: chosen again
    outcome = trainer_train.run(trainer_settings, s3, promote=False)
    manifest = artifacts.read_manifest(s3, MODEL_BUCKET, outcome.version)
    assert any(note.startswith(decided) for note in manifest.dataset.notes), manifest.dataset.notes
    assert manifest.card()["dataset"]["notes"] == manifest.dataset.notes
    assert manifest.classes == classes
    assert manifest.dataset.grouped == ({name: "Other" for name in rare} if "Other" in classes else {})


def test_an_invalid_spec_is_refused(s3, trainer_settings):
    spec = {"target": "cultivar", "features": [{"name": "alcohol", "type": "float"}]}
    s3.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/spec.json", Body=json.dumps(spec).encode())
    with pytest.raises(DataError, match="has type 'float'"):
        trainer_train.run(trainer_settings, s3)


def _lost_at(s3, key_part: str):
    """S3 stops answering at the first PutObject whose key contains `key_part` (the emulator killed mid-run)."""
    from botocore.exceptions import EndpointConnectionError

    def refuse(params, **_):
        if key_part in params["url_path"]:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")

    s3.meta.events.register("before-call.s3.PutObject", refuse)


def test_a_connection_lost_while_the_pointer_moves_says_the_version_was_written_and_its_promotion_unknown(
        s3, trainer_settings, trained, signatures):
    """Issue 52 (6): the emulator killed while `make train` published left exit 3 `EndpointConnectionError`; the run says
    what is known: the version is written and verifies, whether it became the champion is not known."""
    from trainer.publish import Unfinished

    _lost_at(s3, "champion.json")
    with pytest.raises(Unfinished, match=r"version (\S+) was written .* whether it became the champion is not known") as err:
        trainer_train.run(trainer_settings, s3)
    version = err.value.args[0].split()[1]
    s3.meta.events.unregister("before-call.s3.PutObject")
    assert artifacts.load_verified(s3, MODEL_BUCKET, version, signatures)  # written whole, signed
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


def test_a_connection_lost_while_artifacts_are_written_leaves_no_version(s3, trainer_settings, trained):
    from trainer.publish import Unfinished

    _lost_at(s3, "/baseline")
    with pytest.raises(Unfinished, match=r"version (\S+) was not written .* nothing can serve them .* the champion is unchanged") as err:
        trainer_train.run(trainer_settings, s3)
    s3.meta.events.unregister("before-call.s3.PutObject")
    from trainer.artifacts import versions

    listed = {v["version"]: v for v in versions(s3, MODEL_BUCKET)}
    assert listed[err.value.args[0].split()[1]]["note"] == "no manifest (an interrupted run)"
    assert pointers.read_champion(s3, MODEL_BUCKET).version == trained.version


def test_metrics_that_cannot_be_sent_after_a_promotion_are_said_not_a_failed_run(s3, trainer_settings, trained):
    from botocore.exceptions import EndpointConnectionError

    class Down:
        def put_metric_data(self, **_):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")

    outcome = trainer_train.run(trainer_settings, s3, Down())
    assert outcome.promoted and "metrics could not be sent to CloudWatch" in outcome.unchecked
    assert pointers.read_champion(s3, MODEL_BUCKET).version == outcome.version


def test_a_dataset_with_no_evaluation_rows_says_so_not_that_they_are_gone(s3, trainer_settings, trained):
    """Issue 52 (2): a dataset that never had evaluation rows read 'none of the frozen evaluation rows is in the data any more'."""
    from sommelier_contract.dataset import KEY_FORMAT

    s3.put_object(Bucket=DATASET_BUCKET, Key=f"{PREFIX}/evaluation.json",
                  Body=json.dumps({"created_at": "2026-12-07T00:00:00+00:00", "fraction": 0.2, "key_format": KEY_FORMAT, "rows": 0, "keys": []}))
    with pytest.raises(DataError, match="the dataset has no evaluation rows: no class has two different rows"):
        trainer_train.run(trainer_settings, s3)

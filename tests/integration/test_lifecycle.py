"""make up / make down behaviour of the embedded runtime (skipped against an external stack)."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from devstack.config import StackConfig
from devstack.embedded import Embedded
from devstack.runtime import StackError, port_in_use

from .conftest import free_port


@pytest.fixture
def own(stack):
    if stack.config is None or stack.config.stack != "embedded":
        pytest.skip("process lifecycle of the embedded runtime (ports, pid files, supervisord): not this stack's runtime")
    return stack.config


def _model_versions(stack, unscheduled: bool = True) -> set[str]:
    """Model versions in the bucket; by default leaving out those the training schedule made meanwhile."""
    s3, bucket = stack.client("s3"), stack.outputs["ModelBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="models/")
    manifests = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("/manifest.json")]
    triggers = {k.split("/")[1]: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())["trigger"] for k in manifests}
    return {v for v, trigger in triggers.items() if not (unscheduled and trigger == "schedule")}


def test_a_second_up_changes_nothing(stack, own):
    versions = _model_versions(stack)
    info = Embedded(own).up()
    assert (info["api_url"], info["api_key"]) == (stack.api_url, stack.api_key)
    assert len(stack.client("apigateway").get_rest_apis()["items"]) == 1
    assert len(stack.client("cloudformation").describe_stacks()["Stacks"]) == 1
    assert _model_versions(stack) == versions  # no retraining while a champion exists


def test_the_frontend_serves_the_page_and_the_api_location(stack, own):
    page = requests.get(own.frontend_url, timeout=5)
    assert page.status_code == 200 and "Sommelier" in page.text
    config = requests.get(f"{own.frontend_url}/config.js", timeout=5).text
    assert json.loads(config.split("= ", 1)[1].rstrip(";\n"))["apiUrl"] == stack.api_url


def test_function_logs_reach_cloudwatch_with_the_request_id(stack, own, example, eventually):
    request_id = stack.post("/predict", {"features": example}).json()["request_id"]

    def logged():
        lines = [line for line in Embedded(own).function_logs(500) if request_id in line]
        assert lines, f"no log line with request id {request_id}"
        return lines

    line = json.loads(eventually(logged)[-1])
    assert line["status"] == 200 and line["route"] == "/predict"
    assert stack.api_key not in json.dumps(line)


def test_state_survives_down_and_up(stack, own, example):
    prediction = stack.post("/predict", {"features": example}).json()
    versions = _model_versions(stack)
    assert Embedded(own).down()
    for port in (own.emulator_port, own.frontend_port):
        assert not port_in_use(port), f"port {port} still listening after down"
    assert not list((own.state_dir / "tmp").glob("ministack-lambda-*")), "the workers' folders outlive the stack"
    info = Embedded(own).up()
    assert info["api_key"] == stack.api_key
    assert versions <= _model_versions(stack)
    item, _ = stack.stored(prediction["prediction_id"])
    assert item["request_id"]["S"] == prediction["request_id"]
    assert stack.post("/predict", {"features": example}).status_code == 200


def _kill_emulator_and_wait(stack, own, eventually) -> None:
    """kill -9 the emulator; return once the supervisor has restarted it and the API answers again."""
    import os
    import signal

    sup = Embedded(own).supervisor
    pid = int(sup.ctl("pid", "emulator").stdout.strip())
    os.kill(pid, signal.SIGKILL)

    def restarted() -> None:
        assert int(sup.ctl("pid", "emulator", check=False).stdout.strip() or 0) not in (0, pid), "not restarted yet"
        try:
            answer = stack.get("/health")
        except requests.RequestException as err:
            raise AssertionError(f"the API does not answer yet: {err}") from err
        assert answer.status_code == 200 and answer.json().get("status") == "ok", f"not ready yet: {answer.status_code} {answer.text[:300]}"

    eventually(restarted, timeout=90)


def _missing(stack, ids: list[str]) -> list[str]:
    return [i for i in ids if stack.get(f"/predictions/{i}").status_code != 200]


def test_a_killed_emulator_comes_back_with_every_acknowledged_prediction(stack, own, example, eventually):
    """kill -9 right after the last answer: the supervisor restarts MiniStack, which loads its last checkpoint, and the
    journal puts back the DynamoDB writes the checkpoint had not caught; the API, its keys and the model are the same."""
    ids = [p["prediction_id"] for _ in range(5) for p in stack.post("/predict", {"instances": [example] * 20}).json()["predictions"]]
    _kill_emulator_and_wait(stack, own, eventually)
    missing = _missing(stack, ids)
    assert not missing, f"{len(missing)} of {len(ids)} acknowledged predictions lost"
    assert stack.post("/predict", {"features": example}).status_code == 200  # same API URL, same key


def test_a_torn_journal_line_loses_nothing_and_recovery_keeps_working(stack, own, example, eventually):
    """A crash mid-append leaves a partial last line (its write was never applied nor acknowledged). The restart
    skips it and keeps a copy; the writes before it come back; the next entries start on a line of their own, so
    a second kill -9 loses nothing either."""
    journal = own.state_dir / "emulator" / "dynamodb-journal.jsonl"
    before = [p["prediction_id"] for p in stack.post("/predict", {"instances": [example] * 20}).json()["predictions"]]

    def checkpointed() -> None:
        assert journal.stat().st_size == 0, "the predictions are not in a checkpoint yet"

    # The torn line goes in once the checkpoint of those writes has rewritten the journal: a rewrite after it would
    # drop the line before the kill (seen under load in make test-fresh), and no write follows it until the kill,
    # as none follows a real crash mid-append.
    eventually(checkpointed, timeout=60)
    with journal.open("a") as f:
        f.write('{"seq": 77, "path": "/", "query": "", "headers": [["host", "127.0.0.1:4620"], ["x-amz-tar')
    _kill_emulator_and_wait(stack, own, eventually)
    assert not _missing(stack, before)
    assert list(journal.parent.glob("dynamodb-journal.unreadable-*.jsonl")), "the journal as found is kept for a person"
    assert "skipped unreadable DynamoDB journal line" in Embedded(own).status()  # said by make status, not only the log
    after = [p["prediction_id"] for p in stack.post("/predict", {"instances": [example] * 20}).json()["predictions"]]
    for line in journal.read_text().splitlines():
        json.loads(line)  # every line whole: nothing glued to the torn one
    _kill_emulator_and_wait(stack, own, eventually)
    missing = _missing(stack, before + after)
    assert not missing, f"{len(missing)} of {len(before + after)} acknowledged predictions lost after a torn line"


def test_up_refuses_a_port_taken_by_another_process(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        cfg = StackConfig(state_dir=tmp_path, emulator_port=port, frontend_port=free_port())
        with pytest.raises(StackError, match=f"port {port} \\(emulator\\) is already in use.*EMULATOR_PORT"):
            Embedded(cfg).up()
    assert not (tmp_path / "supervisord.pid").exists()


def test_a_stale_pid_file_is_cleared(tmp_path):
    cfg = StackConfig(state_dir=tmp_path, emulator_port=free_port(), frontend_port=free_port())
    (tmp_path / "supervisord.pid").write_text("999999999")
    assert Embedded(cfg).down() is False
    assert not (tmp_path / "supervisord.pid").exists()


def test_up_repairs_a_half_present_stack_keeping_the_data(own, tmp_path, example):
    """Resources gone while the stack remains, and the stack gone while its data remains: `make up` repairs both
    (its own stack: the repair replaces the API)."""
    cfg = StackConfig(state_dir=tmp_path / "repair", emulator_port=free_port(), frontend_port=free_port(),
                      stack_parameters=own.stack_parameters, warm_workers=1)  # three ups: a pool of workers is not the point
    runtime = Embedded(cfg)
    try:
        info = runtime.up()
        lam = runtime.aws("lambda")
        lam.delete_function(FunctionName=info["outputs"]["PredictorFunctionName"])  # the stack outlives its function
        info = runtime.up()
        assert requests.post(f"{info['api_url']}/predict", json={"features": example}, headers={"x-api-key": info["api_key"]},
                             timeout=30).status_code == 200
        models = {o["Key"] for o in runtime.aws("s3").list_objects_v2(Bucket=info["outputs"]["ModelBucketName"])["Contents"]}
        runtime.down()
        for state in (cfg.state_dir / "emulator").glob("*.json"):  # everything but S3's files: the stack is gone, its data is not
            if state.name != "s3.json":
                state.unlink()
        (cfg.state_dir / "emulator" / "dynamodb-journal.jsonl").unlink(missing_ok=True)
        info = runtime.up()
        kept = {o["Key"] for o in runtime.aws("s3").list_objects_v2(Bucket=info["outputs"]["ModelBucketName"])["Contents"]}
        assert models <= kept  # every model version is still there
        assert requests.post(f"{info['api_url']}/predict", json={"features": example}, headers={"x-api-key": info["api_key"]},
                             timeout=30).status_code == 200
    finally:
        runtime.down()

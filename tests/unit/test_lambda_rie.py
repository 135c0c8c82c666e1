"""The project's Runtime Interface Emulator (containers/rie/lambda_rie.py) against the two protocols it speaks.

A small runtime written here plays awslambdaric's side (poll `next`, post `response` or `error`); the
emulator is driven through its invoke endpoint over real HTTP, as MiniStack drives it in an image.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("lambda_rie", ROOT / "containers" / "rie" / "lambda_rie.py")
lambda_rie = sys.modules["lambda_rie"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lambda_rie)

# A runtime as awslambdaric behaves: init (or report an init error), then next -> response/error, forever.
RUNTIME = textwrap.dedent('''
    import json, os, sys, time, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    def post(path, body, headers=None):
        req = urllib.request.Request(api + path, data=json.dumps(body).encode(), headers=headers or {}, method="POST")
        return urllib.request.urlopen(req).status
    if os.environ.get("FAIL_INIT"):
        post("/init/error", {"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'nowhere'"},
             {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        sys.exit(1)
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as resp:
            rid = resp.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline = int(resp.headers["Lambda-Runtime-Deadline-Ms"])
            arn = resp.headers["Lambda-Runtime-Invoked-Function-Arn"]
            event = json.loads(resp.read())
        if "raise" in event:
            post(f"/invocation/{rid}/error", {"errorType": "ValueError", "errorMessage": event["raise"]},
                 {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        elif "exit" in event:
            sys.exit(event["exit"])
        else:
            time.sleep(event.get("sleep", 0))
            post(f"/invocation/{rid}/response", {"echo": event, "request_id": rid, "deadline_ms": deadline, "arn": arn})
''')


@pytest.fixture
def start(tmp_path: Path, monkeypatch):
    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME)
    started = []

    def _start(timeout: float = 5, **env: str):
        emulator = lambda_rie.Emulator([sys.executable, str(script)], invoke_address=("127.0.0.1", 0), timeout_seconds=timeout,
                                       env={**__import__("os").environ, **env}, log=lambda line: None)
        emulator.start()
        started.append(emulator)
        return emulator

    yield _start
    for emulator in started:
        emulator.stop()


def invoke(emulator, event: dict, request_id: str | None = None) -> tuple[int, dict, object]:
    req = urllib.request.Request(f"http://127.0.0.1:{emulator.invoke_port}{lambda_rie.INVOKE_PATH}", data=json.dumps(event).encode(),
                                 headers={"X-Amzn-RequestId": request_id} if request_id else {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status, headers = resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        raw, status, headers = err.read(), err.code, dict(err.headers)
    try:
        return status, headers, json.loads(raw)
    except json.JSONDecodeError:
        return status, headers, raw.decode()


def test_next_invocation_carries_the_event_request_id_and_deadline_and_the_response_comes_back(start):
    emulator = start(timeout=5)
    status, headers, body = invoke(emulator, {"n": 1}, request_id="req-1")
    assert status == 200 and "X-Amz-Function-Error" not in headers
    assert body["echo"] == {"n": 1} and body["request_id"] == "req-1"
    assert body["arn"].startswith("arn:aws:lambda:") and body["deadline_ms"] > 0
    # the same runtime serves the next invocation (a warm environment), with a request id of its own
    status, _, second = invoke(emulator, {"n": 2})
    assert status == 200 and second["echo"] == {"n": 2} and second["request_id"] != "req-1"
    assert not emulator.finished.is_set()


def test_an_error_the_handler_raises_is_the_error_document_marked_unhandled(start):
    emulator = start()
    status, headers, body = invoke(emulator, {"raise": "bad wine"})
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    assert body == {"errorType": "ValueError", "errorMessage": "bad wine"}
    status, _, body = invoke(emulator, {"n": 3})  # a handled failure does not end the environment
    assert status == 200 and body["echo"] == {"n": 3}


def test_a_timeout_answers_as_rie_does_and_ends_the_environment(start):
    emulator = start(timeout=0.5)
    status, headers, body = invoke(emulator, {"sleep": 3})
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    assert body == "Task timed out after 0.50 seconds"
    assert emulator.finished.wait(5), "the environment must end after a timeout (the emulator starts a new one)"


def test_a_runtime_that_exits_mid_invocation_is_an_exit_error_and_ends_the_environment(start):
    emulator = start()
    status, headers, body = invoke(emulator, {"exit": 3}, request_id="req-x")
    assert status == 200 and headers["X-Amz-Function-Error"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError" and "exit status 3" in body["errorMessage"] and "req-x" in body["errorMessage"]
    assert emulator.finished.wait(5)
    status, _, body = invoke(emulator, {"n": 1})
    assert status == 502 and body["errorType"] == "Runtime.Unavailable"


def test_an_init_error_is_the_answer_to_the_first_invocation(start):
    emulator = start(FAIL_INIT="1")
    status, headers, body = invoke(emulator, {"n": 1})
    assert status == 200 and headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.ImportModuleError"
    assert body["errorType"] == "Runtime.ImportModuleError" and "nowhere" in body["errorMessage"]
    assert emulator.finished.wait(5)


def test_a_response_for_an_invocation_that_is_not_waiting_is_refused(start):
    emulator = start()
    req = urllib.request.Request(f"http://{emulator.runtime_api}/2018-06-01/runtime/invocation/nobody/response", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400 and json.loads(err.value.read())["errorType"] == "InvalidRequestID"


def test_unknown_routes_are_404_on_both_endpoints(start):
    emulator = start()
    for url in (f"http://127.0.0.1:{emulator.invoke_port}/elsewhere", f"http://{emulator.runtime_api}/2018-06-01/nothing"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=5)
        assert err.value.code == 404


@pytest.mark.parametrize("runtime_api, expected", [
    ("127.0.0.1:9001", "-m awslambdaric predictor.handler.lambda_handler"),  # in Lambda: the client as is
    ("", "-m lambda_rie python -m awslambdaric predictor.handler.lambda_handler"),  # elsewhere: under the emulator
])
def test_the_entry_point_uses_the_emulator_only_where_lambda_provides_no_runtime_api(tmp_path: Path, runtime_api: str, expected: str):
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": runtime_api}
    out = subprocess.run(["sh", str(ROOT / "containers" / "rie" / "lambda-entrypoint.sh"), "predictor.handler.lambda_handler"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == expected


def test_a_runtime_that_dies_between_invocations_ends_the_environment_at_once(start):
    """So the emulator's pool drops the container before it routes a request to it."""
    emulator = start()
    assert invoke(emulator, {"n": 1})[0] == 200
    emulator.process.kill()
    assert emulator.finished.wait(5)
    status, _, body = invoke(emulator, {"n": 2})
    assert status == 502 and body["errorType"] == "Runtime.Unavailable"


def test_the_emulator_process_exits_when_its_environment_ends(tmp_path: Path):
    """The whole program (python -m lambda_rie RUNTIME...): a runtime that exits at once ends it, with a failure status."""
    proc = subprocess.run([sys.executable, str(ROOT / "containers" / "rie" / "lambda_rie.py"), sys.executable, "-c", "raise SystemExit(4)"],
                          env={**__import__("os").environ, "LAMBDA_RIE_PORT": "0"}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "exited (status 4)" in proc.stdout


def test_both_endpoints_send_at_once_nagle_off_on_every_connection(tmp_path: Path, monkeypatch):
    """An answer is written as headers, then body: with Nagle's algorithm on, the body waited for the peer's delayed ACK
    (40 ms here), twice an invocation on the runtime's kept-open connection. Measured 2026-12-02 on the host, a runtime
    keeping one connection open as awslambdaric does: 88 ms an invocation, 2.8 ms with TCP_NODELAY (make bench --compose
    has the stack's figures). Every connection either endpoint accepts has it set."""
    import socket

    script = tmp_path / "runtime.py"
    script.write_text(RUNTIME)
    emulator = lambda_rie.Emulator([sys.executable, str(script)], invoke_address=("127.0.0.1", 0), timeout_seconds=5,
                                   log=lambda line: None)
    seen: dict[str, list[int]] = {"runtime": [], "invoke": []}
    for name, server in (("runtime", emulator.runtime_server), ("invoke", emulator.invoke_server)):
        cls = server.RequestHandlerClass

        def setup(self, original=cls.setup, name=name) -> None:
            original(self)
            seen[name].append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        monkeypatch.setattr(cls, "setup", setup)
    emulator.start()
    try:
        for n in range(3):
            assert invoke(emulator, {"n": n})[2]["echo"] == {"n": n}
    finally:
        emulator.stop()
    assert seen["runtime"] and seen["invoke"] and all(seen["runtime"] + seen["invoke"]), seen

"""The predictor image (what `make deploy` pushes) answers a real invocation through the Lambda Runtime API.

MiniStack runs `PackageType: Image` functions by calling AWS's runtime interface emulator (RIE) inside
the image; RIE is a binary from GitHub, which no registry we reach carries. So this test plays Lambda's
side of the protocol awslambdaric speaks in AWS (GET .../invocation/next, POST .../response) and
checks the image's handler against the running stack's buckets and table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import ROOT

API = "/2018-06-01/runtime/invocation"


def _image() -> str:
    tag = subprocess.run(["bash", "containers/images.sh", "--tag"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    image = f"sommelier/predictor:{tag}"  # this source tree's image, never an older one
    if shutil.which("podman") and subprocess.run(["podman", "image", "inspect", image], capture_output=True).returncode == 0:
        return image
    pytest.skip(f"no {image} here (needs Podman and `make images`; `make test-compose` builds it)")


class RuntimeApi:
    """Lambda's Runtime API, one event at a time: what awslambdaric polls in AWS."""

    def __init__(self, events: list[dict]):
        self.events = list(events)
        self.responses: dict[str, dict] = {}
        self.errors: dict[str, dict] = {}
        self.done = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path != f"{API}/next" or not api.events:
                    api.done.wait(30)  # a real Runtime API long-polls; the test ends before this returns
                    self.send_response(500)
                    self.end_headers()
                    return
                request_id, event = str(uuid.uuid4()), api.events.pop(0)
                body = json.dumps(event).encode()
                self.send_response(200)
                for key, value in {"Lambda-Runtime-Aws-Request-Id": request_id, "Lambda-Runtime-Deadline-Ms": "9999999999999",
                                   "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:000000000000:function:predictor",
                                   "Content-Type": "application/json", "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                parts = self.path.split("/")
                (api.errors if parts[-1] == "error" else api.responses)[parts[-2]] = payload
                self.send_response(202)
                self.end_headers()
                if not api.events:
                    api.done.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()


def _event(method: str, resource: str, body: dict | None = None, key_id: str = "k") -> dict:
    return {"httpMethod": method, "resource": resource, "path": resource, "headers": {"content-type": "application/json"},
            "queryStringParameters": None, "pathParameters": None, "body": json.dumps(body) if body is not None else None,
            "requestContext": {"requestId": str(uuid.uuid4()), "identity": {"apiKeyId": key_id}}}


def test_the_predictor_image_serves_health_and_a_prediction(stack, example, tmp_path: Path):
    image = _image()
    function = stack.client("lambda").get_function_configuration(FunctionName=stack.outputs["PredictorFunctionName"])
    env = dict(function["Environment"]["Variables"])
    env.update({"AWS_ENDPOINT_URL": stack.aws_endpoint, "AWS_DEFAULT_REGION": stack.region, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_LAMBDA_FUNCTION_NAME": "predictor", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"})
    api = RuntimeApi([_event("GET", "/health"), _event("POST", "/predict", {"features": example})])
    env["AWS_LAMBDA_RUNTIME_API"] = api.address
    args = [f"--env={k}={v}" for k, v in env.items()]
    name = f"sommelier-predictor-test-{uuid.uuid4().hex[:8]}"
    # host network: the image reaches this test's Runtime API and the stack's emulator on loopback
    container = subprocess.Popen(["podman", "run", "--rm", "--name", name, "--network=host", *args, image],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert api.done.wait(120), "the image did not answer both invocations within 120 s"
    finally:
        subprocess.run(["podman", "rm", "-f", name], capture_output=True)
        output = container.communicate(timeout=60)[0]
        api.close()
    assert not api.errors, (api.errors, output[-2000:])
    health, prediction = (json.loads(r["body"]) | {"statusCode": r["statusCode"]} for r in api.responses.values())
    assert health["statusCode"] == 200 and health["status"] == "ok" and health["model_version"], health
    assert prediction["statusCode"] == 200 and prediction["label"] and prediction["model_version"] == health["model_version"]

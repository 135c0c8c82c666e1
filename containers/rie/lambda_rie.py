"""A Lambda Runtime Interface Emulator for images on a plain base, where AWS's RIE cannot be had.

AWS's Lambda base images carry the Runtime Interface Emulator (RIE), a Go binary from GitHub that no
registry we reach serves. An image on another base runs its runtime interface client (awslambdaric)
under RIE when `AWS_LAMBDA_RUNTIME_API` is unset, which is what `lambda-entrypoint.sh` does with this
module instead. It speaks RIE's two protocols and nothing more:

- outside, the invoke endpoint emulators call (MiniStack, SAM, `curl`):
  `POST /2015-03-31/functions/function/invocations` with the event as the body, answered with the
  function's response; an error as RIE answers it (200, the error document, `X-Amz-Function-Error`);
- inside, the Lambda Runtime API the runtime polls: `GET /2018-06-01/runtime/invocation/next`,
  `POST .../invocation/{id}/response`, `POST .../invocation/{id}/error`, `POST .../runtime/init/error`.

One invocation at a time, as in a Lambda execution environment. The runtime starts at once (its init
overlaps the emulator's first connection) and is not restarted: a runtime that exits, an init error
or a timeout ends this process after the answer is sent, so the container stops and the emulator
starts a new one for the next request, as Lambda replaces a failed execution environment.

Standard library only: it runs before, and beside, whatever the image installs.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RUNTIME_PREFIX = "/2018-06-01/runtime"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


@dataclass
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""
    error_type: str | None = None  # set: the runtime reported an error (the body is its error document)


def _error_document(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode()


class Emulator:
    """The invoke endpoint and the Runtime API around one runtime process."""

    def __init__(self, command: list[str], *, invoke_address: tuple[str, int] = ("0.0.0.0", 8080),
                 runtime_address: tuple[str, int] = ("127.0.0.1", 0), timeout_seconds: float | None = None,
                 env: dict[str, str] | None = None, log=None):
        self.command = command
        self.timeout = timeout_seconds or float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "300"))
        self.function_arn = os.environ.get("_LAMBDA_FUNCTION_ARN") or \
            f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:000000000000:function:" \
            f"{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'function')}"
        self.env = env
        self.log = log or (lambda line: print(line, flush=True))
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.current: Invocation | None = None
        self.init_error: bytes | None = None
        self.init_error_type = "Runtime.InitError"
        self.serial = threading.Lock()  # one invocation at a time
        self.ending = False  # this environment must end once the current answer is sent
        self.finished = threading.Event()  # set then: serve() stops and the process exits
        self.process: subprocess.Popen | None = None
        self.runtime_server = ThreadingHTTPServer(runtime_address, self._handler(self._runtime_api))
        self.invoke_server = ThreadingHTTPServer(invoke_address, self._handler(self._invoke_api, answers_invocations=True))
        for server in (self.runtime_server, self.invoke_server):
            server.daemon_threads = True

    # --- lifecycle ----------------------------------------------------------------------------------
    @property
    def runtime_api(self) -> str:
        host, port = self.runtime_server.server_address[:2]
        return f"{host}:{port}"

    @property
    def invoke_port(self) -> int:
        return self.invoke_server.server_address[1]

    def start(self) -> None:
        for server in (self.runtime_server, self.invoke_server):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        env = {**(self.env if self.env is not None else os.environ), "AWS_LAMBDA_RUNTIME_API": self.runtime_api}
        self.process = subprocess.Popen(self.command, env=env)
        self.log(f"lambda_rie: runtime {' '.join(self.command)} (pid {self.process.pid}), invocations on port {self.invoke_port}")
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        """A runtime that dies between invocations ends the environment at once, so the emulator's pool drops this
        container before it routes a request to it (one in flight is answered by _wait first)."""
        code = self.process.wait() if self.process else 0
        if not self.serial.locked():
            self.log(f"lambda_rie: the runtime exited (status {code}) between invocations; this environment ends")
            self.ending = True
            self.finished.set()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for server in (self.invoke_server, self.runtime_server):
            server.shutdown()
            server.server_close()

    def serve(self) -> None:
        """Until the environment must end (runtime gone, timeout, init error) or a signal; then the process exits."""
        self.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.finished.set())
        self.finished.wait()
        # at once, without the servers' graceful shutdown (up to half a second): the emulator checks whether this
        # container still runs right after it reads the last answer, and drops it from its pool only if it does not
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        code = 1 if self.ending else 0  # ended by a failure, or stopped by a signal
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    # --- the invoke endpoint ------------------------------------------------------------------------
    def invoke(self, event: bytes, request_id: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """Run one invocation; (HTTP status, headers, body) as RIE answers it."""
        with self.serial:
            if self.ending:
                return 502, {"Content-Type": "application/json"}, _error_document(
                    "Runtime.Unavailable", "this execution environment has ended; the next request starts a new one")
            request_id = request_id or str(uuid.uuid4())
            started = time.monotonic()
            inv = Invocation(request_id, event, int(time.time() * 1000 + self.timeout * 1000))
            self.log(f"START RequestId: {request_id} Version: $LATEST")
            if self.init_error is None:
                self.pending.put(inv)
                self._wait(inv, started)
            if self.init_error is not None and not inv.done.is_set():
                inv.body, inv.error_type = self.init_error, self.init_error_type
                self.ending = True
            elapsed = (time.monotonic() - started) * 1000
            self.log(f"END RequestId: {request_id}")
            self.log(f"REPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms\tBilled Duration: {int(elapsed) + 1} ms")
            headers = {"Content-Type": "application/json"}
            if inv.error_type:
                headers["X-Amz-Function-Error"] = "Unhandled"
                headers["Lambda-Runtime-Function-Error-Type"] = inv.error_type
            return 200, headers, inv.body

    def _wait(self, inv: Invocation, started: float) -> None:
        """Until the runtime answers, fails to start, exits, or the function's timeout passes."""
        while not inv.done.wait(0.05):
            if self.init_error is not None:
                return
            code = self.process.poll() if self.process else 0
            if code is not None:
                inv.body = _error_document("Runtime.ExitError",
                                           f"RequestId: {inv.request_id} Error: Runtime exited with error: exit status {code}")
                inv.error_type = "Runtime.ExitError"
                self.ending = True
                return
            if time.monotonic() - started > self.timeout:
                # RIE's own answer to a timeout is this bare text; the environment is then replaced
                inv.body = f"Task timed out after {self.timeout:.2f} seconds".encode()
                inv.error_type = "Sandbox.Timedout"
                self.log(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {inv.request_id} Task timed out after {self.timeout:.2f} seconds")
                self.ending = True
                return

    def _invoke_api(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, dict[str, str], bytes]:
        if method != "POST" or handler.path.split("?")[0] != INVOKE_PATH:
            return 404, {"Content-Type": "application/json"}, _error_document("NotFound", f"no route {method} {handler.path}")
        return self.invoke(handler.body, handler.headers.get("X-Amzn-RequestId"))

    # --- the Runtime API ----------------------------------------------------------------------------
    def _runtime_api(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, dict[str, str], bytes]:
        path = handler.path.split("?")[0]
        accepted = 202, {"Content-Type": "application/json"}, b'{"status":"OK"}'
        if method == "GET" and path == f"{RUNTIME_PREFIX}/invocation/next":
            inv = self.pending.get()  # long poll, as Lambda's
            self.current = inv
            return 200, {"Content-Type": "application/json", "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                         "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                         "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
                         "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"}, inv.event
        if method == "POST" and path == f"{RUNTIME_PREFIX}/init/error":
            self.init_error = handler.body or _error_document("Runtime.InitError", "the runtime failed to initialise")
            self.init_error_type = handler.headers.get("Lambda-Runtime-Function-Error-Type") or "Runtime.InitError"
            return accepted
        parts = path[len(RUNTIME_PREFIX):].strip("/").split("/")
        if method == "POST" and len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            inv = self.current
            if inv is None or inv.request_id != parts[1] or inv.done.is_set():
                return 400, {"Content-Type": "application/json"}, _error_document(
                    "InvalidRequestID", f"no invocation {parts[1]} is waiting for an answer")
            inv.body = handler.body
            if parts[2] == "error":
                inv.error_type = handler.headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled"
            self.current = None
            inv.done.set()
            return accepted
        return 404, {"Content-Type": "application/json"}, _error_document("NotFound", f"no route {method} {handler.path}")

    # --- HTTP plumbing ------------------------------------------------------------------------------
    def _handler(self, route, answers_invocations: bool = False):
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # awslambdaric keeps its connection open between calls
            # an answer goes out as two writes (headers, body): with Nagle's algorithm the body waited for the peer's
            # delayed ACK, 40 ms, twice an invocation (measured: 88 ms an invocation, 2.8 ms with TCP_NODELAY)
            disable_nagle_algorithm = True
            body = b""

            def log_message(self, *args: Any) -> None:  # the runtime's own lines are the log
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                status, headers, body = route(self, method)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if answers_invocations and emulator.ending:
                    emulator.finished.set()

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

        return Handler


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m lambda_rie RUNTIME_COMMAND... (e.g. python -m awslambdaric module.handler)", file=sys.stderr)
        return 2
    port = int(os.environ.get("LAMBDA_RIE_PORT", "8080"))
    Emulator(argv, invoke_address=("0.0.0.0", port)).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

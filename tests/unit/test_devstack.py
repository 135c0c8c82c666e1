"""devstack without a running stack: where settings come from, how logs and history read, and
that a failure reaches the user as one line."""

from __future__ import annotations

import json

import pytest

from devstack import runtime_for
from devstack.config import StackConfig
from devstack.logview import render
from ops import __main__ as cli
from sommelier_contract.results import TrainingResult


@pytest.fixture
def state(tmp_path, monkeypatch):
    for name in ("SOMMELIER_EMULATOR_PORT", "SOMMELIER_FRONTEND_PORT", "SOMMELIER_STACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOMMELIER_STATE_DIR", str(tmp_path))
    return tmp_path


def test_commands_take_the_ports_and_runtime_that_up_recorded(state):
    (state / "stack.json").write_text(json.dumps({"runtime": "embedded", "emulator_port": 4577, "frontend_port": 8091}))
    cfg = StackConfig.resolve()
    assert (cfg.emulator_port, cfg.frontend_port, cfg.stack) == (4577, 8091, "embedded")
    assert cfg.endpoint == "http://127.0.0.1:4577" and runtime_for(cfg).name == "embedded"


def test_the_environment_wins_over_the_record(state, monkeypatch):
    (state / "stack.json").write_text(json.dumps({"runtime": "compose", "emulator_port": 4577, "frontend_port": 8091}))
    monkeypatch.setenv("SOMMELIER_EMULATOR_PORT", "4599")
    monkeypatch.setenv("SOMMELIER_STACK", "embedded")
    cfg = StackConfig.resolve()
    assert (cfg.emulator_port, cfg.frontend_port, cfg.stack) == (4599, 8091, "embedded")


def test_make_up_hands_its_variables_to_the_settings(tmp_path):
    """`make up WARM_WORKERS=1 EMULATOR_PORT=...` reaches StackConfig as SOMMELIER_* (the Makefile exports what is given)."""
    import subprocess

    from devstack.config import ROOT

    out = subprocess.run(["make", "-s", "-o", ".venv/.installed", "up", "WARM_WORKERS=1", "EMULATOR_PORT=4599", "STACK=embedded",
                          f"OPS=env > {tmp_path / 'env'} #"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if line.startswith("SOMMELIER_"))
    assert {k: seen.get(k) for k in ("SOMMELIER_WARM_WORKERS", "SOMMELIER_EMULATOR_PORT", "SOMMELIER_STACK")} == {
        "SOMMELIER_WARM_WORKERS": "1", "SOMMELIER_EMULATOR_PORT": "4599", "SOMMELIER_STACK": "embedded"}


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]", json.dumps({"emulator_port": "4577"})])
def test_no_or_a_broken_record_means_the_defaults(state, content):
    if content is not None:
        (state / "stack.json").write_text(content)
    cfg = StackConfig.resolve()
    assert (cfg.emulator_port, cfg.frontend_port, cfg.stack) == (4566, 8080, "")


def test_a_request_line_reads_as_time_level_id_route_status_latency_model():
    line = json.dumps({"level": "INFO", "timestamp": "2026-11-24 00:38:23,927+0000", "message": "request", "request_id": "abc-123",
                       "method": "POST", "route": "/predict", "status": 200, "outcome": "ok", "latency_ms": 44.04,
                       "model_version": "v1", "records": 3})
    out = render(line)
    assert out.startswith("00:38:23.927 INFO    abc-123")
    for part in ("POST", "/predict", "200", "44.0 ms", "model v1", "3 records"):
        assert part in out, part


def test_errors_show_their_outcome_and_exception_and_platform_lines_drop():
    line = json.dumps({"level": "ERROR", "timestamp": "2026-11-24T00:00:01.5Z", "message": "unhandled error", "request_id": "r",
                       "exception": "Traceback ...\nZeroDivisionError: boom"})
    assert render(line).splitlines()[-1].strip() == "ZeroDivisionError: boom"
    failed = json.dumps({"message": "request", "route": "/predict", "status": 503, "outcome": "no_model", "request_id": "r"})
    assert "no_model" in render(failed)
    assert render("START RequestId: x Version: $LATEST") is None
    assert render("REPORT RequestId: x\tDuration: 3 ms") is None
    assert render("plain text from print") == "plain text from print"


def test_history_table_marks_the_champion():
    rows = [{"version": "v2", "trained_at": "2026-11-24T01:00:00+00:00", "model": "lr", "cv_f1_macro": 0.9, "holdout_accuracy": 0.8,
             "holdout_f1_macro": 0.7, "gate_passed": False, "gate_reason": "regresses", "champion": False},
            {"version": "v1", "trained_at": "2026-11-24T00:00:00+00:00", "model": "rf", "cv_f1_macro": 0.95, "holdout_accuracy": 0.9,
             "holdout_f1_macro": 0.85, "gate_passed": True, "gate_reason": "first model", "champion": True}]
    table = cli.history_table(rows).splitlines()
    v1 = next(line for line in table if " v1 " in line)
    v2 = next(line for line in table if " v2 " in line)
    assert v1.startswith("*") and not v2.startswith("*")
    assert "refused" in v2 and "passed" in v1 and "0.850" in v1
    assert cli.history_table([]).startswith("no model version yet")


def test_history_shows_each_versions_dataset_a_promotion_by_hand_and_whole_reasons_when_wide():
    reason = "not promoted automatically: the API would change (new required features ['description', 'variety']); a person decides"
    rows = [{"version": "v3", "trained_at": "2026-11-24T02:00:00+00:00", "dataset": "reviews", "model": "linear_svm_chars",
             "gate_passed": False, "gate_reason": reason, "champion": True, "last_promoted_at": "2026-11-24T03:00:00+00:00"}]
    table = cli.history_table(rows)
    assert "reviews" in table and "refused; promoted by hand" in table and reason not in table and "WIDE=1" in table
    assert reason in cli.history_table(rows, wide=True)
    rows[0]["promoted_by_hand"] = {"at": "2026-11-24T03:00:00+00:00", "by": "alice", "why": "new data, checked"}
    wide = cli.history_table(rows, wide=True)
    assert "refused; promoted by hand by alice 2026-11-24 03:00:00" in wide and "promoted by hand: new data, checked; gate: " + reason in wide


def test_the_training_report_gives_each_classs_recall_lowest_first():
    line = cli.holdout_line(TrainingResult.parse({"version": "v1", "promoted": True, "reason": "", "model": "linear_svm_chars",
                                                  "holdout": {"accuracy": 0.9, "f1_macro": 0.85, "rows": 200,
                                                              "recall": {"US": 0.97, "France": 0.63, "Italy": 0.8}}}))
    assert line == ("linear_svm_chars on 200 held-out rows: accuracy 0.900, macro F1 0.850; "
                    "recall per class (lowest first): France 0.63, Italy 0.80, US 0.97")


def test_an_unexpected_failure_is_one_line_and_the_traceback_goes_to_a_file(state, monkeypatch, capsys):
    def boom(*args):
        raise ValueError("something odd")

    monkeypatch.setattr(cli, "runtime_for", boom)  # inside a command: `status` looks its runtime up first
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "error: ValueError: something odd" and len(err) == 2 and "Traceback" not in "\n".join(err)
    assert "Traceback" in (state / "logs" / "devstack.log").read_text()


def test_a_killed_process_not_yet_reaped_is_not_running():
    """Issue 23: after the whole session was killed, supervisord stays a zombie until reaped; `kill(pid, 0)` says it runs."""
    import os
    import signal
    import subprocess
    import sys

    from devstack.supervisor import alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # until it has died, leaving it unreaped
        assert not alive(child.pid)
        os.kill(child.pid, 0)  # still "there" for kill(pid, 0): a zombie, not yet reaped
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid)


class _Flaky:
    """A local HTTP server whose first `failures` requests answer 502 (a worker still starting), then 200; it counts."""

    def __init__(self, failures: int):
        import http.server
        import threading

        self.failures, self.seen, self.lock = failures, 0, threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with outer.lock:
                    outer.seen += 1
                    failing = outer.seen <= outer.failures
                self.send_response(502 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/health"


def _each_a_worker(url: str):
    """A warm-up call that reaches `url` and is answered by a worker of its own (as a held worker is)."""
    import uuid

    from devstack.runtime import http_ok

    return lambda: (http_ok(url), uuid.uuid4().hex)[1]


def test_the_warm_up_goes_in_waves_and_rides_out_transient_502s():
    """Issue 36: `make up` failed when a 502 came back while 16 workers started at once on a loaded machine."""
    from devstack.runtime import warm_workers

    flaky = _Flaky(failures=5)
    try:
        seconds = warm_workers(_each_a_worker(flaky.url), 16, wave=4, budget=30)
    finally:
        flaky.server.shutdown()
    assert len(seconds) == 16
    assert flaky.seen == 5 + 4 + 8 + 12 + 16  # waves of 4, 8, 12, 16 requests released together, the 502s retried


def test_a_wave_that_met_fewer_workers_than_its_calls_goes_again():
    """Issue 39: `make up` asked for 16 workers and left 9: calls of one wave met the same worker (a fast call is done
    before the next arrives), and the first burst started the other 7. A wave counts the workers that answered it."""
    import itertools
    import threading

    from devstack.runtime import warm_workers

    calls = itertools.count()
    lock = threading.Lock()

    def call() -> str:
        with lock:
            n = next(calls)
        return "w0" if n == 5 else f"w{n % 8}"  # the 2nd wave's first attempt: two calls meet worker w0

    assert len(warm_workers(call, 8, wave=4, budget=30)) == 8
    assert next(calls) == 4 + 8 + 8  # the wave of 8 went twice


def test_a_warm_up_that_cannot_finish_warns_and_leaves_the_stack_up():
    from devstack.runtime import warm_workers

    broken = _Flaky(failures=10**9)
    try:
        assert warm_workers(_each_a_worker(broken.url), 8, wave=4, budget=1) == []
    finally:
        broken.server.shutdown()


def test_images_says_when_there_is_no_engine_and_builds_nothing(monkeypatch, capsys):
    """`make test-compose` builds the images first (`devstack images`), outside any test's timeout (issue 37: on an empty
    store the first test built them under pytest's 300 s and was killed); without an engine that step says so and passes."""
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert cli.main(["images"]) == 0
    assert "no podman or docker here" in capsys.readouterr().out


def test_a_training_run_is_worded_as_the_decision_it_is():
    """Issue 37: every new dataset read as 'refused' with the way forward buried in the reason (make train and sommelier train)."""
    from sommelier_client.cli import decision_lines

    kept = decision_lines(TrainingResult.parse({"version": "v2", "promoted": False, "reason": "not promoted automatically: the API would change "
                               "(new required features ['points']); `make promote VERSION=<this version> YES=1` if that is intended"}))
    assert kept[0] == "model v2: trained and kept; a person decides whether it serves, because the API would change (new required features ['points'])"
    assert kept[1].split() == ["to", "serve", "it:", "make", "promote", "VERSION=v2", "YES=1", 'WHY="<your', "reason,", "recorded", "with",
                               "your", 'name>"']
    assert "champion serves on" in kept[2]
    doubt = decision_lines(TrainingResult.parse({"version": "v3", "promoted": False, "reason": "not promoted automatically: feedback looks anomalous (x); "
                                "review the feedback, then `make promote VERSION=<this version>` if it is sound"}))
    assert doubt[0].endswith("because feedback looks anomalous (x)") and "YES=1" not in doubt[1] and "VERSION=v3" in doubt[1]
    assert decision_lines(TrainingResult.parse({"version": "v4", "promoted": False, "reason": "holdout macro F1 0.5 regresses"})) == [
        "model v4: not promoted: holdout macro F1 0.5 regresses; the champion serves on"]
    assert decision_lines(TrainingResult.parse({"version": "v5", "promoted": True, "reason": "first model"})) == ["model v5: promoted (first model)"]


@pytest.mark.parametrize(("health", "trains"), [
    ({"status": "ok", "model_version": "v2"}, False),  # served: the predictor verified it when it loaded it
    ({"status": "ok", "model_version": "v1"}, True),  # still serving an older champion: the trainer checks the new one
    ({"status": "degraded", "model_version": "v2", "reason": "artifact rejected"}, True),
])
def test_a_second_up_asks_the_trainer_only_when_the_champion_is_not_served(state, monkeypatch, health, trains):
    from devstack.embedded import Embedded
    from sommelier_contract.pointers import Champion

    up = Embedded(StackConfig(state_dir=state))
    calls: list[list[str]] = []
    monkeypatch.setattr(up, "champion", lambda: Champion(version="v2"))
    monkeypatch.setattr(up, "health", lambda: health)
    monkeypatch.setattr(up, "trainer_result", lambda args: calls.append(args) or {"reason": "champion exists", "version": "v2"})
    up.ensure_model()
    assert calls == ([["train", "--if-no-champion"]] if trains else [])


@pytest.mark.parametrize(("answer", "found"), [(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", True),
                                               (b"HTTP/1.1 500 Internal Server Error\r\n\r\n", False), (None, False)])
def test_an_engine_is_found_by_its_socket_without_curl(tmp_path, answer, found):
    """A fresh Debian container has neither docker nor curl: asking for an engine once ran curl and crashed."""
    import socket
    import threading

    from devstack.runtime import docker_api_pings

    path = str(tmp_path / "docker.sock")
    if answer is None:  # no socket at all
        assert docker_api_pings(path) is found
        return
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        with conn:
            assert conn.recv(1024).startswith(b"GET /_ping ")
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert docker_api_pings(path) is found
    finally:
        thread.join(5)
        server.close()


def _imported(folder: str) -> set[str]:
    """The top-level packages a folder's modules import (every import statement, lazy ones too), read from the code."""
    import ast
    from pathlib import Path

    names = set()
    for path in (Path(__file__).resolve().parents[2] / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


FIRST_PARTY = {"trainer", "predictor", "monitor", "sommelier_contract", "frontend", "sommelier_client", "devstack", "deployer",
               "ops", "bench"}


def _module_imports() -> dict[str, set[str]]:
    """Each first-party module (services/*, client/, and the repo's own packages) -> the first-party modules it imports,
    every import statement counted (function-level ones too), relative ones resolved."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = {}
    for base in [root / "services" / s for s in ("trainer", "predictor", "monitor", "contract", "frontend")] + [root / "client", root]:
        for package in FIRST_PARTY:
            for path in (base / package).rglob("*.py") if (base / package).is_dir() else ():
                parts = list(path.relative_to(base).with_suffix("").parts)
                found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges: dict[str, set[str]] = {}
    for name, path in found.items():
        own = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                module = ".".join(own[: len(own) - node.level + 1] + [node.module or ""]).strip(".") if node.level else node.module or ""
                targets |= {f"{module}.{a.name}" if f"{module}.{a.name}" in found else module for a in node.names}
        for target in targets:
            while target and target not in found:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.setdefault(name, set()).add(target)
    return edges


def test_no_module_imports_itself_back_through_any_chain():
    """Issue 54 (4): bench/families.py imported training.py, which imported families.py in a function: a cycle only an
    import inside a function hid. Every import statement of every first-party module is read; none closes a loop."""
    from graphlib import CycleError, TopologicalSorter

    edges = _module_imports()
    assert "bench.reviews" in edges["bench.families"] and "sommelier_contract.experts" in edges["trainer.compare"]  # read as meant
    try:
        TopologicalSorter(edges).prepare()
    except CycleError as err:
        pytest.fail(f"an import cycle: {' -> '.join(err.args[1])}")


def test_every_path_and_command_a_modules_docstring_names_exists():
    """Issue 54 (4): devstack's opening line still said `python -m devstack` after the commands moved to ops/. In every
    first-party module's docstring, a path into the repository (its first folder one of the repo's or a service package's)
    exists, each `make TARGET` is a Makefile target, and each `python -m MODULE` can be run."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    homes = [root, root / "client", *(root / "services" / s for s in ("trainer", "predictor", "monitor", "contract", "frontend"))]
    firsts = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")} | FIRST_PARTY | {"monitor"}
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", (root / "Makefile").read_text(), re.M))
    wrong, read = [], 0
    for base in homes:
        for package in FIRST_PARTY:
            for path in (base / package).rglob("*.py") if (base / package).is_dir() else ():
                doc, read = ast.get_docstring(ast.parse(path.read_text())) or "", read + 1
                where = path.relative_to(root)
                for named in re.findall(r"(?<![\w<{/.:$-])((?:[\w.-]+/)+[\w.-]*\w)(?![\w/<>{}])", doc):
                    if named.split("/")[0] in firsts and not any((home / named).exists() for home in homes):
                        wrong.append(f"{where}: the path {named}")
                wrong += [f"{where}: `make {t}`" for t in re.findall(r"`make ([a-z][\w-]*)", doc) if t not in targets]
                wrong += [f"{where}: python -m {m}" for m in re.findall(r"python -m ([\w.]+)", doc)  # a module, or a package with a __main__
                          if not any((h / f"{m.replace('.', '/')}.py").exists() or (h / m.replace(".", "/") / "__main__.py").exists()
                                     for h in homes)]
    assert read > 60 and not wrong, wrong


def test_the_packages_import_one_way_ops_over_deployer_over_devstack():
    """Issue 38: devstack's command line imported deployer, which imports devstack: a package cycle. The command line is
    ops/ now; devstack imports neither, deployer never ops."""
    assert not {"deployer", "ops"} & _imported("devstack")
    assert "ops" not in _imported("deployer") and "devstack" in _imported("deployer")
    assert {"devstack", "deployer"} <= _imported("ops")


@pytest.mark.parametrize("service", ["predictor", "trainer", "monitor"])
def test_each_service_imports_only_itself_and_the_contract(service):
    """Issue 38: the monitor lived inside the trainer. Each service ships as its own zip (its folder and the contract), so
    importing another service's package would fail in AWS; the contract imports no service."""
    services = {"predictor", "trainer", "monitor", "frontend", "sommelier_client"}
    assert _imported(f"services/{service}/{service}") & services <= {service}
    assert not _imported("services/contract/sommelier_contract") & services


def test_a_training_result_reads_back_as_written_and_from_the_older_shapes():
    """Issue 38: the trainer's result crossed to ops and the CLI as a dict read with string keys; it is one type now."""
    from sommelier_contract.results import Holdout

    written = TrainingResult(version="v2", promoted=True, reason="better", champion="v2", model="linear_svm", quarantined=3,
                             holdout=Holdout(accuracy=0.9, f1_macro=0.8, rows=40, recall={"a": 0.7}))
    assert TrainingResult.parse(json.loads(json.dumps(written.doc()))) == written
    older = TrainingResult.parse({"version": "v1", "promoted": False, "reason": "kept", "quarantined": [{"key": "k"}], "holdout": None})
    assert (older.quarantined, older.holdout, older.task) == (1, None, None)  # the CLI once printed the held rows themselves
    handed = TrainingResult.parse({"version": None, "promoted": False, "reason": "handed over", "task": "arn:task/1"})
    assert handed.version is None and handed.task == "arn:task/1"


def test_the_init_hooks_run_in_order_in_one_process_and_a_failure_names_its_hook(state, tmp_path, monkeypatch):
    """Issue 39: one interpreter for every hook (each hook is still run as its own `__main__`); the one that fails is named."""
    from devstack.embedded import StackError, run_hooks

    ready = tmp_path / "repo" / "localstack-init" / "ready.d"
    ready.mkdir(parents=True)
    seen = tmp_path / "seen.txt"
    for name in ("10-first.py", "20-second.py"):
        (ready / name).write_text("import os\nassert __name__ == '__main__'\n"
                                  f"open({str(seen)!r}, 'a').write(f'{name} {{os.getpid()}} {{os.environ[\"SOMMELIER_STACK_NAME\"]}}\\n')\n")
    (ready / "notes.txt").write_text("not a hook")
    monkeypatch.setattr(StackConfig, "root", property(lambda self: tmp_path / "repo"))
    cfg = StackConfig(state_dir=state)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    run_hooks(cfg)
    lines = [line.split() for line in seen.read_text().splitlines()]
    assert [line[0] for line in lines] == ["10-first.py", "20-second.py"]
    assert len({line[1] for line in lines}) == 1 and lines[0][2] == cfg.stack_name

    (ready / "15-broken.py").write_text("import sys\nprint('the bucket is gone', file=sys.stderr)\nsys.exit(3)\n")
    seen.unlink()
    with pytest.raises(StackError, match=r"init hook 15-broken.py failed \(exit 3\)") as failed:
        run_hooks(cfg)
    assert "the bucket is gone" in str(failed.value)
    assert [line.split()[0] for line in seen.read_text().splitlines()] == ["10-first.py"]  # the next hook never ran


def test_a_promotion_whose_effect_cannot_be_checked_says_what_was_done(monkeypatch, capsys):
    """Issue 52 (6): the emulator killed after `make train` reported 'promoted' gave an EndpointConnectionError and exit 2;
    the pointer is written, only whether the API serves it is unknown, and that is what is said (exit 0)."""
    from botocore.exceptions import EndpointConnectionError

    class Gone:
        def trainer_result(self, args):
            return {"version": "v7", "promoted": True, "reason": "first model", "champion": "v7",
                    "unchecked": "the run's metrics could not be sent to CloudWatch (the log says why)"}

        def refresh_seconds(self):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")

    monkeypatch.setattr(cli, "_local", lambda: (Gone(), None))
    assert cli.main(["train"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "model v7: promoted (first model)"
    assert "not checked: the run's metrics could not be sent to CloudWatch (the log says why)" in out
    assert out[-1].startswith("version v7 is trained and promoted; whether the API serves it could not be checked: Could not connect")

"""`python -m ops COMMAND`: every make target that touches a stack, local or deployed.

Commands after `up` find the stack through .sommelier/stack.json (runtime and ports), so
`make up EMULATOR_PORT=4577` is the only place a port is given. Errors are one line that
says what to do; a traceback goes to .sommelier/logs/devstack.log, never to the terminal.
"""

from __future__ import annotations

import errno
import getpass
import json
import logging
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from tabulate import tabulate

from devstack import runtime_for
from devstack.config import StackConfig
from devstack.logview import render
from devstack.runtime import AlreadyReported, Runtime, StackError, summary
from sommelier_client.cli import decision_lines
from sommelier_contract.pointers import Champion
from sommelier_contract.results import Holdout, TrainingResult

log = logging.getLogger("devstack")


def _fmt_time(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else ""


def _score(value: float | None) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else ""


def _gate(row: dict[str, Any]) -> str:
    verdict = {True: "passed", False: "refused", None: ""}[row.get("gate_passed")]
    if row.get("promoted_by_hand"):  # recorded in the signed manifest: who and when (the why is in the gate reason column)
        return f"{verdict}; promoted by hand by {row['promoted_by_hand']['by']} {_fmt_time(row['promoted_by_hand']['at'])}"
    if row.get("gate_passed") is False and row.get("last_promoted_at"):
        return f"{verdict}; promoted by hand {_fmt_time(row['last_promoted_at'])}"  # the gate refused it, a person promoted it
    return verdict


def history_table(rows: list[dict[str, Any]], wide: bool = False) -> str:
    if not rows:
        return "no model version yet: `make train` trains one"
    table = [{
        "": "*" if r["champion"] else "",
        "version": r["version"],
        "trained at (UTC)": _fmt_time(r.get("trained_at")),
        "dataset": r.get("dataset") or "",
        "model": r.get("model") or r.get("note", ""),
        "CV F1": _score(r.get("cv_f1_macro")),
        "holdout acc": _score(r.get("holdout_accuracy")),
        "holdout F1": _score(r.get("holdout_f1_macro")),
        "gate": _gate(r),
        "gate reason": (_reason(r)) if wide else _cut(_reason(r), 60),
    } for r in rows]
    return tabulate(table, headers="keys", disable_numparse=True) + "\n\n* = champion (what the API serves)" + \
        ("" if wide else "; WIDE=1 shows each gate reason whole")


def _reason(row: dict[str, Any]) -> str:
    hand = row.get("promoted_by_hand")
    return (f"promoted by hand: {hand['why']}; gate: " if hand else "") + (row.get("gate_reason") or "")


def holdout_line(result: TrainingResult) -> str:
    """The winner's holdout scores with each class's recall, the number an imbalanced class hides in accuracy."""
    h = result.holdout or Holdout()
    recall = ", ".join(f"{c} {r:.2f}" for c, r in sorted(h.recall.items(), key=lambda kv: kv[1]))
    return (f"{result.model or 'winner'} on {h.rows if h.rows is not None else '?'} held-out rows: accuracy {_score(h.accuracy)}, "
            f"macro F1 {_score(h.f1_macro)}; recall per class (lowest first): {recall}")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _served_by(rt: Runtime, version: str, done: str) -> str:
    """When the API serves `version` at the latest; when the stack stopped answering after `done` (what was done to the
    version), that said, not a traceback: the pointer is written, only its effect on the API is unchecked."""
    try:
        seconds = rt.refresh_seconds()
    except (BotoCoreError, ClientError) as err:
        return f"version {version} is {done}; whether the API serves it could not be checked: {err}"
    by = datetime.now(UTC) + timedelta(seconds=seconds)
    return (f"the API serves {version} from {by:%H:%M:%S} UTC at the latest "
            f"(each function instance re-reads the champion every {seconds:g} s)")


def follow_logs(rt: Runtime, lines: int, raw: bool) -> None:
    """Print the predictor's last lines, then new ones as they arrive, until Ctrl-C."""
    def event_id(e: dict[str, Any]) -> str:
        return e.get("eventId") or f"{e['timestamp']}{e['message']}"

    seen: set[str] = set()
    start_ms = None
    print("==> predictor function (CloudWatch Logs), following; Ctrl-C stops", flush=True)
    first = True
    while True:
        fresh = [e for e in rt.function_log_events(start_ms) if event_id(e) not in seen]
        for e in fresh[-lines:] if first else fresh:
            line = e["message"].rstrip() if raw else render(e["message"])
            if line:
                print(line, flush=True)
        seen.update(event_id(e) for e in fresh)
        start_ms = max([start_ms or 0, *(e["timestamp"] for e in fresh)]) or None
        first = False
        time.sleep(1.0)  # a person is watching: one CloudWatch read a second, until Ctrl-C


def _local() -> tuple[Runtime, dict[str, Any]]:
    """The running local stack's runtime and what `up` recorded of it (an error that says so when it is not running)."""
    rt = runtime_for(StackConfig.resolve())
    return rt, rt.require_running()


def _deployer(yes: bool):
    from deployer.deploy import DeployConfig, Deployer, prompt

    return Deployer(DeployConfig(), (lambda _: True) if yes else prompt)


def _png(path: Path | None, draw: Callable[[Path], Path]) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"\nchart written to {draw(path)}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, help=__doc__)
def ops() -> None:
    pass


# -- the local stack ---------------------------------------------------------------------------------------------------

@ops.command()
def up() -> int:
    """Start and provision the stack, train a first model, warm the function."""
    cfg = StackConfig.resolve()
    rt = runtime_for(cfg)
    other = runtime_for(cfg.model_copy(update={"stack": "compose" if rt.name == "embedded" else "embedded"}))
    if cfg.recorded().get("runtime") == other.name and other.running():
        raise StackError(f"the {other.name} stack is running; `make down` stops it before `make up STACK={rt.name}`")
    if cfg.recorded().get("runtime") == rt.name and cfg.recorded().get("emulator_port") not in (None, cfg.emulator_port) \
            and runtime_for(StackConfig.resolve(stack=rt.name, emulator_port=cfg.recorded()["emulator_port"])).running():
        raise StackError(f"the stack is running on port {cfg.recorded()['emulator_port']}; `make down` first to move it")
    log.info("%s", rt.description)
    started = time.perf_counter()
    info = rt.up()
    log.info("ready in %.1fs", time.perf_counter() - started)
    print(summary(info, rt))
    return 0


@ops.command()
@click.option("--purge", is_flag=True, help="also delete the stack's state (compose: its volume)")
def down(purge: bool) -> int:
    """Stop what `up` started (state is kept)."""
    rt = runtime_for(StackConfig.resolve())
    print("stopped" if rt.down(purge=purge) else f"the {rt.name} stack was not running")
    return 0


@ops.command()
def status() -> int:
    """Is the stack up: runtime, ports, what answers, the model served."""
    print(runtime_for(StackConfig.resolve()).status())
    return 0


@ops.command()
def info() -> int:
    """How to use the running stack."""
    rt, recorded = _local()
    print(summary(recorded, rt))
    return 0


@ops.command()
@click.option("--lines", type=int, default=40, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="keep printing new predictor log lines (Ctrl-C stops)")
@click.option("--raw", is_flag=True, help="the function's JSON lines as they are")
def logs(lines: int, follow: bool, raw: bool) -> int:
    """Emulator, frontend and predictor-function logs."""
    rt, _ = _local()
    for name, text in rt.service_logs(lines):
        print(f"==> {name}\n{text}")
    if follow:
        follow_logs(rt, lines, raw)
        return 0
    print("==> predictor function (CloudWatch Logs)")
    shown = [line for line in (m if raw else render(m) for m in rt.function_logs(lines)) if line]
    print("\n".join(shown) or "(no log events yet)")
    return 0


@ops.command()
def images() -> int:
    """The images at this revision, built when missing, with progress (make test-compose builds them first, outside any
    test's timeout); says so and does nothing without podman or docker."""
    import shutil

    from devstack.compose import Compose

    if not (shutil.which("podman") or shutil.which("docker")):
        print("no podman or docker here: no image to build (the compose suite skips; `bash containers/podman.sh setup` installs Podman)")
        return 0
    started = time.perf_counter()
    Compose(StackConfig.resolve(stack="compose")).prepare_images()
    print(f"images ready in {time.perf_counter() - started:.0f} s")
    return 0


# -- models: the trainer's commands, run by the stack's runtime --------------------------------------------------------

@ops.command()
@click.option("--no-promote", is_flag=True)
@click.option("--metric", type=click.Choice(["accuracy", "f1_macro", "log_loss"]), help="choose the winner on this CV score (default f1_macro)")
def train(no_promote: bool, metric: str | None) -> int:
    """Train on the running stack; promote if the gate passes."""
    rt, _ = _local()
    # without DATASET=name: the champion's own dataset, as the schedule trains it (not whatever the default names)
    follow = [] if "dataset_prefix" in StackConfig.resolve().model_fields_set else ["--follow-champion"]
    result = TrainingResult.parse(rt.trainer_result(["train", *follow, *(["--no-promote"] if no_promote else []),
                                                     *(["--metric", metric] if metric else [])]))
    print("\n".join(decision_lines(result)))  # as `sommelier train` says it
    if result.holdout:
        print(holdout_line(result))
    if result.unchecked:
        print(f"not checked: {result.unchecked}")
    if result.promoted and result.champion not in (None, result.version):
        print(f"but {result.champion} was promoted after it (another run or a person): that is what the API serves")
    elif result.promoted and result.version:
        print(_served_by(rt, result.version, "trained and promoted"))
    return 0


@ops.command()
@click.argument("version")
@click.option("--yes", is_flag=True, help="confirm a promotion that changes the API's input or classes")
@click.option("--why", help="why you promote it (recorded, signed, in the version's manifest)")
def promote(version: str, yes: bool, why: str | None) -> int:
    """Make VERSION the champion (its artifacts are verified first)."""
    rt, _ = _local()
    pointer = Champion.parse(rt.trainer_result(["promote", version, *(["--yes"] if yes else []), "--by", getpass.getuser(),
                                                *(["--why", why] if why else [])]))
    print(f"champion: {pointer.version} (was {pointer.previous})\n{_served_by(rt, pointer.version, 'promoted')}")
    return 0


@ops.command()
def rollback() -> int:
    """Restore the champion before the current one."""
    rt, _ = _local()
    pointer = Champion.parse(rt.trainer_result(["rollback"]))
    print(f"rolled back: the champion is {pointer.version} again ({pointer.reason})\n{_served_by(rt, pointer.version, 'the champion again')}")
    return 0


@ops.command("canary-evaluate")
def canary_evaluate() -> int:
    """Promote the candidate model on trial, or roll it back, on live evidence."""
    rt, _ = _local()
    outcome = rt.trainer_result(["canary-evaluate"])
    print({"none": "no candidate on trial", "wait": f"candidate {outcome.get('version')}: no decision yet ({outcome['reason']})",
           "promote": f"candidate {outcome.get('version')} promoted: {outcome['reason']}",
           "rollback": f"candidate {outcome.get('version')} rolled back: {outcome['reason']}"}[outcome["decision"]])
    return 0


@ops.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable")
@click.option("--wide", is_flag=True, help="each gate reason whole")
def history(as_json: bool, wide: bool) -> int:
    """Every model version, newest first."""
    rt, _ = _local()
    rows = rt.trainer_result(["history"])
    print(json.dumps(rows, indent=2) if as_json else history_table(rows, wide))
    return 0


# -- watching: the monitoring function and the metrics ---------------------------------------------------------------

@ops.command()
@click.option("--since", default="24h", show_default=True, help="the window: 24h, 7d, 90m")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="also draw the report")
def monitor(since: str, png: Path | None) -> int:
    """Compare the champion's recent predictions with its training data (the monitoring function)."""
    from sommelier_client.monitoring import MonitorError, chart, invoke, text

    rt, recorded = _local()
    try:
        report = invoke(rt.aws("lambda", read_timeout=330), recorded["outputs"]["MonitorFunctionName"], since)
    except MonitorError as err:
        raise StackError(str(err)) from None
    print(text(report))
    _png(png, lambda path: chart(report, path))
    return 0


@ops.command()
@click.option("--hours", type=float, default=1, show_default=True)
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path))
def metrics(hours: float, png: Path | None) -> int:
    """The last hour's custom metrics."""
    from sommelier_client.observe import chart, fetch
    from sommelier_client.observe import summary as metric_summary

    rt, _ = _local()
    data = fetch(rt.aws("cloudwatch"), hours)
    print(f"Sommelier metrics, last {hours:g} h\n")
    print(tabulate(metric_summary(data), headers=["metric", "value"]))
    _png(png, lambda path: chart(data, path))
    return 0


# -- a real account ----------------------------------------------------------------------------------------------------

@ops.command()
@click.option("--yes", is_flag=True, help="execute change sets without asking")
def deploy(yes: bool) -> int:
    """Deploy the images and template to the AWS account of your credentials (DEPLOY_* settings)."""
    _deployer(yes).deploy()
    return 0


@ops.command()
@click.option("--yes", is_flag=True)
@click.option("--purge", is_flag=True, help="also empty and delete the data, model and page buckets")
def destroy(yes: bool, purge: bool) -> int:
    """Delete the deployed stacks (data buckets kept unless --purge)."""
    _deployer(yes).destroy(purge=purge)
    return 0


@ops.command("train-task")
def train_task() -> int:
    """Run the trainer image as the stack's ECS Fargate task and follow its logs (the running local stack's; DEPLOYED=1 for
    the deployed stack's)."""
    if not os.environ.get("DEPLOYED"):
        local = runtime_for(StackConfig.resolve())
        if local.running():
            local.require_running()
            return local.train_task()
    return _deployer(False).train_task()


@ops.command()
def rehearse() -> int:
    """make deploy against a fresh emulator standing in for an account, then the full suite."""
    from deployer.rehearsal import rehearse as rehearsal

    return rehearsal()


def main(argv: list[str] | None = None) -> int:
    """The click group, with the errors a person reads as one line (and the exit code a make target returns)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        code = ops.main(args=argv, prog_name="python -m ops", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as err:  # --help
        return err.exit_code
    except click.ClickException as err:  # a usage error: click's own message
        err.show()
        return err.exit_code
    except click.Abort:
        return 130
    except AlreadyReported as err:
        return err.exit_code
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `make history | head -5`: the reader has all it wanted
        from sommelier_client.cli import quiet_closed_stdout

        quiet_closed_stdout()
        return 0
    except OSError as err:
        if err.errno != errno.ENOSPC:
            return _unexpected(err)
        print(f"error: {disk_full(err)}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the one place that turns the unexpected into one line
        return _unexpected(err)


def disk_full(err: OSError) -> str:
    """A full disk in one line: what could not be written, and the free space where it was (ENOSPC)."""
    path = Path(err.filename or StackConfig().state_dir)
    folder = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(folder).free
    return (f"the disk is full: {err.filename or 'a file'} could not be written ({free / 2**20:.1f} MiB free on the filesystem "
            f"of {folder}); free some space there, then run the command again")


def _unexpected(err: Exception) -> int:
    where = StackConfig().logs_dir / "devstack.log"
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        with open(where, "a") as f:
            f.write(f"{datetime.now(UTC).isoformat()} {sys.argv}\n{traceback.format_exc()}\n")
    except OSError:  # the log cannot be written either: the traceback goes where the message goes
        traceback.print_exc()
        where = None
    print(f"error: {type(err).__name__}: {err}\n(the stack may be down or half-started: `make status`"
          f"{f'; traceback in {where}' if where else ''})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

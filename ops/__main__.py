"""`python -m ops COMMAND`: every make target that touches a stack, local or deployed.

Commands after `up` find the stack through .sommelier/stack.json (runtime and ports), so
`make up EMULATOR_PORT=4577` is the only place a port is given. Errors are one line that
says what to do; a traceback goes to .sommelier/logs/devstack.log, never to the terminal.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tabulate import tabulate

from devstack import runtime_for
from devstack.config import StackConfig
from devstack.logview import render
from devstack.runtime import AlreadyReported, Runtime, StackError, summary
from sommelier_client.cli import decision_lines
from sommelier_contract.results import Holdout, TrainingResult

log = logging.getLogger("devstack")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start and provision the stack, train a first model, warm the function")
    down = sub.add_parser("down", help="stop what `up` started (state is kept)")
    down.add_argument("--purge", action="store_true", help="also delete the stack's state (compose: its volume)")
    sub.add_parser("status", help="is the stack up: runtime, ports, what answers, the model served")
    sub.add_parser("info", help="how to use the running stack")
    logs = sub.add_parser("logs", help="emulator, frontend and predictor-function logs")
    logs.add_argument("--lines", type=int, default=40)
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new predictor log lines (Ctrl-C stops)")
    logs.add_argument("--raw", action="store_true", help="the function's JSON lines as they are")
    train = sub.add_parser("train", help="train on the running stack; promote if the gate passes")
    train.add_argument("--no-promote", action="store_true")
    train.add_argument("--metric", choices=["accuracy", "f1_macro", "log_loss"], help="choose the winner on this CV score (default f1_macro)")
    promote = sub.add_parser("promote", help="make VERSION the champion (its artifacts are verified first)")
    promote.add_argument("version")
    promote.add_argument("--yes", action="store_true", help="confirm a promotion that changes the API's input or classes")
    promote.add_argument("--why", help="why you promote it (recorded, signed, in the version's manifest)")
    sub.add_parser("rollback", help="restore the champion before the current one")
    sub.add_parser("canary-evaluate", help="promote the candidate model on trial, or roll it back, on live evidence")
    monitor = sub.add_parser("monitor", help="compare the champion's recent predictions with its training data (the monitoring function)")
    monitor.add_argument("--since", default="24h", help="the window: 24h, 7d, 90m")
    monitor.add_argument("--png", type=Path, help="also draw the report")
    history = sub.add_parser("history", help="every model version, newest first")
    history.add_argument("--json", action="store_true", help="machine-readable")
    history.add_argument("--wide", action="store_true", help="each gate reason whole")
    deploy = sub.add_parser("deploy", help="deploy the images and template to the AWS account of your credentials (DEPLOY_* settings)")
    deploy.add_argument("--yes", action="store_true", help="execute change sets without asking")
    destroy = sub.add_parser("destroy", help="delete the deployed stacks (data buckets kept unless --purge)")
    destroy.add_argument("--yes", action="store_true")
    destroy.add_argument("--purge", action="store_true", help="also empty and delete the data, model and page buckets")
    sub.add_parser("images", help="the images at this revision, built when missing, with progress (make test-compose builds "
                                  "them first, outside any test's timeout); says so and does nothing without podman or docker")
    sub.add_parser("train-task", help="run the trainer image as the deployed stack's ECS Fargate task and follow its logs")
    sub.add_parser("rehearse", help="make deploy against a fresh emulator standing in for an account, then the full suite")
    metrics = sub.add_parser("metrics", help="the last hour's custom metrics")
    metrics.add_argument("--hours", type=float, default=1)
    metrics.add_argument("--png", type=Path)
    return parser


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


def _served_by(rt: Runtime, version: str) -> str:
    seconds = rt.refresh_seconds()
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


def images() -> int:
    """The images the compose stack runs (sommelier/*:<revision>), built when missing."""
    import shutil

    from devstack.compose import Compose

    if not (shutil.which("podman") or shutil.which("docker")):
        print("no podman or docker here: no image to build (the compose suite skips; `bash containers/podman.sh setup` installs Podman)")
        return 0
    started = time.perf_counter()
    Compose(StackConfig.resolve(stack="compose")).prepare_images()
    print(f"images ready in {time.perf_counter() - started:.0f} s")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "train-task" and not os.environ.get("DEPLOYED"):
        local = runtime_for(StackConfig.resolve())
        if local.running():  # the running local stack's task; DEPLOYED=1 for the deployed stack's
            local.require_running()
            return local.train_task()
    if args.command in ("deploy", "destroy", "train-task"):
        from deployer.deploy import DeployConfig, Deployer, prompt

        deployer = Deployer(DeployConfig(), (lambda _: True) if getattr(args, "yes", False) else prompt)
        if args.command == "deploy":
            deployer.deploy()
        elif args.command == "train-task":
            return deployer.train_task()
        else:
            deployer.destroy(purge=args.purge)
        return 0
    if args.command == "images":
        return images()
    if args.command == "rehearse":
        from deployer.rehearsal import rehearse

        return rehearse()
    cfg = StackConfig.resolve()
    rt = runtime_for(cfg)
    command = args.command
    if command == "up":
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
    if command == "down":
        print("stopped" if rt.down(purge=args.purge) else f"the {rt.name} stack was not running")
        return 0
    if command == "status":
        print(rt.status())
        return 0
    info = rt.require_running()
    if command == "info":
        print(summary(info, rt))
    elif command == "logs":
        for name, text in rt.service_logs(args.lines):
            print(f"==> {name}\n{text}")
        if args.follow:
            follow_logs(rt, args.lines, args.raw)
        else:
            print("==> predictor function (CloudWatch Logs)")
            lines = [line for line in (m if args.raw else render(m) for m in rt.function_logs(args.lines)) if line]
            print("\n".join(lines) or "(no log events yet)")
    elif command == "train":
        # without DATASET=name: the champion's own dataset, as the schedule trains it (not whatever the default names)
        follow = [] if "dataset_prefix" in cfg.model_fields_set else ["--follow-champion"]
        result = TrainingResult.parse(rt.trainer_result(["train", *follow, *(["--no-promote"] if args.no_promote else []),
                                                         *(["--metric", args.metric] if args.metric else [])]))
        print("\n".join(decision_lines(result)))  # as `sommelier train` says it
        if result.holdout:
            print(holdout_line(result))
        if result.promoted and result.champion not in (None, result.version):
            print(f"but {result.champion} was promoted after it (another run or a person): that is what the API serves")
        elif result.promoted and result.version:
            print(_served_by(rt, result.version))
    elif command == "promote":
        pointer = rt.trainer_result(["promote", args.version, *(["--yes"] if args.yes else []), "--by", getpass.getuser(),
                                     *(["--why", args.why] if args.why else [])])
        print(f"champion: {pointer['version']} (was {pointer.get('previous')})\n{_served_by(rt, pointer['version'])}")
    elif command == "rollback":
        pointer = rt.trainer_result(["rollback"])
        print(f"rolled back: the champion is {pointer['version']} again ({pointer['reason']})\n{_served_by(rt, pointer['version'])}")
    elif command == "canary-evaluate":
        outcome = rt.trainer_result(["canary-evaluate"])
        print({"none": "no candidate on trial", "wait": f"candidate {outcome.get('version')}: no decision yet ({outcome['reason']})",
               "promote": f"candidate {outcome.get('version')} promoted: {outcome['reason']}",
               "rollback": f"candidate {outcome.get('version')} rolled back: {outcome['reason']}"}[outcome["decision"]])
    elif command == "history":
        rows = rt.trainer_result(["history"])
        print(json.dumps(rows, indent=2) if args.json else history_table(rows, args.wide))
    elif command == "monitor":
        from sommelier_client.monitoring import MonitorError, invoke, text
        from sommelier_client.monitoring import chart as monitor_chart

        lam = rt.aws("lambda", read_timeout=330)
        try:
            report = invoke(lam, info["outputs"]["MonitorFunctionName"], args.since)
        except MonitorError as err:
            raise StackError(str(err)) from None
        print(text(report))
        if args.png:
            args.png.parent.mkdir(parents=True, exist_ok=True)
            print(f"\nchart written to {monitor_chart(report, args.png)}")
    elif command == "metrics":
        from sommelier_client.observe import chart, fetch
        from sommelier_client.observe import summary as metric_summary

        data = fetch(rt.aws("cloudwatch"), args.hours)
        print(f"Sommelier metrics, last {args.hours:g} h\n")
        print(tabulate(metric_summary(data), headers=["metric", "value"]))
        if args.png:
            args.png.parent.mkdir(parents=True, exist_ok=True)
            print(f"\nchart written to {chart(data, args.png)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        return run(args)
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
    except Exception as err:  # noqa: BLE001 - the one place that turns the unexpected into one line
        where = StackConfig().logs_dir / "devstack.log"
        where.parent.mkdir(parents=True, exist_ok=True)
        with open(where, "a") as f:
            f.write(f"{datetime.now(UTC).isoformat()} {sys.argv}\n{traceback.format_exc()}\n")
        print(f"error: {type(err).__name__}: {err}\n(the stack may be down or half-started: `make status`; traceback in {where})",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m devstack up|down|status|logs|train`: the embedded runtime's commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from devstack import runner
from devstack.config import StackConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start and provision the embedded stack")
    sub.add_parser("down", help="stop every process `up` started")
    sub.add_parser("status", help="show the stack's processes")
    summary = sub.add_parser("summary", help="print how to use a stack from its stack.json (the compose path uses this)")
    summary.add_argument("file")
    summary.add_argument("--frontend-url", required=True)
    logs = sub.add_parser("logs", help="show emulator, function and frontend logs")
    logs.add_argument("--lines", type=int, default=40)
    trainer = sub.add_parser("trainer", help="run the trainer CLI (train, promote, rollback, history) against the running stack")
    trainer.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    cfg = StackConfig()
    try:
        if args.command == "up":
            print(runner.summary(runner.up(cfg), cfg.frontend_url, "embedded runtime: MiniStack as a local process, no Docker",
                                 cfg.stack_info_file))
        elif args.command == "down":
            print("stopped" if runner.down(cfg) else "the embedded stack was not running")
        elif args.command == "summary":
            info = json.loads(Path(args.file).read_text())
            print(runner.summary(info, args.frontend_url, "Docker Compose + LocalStack"))
        elif args.command == "status":
            print(runner.status(cfg))
        elif args.command == "logs":
            for name in ("emulator", "frontend"):
                print(f"==> {name} ({cfg.logs_dir / f'{name}.log'})")
                print(runner.tail(cfg.logs_dir / f"{name}.log", args.lines))
            print("==> predictor function (CloudWatch Logs)")
            if runner.Supervisor(cfg).pid():
                print("\n".join(runner.function_logs(cfg, args.lines)) or "(no log events yet)")
            else:
                print("(the stack is not running: start it with `make up` to read CloudWatch Logs)")
        elif args.command == "trainer":
            if not runner.Supervisor(cfg).pid():
                raise runner.StackError("the stack is not running; start it with `make up`")
            runner.train(cfg, *args.args)
    except runner.StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

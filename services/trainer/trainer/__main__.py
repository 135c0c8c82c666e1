"""`python -m trainer`: train (the ECS task's and `make train`'s entry point), promote, rollback, history.

Results are JSON on stdout (devstack renders them); progress and errors go to stderr."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from datetime import UTC, datetime

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sommelier_contract import pointers
from sommelier_contract.artifacts import ArtifactRejected
from sommelier_contract.dataset import DataError
from sommelier_contract.results import Holdout, TrainingResult
from trainer import artifacts, release
from trainer.compare import METRICS
from trainer.config import Settings
from trainer.publish import Unfinished
from trainer.train import run


def _print(doc: object) -> None:
    json.dump(doc, sys.stdout, indent=2, default=lambda o: o.doc() if hasattr(o, "doc") else str(o))  # a pointer: its document
    sys.stdout.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trainer", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train, evaluate and (if the gate passes) promote a model (the default)")
    train.add_argument("--if-no-champion", action="store_true", help="train only when no model has been promoted yet")
    train.add_argument("--no-promote", action="store_true", help="write the artifacts but never move the champion")
    train.add_argument("--follow-champion", action="store_true",
                       help="train the champion's own dataset (as the schedule does), not DATASET_PREFIX's")
    train.add_argument("--metric", choices=sorted(METRICS), help="choose the winner on this CV score (default: SELECTION_METRIC, f1_macro)")
    promote = sub.add_parser("promote", help="make VERSION the champion (its artifacts are verified first)")
    promote.add_argument("version")
    promote.add_argument("--yes", action="store_true", help="confirm a promotion that changes the API's input or classes")
    promote.add_argument("--by", help="who promotes (recorded in the signed manifest; default: this user)")
    promote.add_argument("--why", default="no reason given", help="why (recorded in the signed manifest)")
    sub.add_parser("rollback", help="restore the champion before the current one")
    sub.add_parser("history", help="every model version (scores, gate decision, champion marker), newest first")
    sub.add_parser("champions", help="every champion pointer ever written, newest first")
    sub.add_parser("canary-evaluate", help="promote the candidate on trial, or roll it back, on live evidence")
    args = parser.parse_args(argv or None)
    command = args.command or "train"
    if os.environ.get("LOG_FORMAT") == "json":  # the container (ECS task) logs JSON, like the function
        from aws_lambda_powertools import Logger

        Logger(service="trainer", stream=sys.stderr)  # stdout carries the JSON result
    else:  # a person at a terminal reads progress lines
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    settings = Settings()
    s3 = boto3.client("s3")
    now = datetime.now(UTC).isoformat()
    try:
        if command == "train":
            if getattr(args, "metric", None):
                settings = settings.model_copy(update={"selection_metric": args.metric})
            outcome = run(settings, s3, boto3.client("cloudwatch"), only_if_no_champion=args.if_no_champion,
                          promote=not args.no_promote, follow_champion=args.follow_champion)
            holdout = outcome.metrics.holdout if outcome.metrics else None  # None: a champion exists, nothing was trained
            unchecked, now_serving = outcome.unchecked, None
            try:
                now_serving = pointers.read_champion(s3, settings.model_bucket)  # another run may have promoted after this one
            except (BotoCoreError, ClientError) as err:
                unchecked = "; ".join(filter(None, [unchecked, f"which version is the champion now could not be read ({err})"]))
            _print(TrainingResult(version=outcome.version, promoted=outcome.promoted, reason=outcome.reason,
                                  champion=now_serving.version if now_serving else None, quarantined=len(outcome.quarantined),
                                  model=outcome.model, unchecked=unchecked,
                                  holdout=Holdout(accuracy=holdout.accuracy, f1_macro=holdout.f1_macro, rows=holdout.rows,
                                                  recall={c: round(m["recall"], 3) for c, m in holdout.per_class.items()}) if holdout else None))
        elif command == "promote":
            _print(release.promote(settings, s3, args.version, by=args.by or getpass.getuser(), why=args.why, confirmed=args.yes, now=now))
        elif command == "rollback":
            _print(release.rollback(settings, s3, now))
        elif command == "history":
            _print(artifacts.versions(s3, settings.model_bucket))
        elif command == "canary-evaluate":
            from trainer.canary import evaluate

            _print(evaluate(settings, s3, boto3.client("cloudwatch"), datetime.now(UTC)))
        elif command == "champions":
            _print(list(pointers.champion_history(s3, settings.model_bucket)))
    except (DataError, ArtifactRejected, release.NeedsConfirmation) as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201 - a CLI's error message
        return 2
    except (Unfinished, BotoCoreError, ClientError) as err:  # S3 unreachable or refusing (Unfinished: while a version was written,
        # saying what is known): say which, without a traceback
        print(f"error: {err}", file=sys.stderr)  # noqa: T201
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

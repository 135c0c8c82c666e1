"""`python -m trainer`: one training run (the ECS task's and `make train`'s entry point)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import boto3

from trainer.config import Settings
from trainer.data import DataError
from trainer.train import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trainer", description=__doc__)
    parser.add_argument("--if-no-champion", action="store_true", help="train only when no model has been promoted yet")
    parser.add_argument("--no-promote", action="store_true", help="write the artifacts but never move the champion")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    settings = Settings()
    try:
        outcome = run(settings, boto3.client("s3"), only_if_no_champion=args.if_no_champion, promote=not args.no_promote)
    except DataError as err:
        logging.getLogger("trainer").error("training failed: %s", err)
        return 2
    json.dump({"version": outcome.version, "promoted": outcome.promoted, "reason": outcome.reason}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

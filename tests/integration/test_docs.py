"""The README's and docs' commands, run as a reader types them against the suite's stack (issue 37): every `$ ` line of
every console block is run here, or named below with the reason it is not, so a command added to the docs fails this
test until it runs or says why not. Run from a folder of the reader's kind: `.sommelier/` (the stack), `.venv/`, and
their data files made from the dataset the stack's champion was trained on."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from sommelier_contract import layout

from .conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# a command as the docs write it (comment left out) -> why the suite does not run it as written
NOT_HERE = {
    "make up": "starts a stack: the suite's own is up (test_lifecycle: a second `up` changes nothing)",
    "make test": "this is `make test`",
    "make up EMULATOR_PORT=4577 FRONTEND_PORT=8091": "starts a stack on given ports (test_commands: commands find them after)",
    "make train": "trains and may promote (test_training trains through the same function)",
    "make train METRIC=accuracy": "trains and may promote (test_training)",
    "make train DATASET=reviews": "needs the reader's reviews dataset pushed (test_real_shape trains a file of its shape)",
    "make rollback": "changes the champion (test_lifecycle)",
    "make promote VERSION=<version> WHY=\"…\"": "a placeholder version (test_lifecycle promotes by hand)",
    "make logs FOLLOW=1": "follows until Ctrl-C",
    "make down": "stops the stack (test_lifecycle)",
    "make clean": "deletes the stack's state",
    "make images": "builds the images (make test-compose)",
    "make up STACK=compose EMULATOR_PORT=4590 FRONTEND_PORT=8095": "the compose stack (make test-compose)",
    "make status; make history; make train; make logs": "against the compose stack (make test-compose)",
    "make test-compose": "the compose suite itself",
    "export AWS_PROFILE=my-admin AWS_REGION=eu-west-1 DEPLOY_ACCOUNT_ID=123456789012": "an AWS account (make deploy-rehearsal)",
    "make deploy": "an AWS account (make deploy-rehearsal rehearses it against an emulator)",
    "make train-task DEPLOYED=1": "an AWS account",
    "make destroy": "an AWS account (make deploy-rehearsal)",
    "make destroy PURGE=1": "an AWS account (make deploy-rehearsal)",
    ".venv/bin/sommelier dataset push winemag.csv --name reviews --target country":
        "the reader's download (test_real_shape pushes a file of its shape, cut-off last line included)",
    ".venv/bin/sommelier dataset push reviews.csv --name reviews --target country": "the reader's file (test_datasets pushes one)",
    ".venv/bin/sommelier train --dataset reviews": "needs the reader's reviews dataset (test_datasets trains a pushed one)",
    ".venv/bin/sommelier predict -f alcohol=13.2 -f malic_acid=1.78 …": "elided (…): the wine model's features, named as such",
    ".venv/bin/sommelier feedback <prediction id> class_1": "a placeholder id (test_api and test_browser send feedback)",
}
# a command as the docs write it -> what runs for it here
AS_RUN = {
    "make promote VERSION=nope": "make promote VERSION=nope && exit 1 || true",  # the README shows it refused
    ".venv/bin/sommelier dataset list; .venv/bin/sommelier dataset show reviews": ".venv/bin/sommelier dataset list",
}


def doc_commands() -> list[tuple[str, int, str]]:
    """(file, line, command) of every `$ ` line in a console block, continuation lines joined, the comment left out."""
    out = []
    for path in DOCS:
        lines, inside = path.read_text().splitlines(), False
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("```"):
                inside = line.strip() == "```console" and not inside
            elif inside and line.startswith("$ "):
                start, command = i + 1, line[2:]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1].rstrip() + " " + lines[i].strip()
                out.append((path.relative_to(ROOT).as_posix(), start, re.split(r"\s{2,}# ", command, maxsplit=1)[0].strip()))
            i += 1
    return out


def test_every_command_in_the_docs_is_run_here_or_says_why_not():
    commands = {c for _, _, c in doc_commands()}
    assert len(commands) > 30, "the docs' console blocks were not found"
    assert not set(NOT_HERE) - commands, f"NOT_HERE names commands the docs no longer have: {set(NOT_HERE) - commands}"
    assert not set(AS_RUN) - commands, f"AS_RUN names commands the docs no longer have: {set(AS_RUN) - commands}"


@pytest.fixture(scope="module")
def reader(stack, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder as a reader has it after `make up`, with the champion's own training file as wines.csv and labelled.csv."""
    if stack.config is None:
        pytest.skip("needs the embedded stack this session started (its state directory)")
    home = tmp_path_factory.mktemp("reader")
    for name, target in ((".sommelier", stack.config.state_dir), (".venv", ROOT / ".venv"), ("examples", ROOT / "examples")):
        (home / name).symlink_to(target)
    s3, bucket = stack.client("s3"), stack.outputs["ModelBucketName"]
    version = json.loads(s3.get_object(Bucket=bucket, Key=layout.CHAMPION_KEY)["Body"].read())["version"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=layout.manifest_key(version))["Body"].read())
    source = next(s for s in manifest["dataset"]["sources"] if s["key"].endswith("data.csv"))
    body = s3.get_object(Bucket=source["bucket"], Key=source["key"], VersionId=source["version_id"])["Body"].read()
    rows = pd.read_csv(io.BytesIO(body)).head(40)
    rows.to_csv(home / "labelled.csv", index=False)
    rows.drop(columns=[manifest["target"]]).to_csv(home / "wines.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOMMELIER_", "AWS_"))}
    return home, {**env, "SOMMELIER_STATE_DIR": str(stack.config.state_dir)}


def _runnable(doc: str) -> list[str]:
    return [AS_RUN.get(c, c) for f, _, c in doc_commands() if f == doc and c not in NOT_HERE]


@pytest.mark.parametrize("doc", [d for d in dict.fromkeys(f for f, _, _ in doc_commands()) if _runnable(d)])
def test_the_docs_commands_run_as_written(reader, doc):
    """Each file's runnable commands in order, in one shell (a variable one line sets, the next uses), failing at the
    first that fails; `make` runs the repository's Makefile against the suite's stack."""
    home, env = reader
    if any(re.search(r"(^|\| )curl ", c) for c in _runnable(doc)) and not shutil.which("curl"):
        pytest.skip(f"{doc}'s examples call curl, which is not installed here (.ci/run installs it: apt-get install curl)")
    script = "set -euo pipefail\n" + "\n".join(re.sub(r"(^|; )make ", rf"\1make -s -C {ROOT} ", c) for c in _runnable(doc))
    proc = subprocess.run(["bash", "-c", script], cwd=home, env=env, capture_output=True, text=True, timeout=600)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{doc}: a command failed\n{script}\n--- output (last 3000) ---\n{said[-3000:]}"
    assert "Traceback" not in said, said[-3000:]
    if doc == "docs/operations.md":  # the curl examples answered as the docs show
        assert '"label"' in said and '"validation_error"' in said and "is not a feature of this model" in said
    if doc == "README.md":
        assert "nope" in said  # the refused promotion says which version it could not find

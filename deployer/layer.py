"""The predictor's dependency layer, for its SnapStart zip (`make deploy`, DEPLOY_FUNCTIONS_FROM=zip).

SnapStart takes zip functions only, and a zip function with its layers holds at most 250 MB unzipped. The layer is
requirements/predictor-zip.txt (the lock of requirements/predictor-zip.in): what serving needs when ONNX Runtime answers,
without scikit-learn, SciPy and joblib (with them it is ~350 MB). It is installed from wheels for the runtime's Python
(DEPLOY_LAYER_PYTHON: 3.12, AWS's python3.12; the rehearsal gives its emulator's interpreter) and Linux x86_64
(manylinux 2.28 and older: 160 MB unzipped for python3.12, measured 2026-12-07), zipped
reproducibly under python/, put in the code bucket under a key named by the lock, the Python and the platform, and
published as a layer version whose description is that key: a deploy that changed none of them builds and publishes
nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from devstack.config import ROOT
from devstack.runtime import StackError

LOCK = ROOT / "requirements" / "predictor-zip.txt"
# Linux x86_64 wheels Lambda's python3.12 (Amazon Linux 2023, glibc 2.34) runs: numpy 2.4 ships manylinux_2_28 only
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
PLATFORM = PLATFORMS[0]
LIMIT_MB = 250  # Lambda: a function and its layers, unzipped
RUNTIME = "python3.12"  # the predictor function's, in infra/template.yaml
_EPOCH = (2020, 1, 1, 0, 0, 0)


def key(python: str) -> str:
    digest = hashlib.sha256(LOCK.read_bytes() + f"|{python}|{','.join(PLATFORMS)}".encode()).hexdigest()[:16]
    return f"layers/predictor-deps-py{python}-{digest}.zip"


def build(python: str, folder: Path) -> tuple[Path, int]:
    """The layer's zip in `folder` and its unzipped bytes; refused when it would not fit beside the function's code."""
    target = folder / "python"
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--only-binary=:all:",
                           *platforms, "--implementation", "cp", "--python-version", python, "--target", str(target),
                           "--disable-pip-version-check", "-r", str(LOCK)], capture_output=True, text=True)
    if done.returncode != 0:
        said = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location"))
        raise StackError(f"the predictor's layer (Python {python}, {PLATFORM}) could not be installed from "
                         f"{LOCK.relative_to(ROOT)}: {said.strip()[-1500:]}")
    files = sorted(p for p in target.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    size = sum(p.stat().st_size for p in files)
    if size > LIMIT_MB * 10**6:
        raise StackError(f"the predictor's layer is {size / 10**6:.0f} MB unzipped, past Lambda's {LIMIT_MB} MB: "
                         f"deploy the predictor as its image (DEPLOY_FUNCTIONS_FROM=image)")
    out = folder / "layer.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(folder)), _EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as f:
                zf.writestr(info, f.read())
    return out, size


def publish(session: Any, bucket: str, prefix: str, python: str) -> str:
    """The layer version's ARN: the one already published from this key, else built, uploaded and published now."""
    lam, s3 = session.client("lambda"), session.client("s3")
    name, object_key = f"{prefix}-predictor-deps", key(python)
    for page in lam.get_paginator("list_layer_versions").paginate(LayerName=name):
        for version in page.get("LayerVersions", []):
            if version.get("Description") == object_key:
                print(f"    layer {name} version {version['Version']} holds {object_key} already")
                return str(version["LayerVersionArn"])
    try:
        s3.head_object(Bucket=bucket, Key=object_key)
        print(f"    s3://{bucket}/{object_key} is there already")
    except ClientError:
        folder = Path(tempfile.mkdtemp(prefix="sommelier-layer-"))
        try:
            built, size = build(python, folder)
            print(f"    built the predictor's layer for Python {python}: {size / 10**6:.0f} MB unzipped, "
                  f"{built.stat().st_size / 10**6:.0f} MB zipped")
            s3.upload_file(str(built), bucket, object_key)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    published = lam.publish_layer_version(LayerName=name, Description=object_key, Content={"S3Bucket": bucket, "S3Key": object_key},
                                          CompatibleRuntimes=[RUNTIME], CompatibleArchitectures=["x86_64"])
    print(f"    published layer {name} version {published['Version']}")
    return str(published["LayerVersionArn"])

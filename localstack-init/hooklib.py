"""Shared helpers of the provisioning hooks in ready.d/.

The hooks run in two places: inside the LocalStack container (LocalStack executes
`.py` files of /etc/localstack/init/ready.d with its own Python, which has boto3)
and in the embedded runtime, whose runner executes the same files after MiniStack
is healthy. So this module uses the standard library, boto3 and PyYAML only (all three
are in LocalStack's and MiniStack's Pythons), and takes every name from environment variables.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import io
import json
import logging
import os
import pathlib
import py_compile
import re
import tempfile
import zipfile

import boto3
import yaml
from botocore.exceptions import ClientError

log = logging.getLogger("sommelier.init")
if not logging.getLogger().handlers:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s init %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)

# A zip entry's timestamp is part of its bytes; a fixed one makes bundles reproducible.
_ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)


def env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"environment variable {name} is required by the init hooks")
    return value


def session() -> boto3.session.Session:
    # Where the hooks provision is configuration: AWS_ENDPOINT_URL (the emulator container sets
    # http://localhost:4566, the embedded runner its own port); unset, boto3 talks to AWS with the
    # caller's credentials, as `make deploy` runs hooks 20-40.
    return boto3.session.Session(region_name=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1")


def repo_root() -> pathlib.Path:
    return pathlib.Path(env("SOMMELIER_ROOT"))


def function_packages(root: pathlib.Path, name: str) -> list[pathlib.Path]:
    """What a function ships: its own package and the contract it shares with the other services."""
    return [root / "services" / name / name, root / "services" / "contract" / "sommelier_contract"]


@functools.cache
def compiled(name: str, source: bytes) -> bytes:
    """`source` compiled by this interpreter as a checked-hash .pyc (`name`: the module's path in the bundle). A Lambda's
    code folder is read-only, and where PYTHONDONTWRITEBYTECODE is set no process writes a .pyc: without one, every
    cold start compiles each module again (~100 ms of CPU for the predictor's ~30 on 2 cores, issue 39). Checked-hash:
    valid whatever the unzipped files' times, and a changed source is compiled again, never served stale; an
    interpreter of another version (AWS's runtime, where this one is not it) looks for its own tag and ignores it.
    Reproducible: the same bytes for the same source and interpreter."""
    with tempfile.TemporaryDirectory() as scratch:
        src, pyc = pathlib.Path(scratch, "module.py"), pathlib.Path(scratch, "module.pyc")
        src.write_bytes(source)
        py_compile.compile(str(src), cfile=str(pyc), dfile=name, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        return pyc.read_bytes()


def build_bundle(package_dirs: list[pathlib.Path]) -> bytes:
    """Zip Python packages (their .py and .json files, and each module compiled: `compiled`) reproducibly, each rooted
    at its parent."""
    buf = io.BytesIO()
    files = sorted(
        (p, d) for d in package_dirs for p in d.rglob("*") if p.is_file() and p.suffix in {".py", ".json"} and "__pycache__" not in p.parts
    )
    missing = [d for d in package_dirs if not any(owner == d for _, owner in files)]
    if missing:
        raise RuntimeError(f"no source files under {missing[0]}")
    entries = []
    for path, package_dir in files:
        name, data = str(path.relative_to(package_dir.parent)), path.read_bytes()
        entries.append((name, data))
        if path.suffix == ".py":
            entries.append((importlib.util.cache_from_source(name), compiled(name, data)))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, _ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


FUNCTIONS = ("predictor", "trainer", "monitor")  # each a zip of services/<name>/<name> and the contract


def code_parameters(keys: dict[str, str], sha256: dict[str, str]) -> dict[str, str]:
    """The template's parameters that name the functions' zips (upload_bundles' keys)."""
    return {"PredictorCodeKey": keys["predictor"], "PredictorCodeSha256": sha256["predictor"], "TrainerCodeKey": keys["trainer"],
            "MonitorCodeKey": keys["monitor"]}


def upload_bundles(s3, root: pathlib.Path, code_bucket: str) -> tuple[dict[str, str], dict[str, str]]:
    """Zip each function's package, content-addressed, into `code_bucket`: (keys, base64 sha256 as Lambda reports it)."""
    keys, sha256 = {}, {}
    for name in FUNCTIONS:
        bundle = build_bundle(function_packages(root, name))
        digest = hashlib.sha256(bundle)
        keys[name] = f"lambda/{name}-{digest.hexdigest()[:16]}.zip"
        sha256[name] = base64.b64encode(digest.digest()).decode()
        upload_if_changed(s3, code_bucket, keys[name], bundle)
    return keys, sha256


def ensure_bucket(s3, name: str) -> None:
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as err:
        if err.response["Error"]["Code"] not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        log.info("creating bucket %s", name)
        s3.create_bucket(Bucket=name)
        s3.get_waiter("bucket_exists").wait(Bucket=name)


def upload_if_changed(s3, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> bool:
    """Put an object unless one with the same sha256 is already there. Returns True if written."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == digest:
            return False
    except ClientError as err:
        if err.response["Error"]["Code"] not in {"404", "NoSuchKey", "NotFound"}:
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": digest}, ContentType=content_type)
    log.info("uploaded s3://%s/%s (%d bytes)", bucket, key, len(body))
    return True


def template_url(s3, bucket: str, path: pathlib.Path, region: str) -> str:
    """The template uploaded beside the code bundles (content-addressed), as the TemplateURL CloudFormation reads:
    a request's TemplateBody may hold 51,200 bytes, a template in S3 1 MB. Path-style, which AWS and the emulators read."""
    body = path.read_bytes()
    key = f"templates/{path.stem}-{hashlib.sha256(body).hexdigest()[:16]}{path.suffix}"
    upload_if_changed(s3, bucket, key, body, "text/yaml")
    return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"


def write_stack_info(path: pathlib.Path, info: dict) -> None:
    """stack.json, the one way it is written (hook 30 here, devstack after it adds the runtime and ports): owner-only,
    since it holds API keys, and atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, path)


def stack_outputs(cfn, stack_name: str) -> dict[str, str]:
    stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Sub, !Ref, ...) read as their long forms."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def read_template(path: pathlib.Path) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


IMPORTABLE = {"AWS::S3::Bucket": "BucketName", "AWS::DynamoDB::Table": "TableName"}  # type -> its identifier property


def named_resources(template: dict, values: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    """{logical id: (type, identifier property, name)} of the template's buckets and tables whose names are fixed
    (a string or a !Sub of parameters and pseudo parameters), rendered with `values` (e.g. {"Prefix": ..., "AWS::AccountId": ...})."""
    found = {}
    for logical, res in template.get("Resources", {}).items():
        prop = IMPORTABLE.get(res.get("Type", ""))
        name = (res.get("Properties") or {}).get(prop) if prop else None
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
            name = re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), m.group(0)), name["Fn::Sub"])
        if isinstance(name, str) and "${" not in name:
            found[logical] = (res["Type"], prop, name)
    return found

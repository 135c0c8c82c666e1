"""`make deploy` / `make destroy`: the same template and images to an AWS account.

Credentials and the target are configuration: boto3's own chain (AWS_PROFILE, a role, the
instance's), the region from AWS_REGION / AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL when the
"account" is an emulator (the rehearsal). Each step says what it does; every step is
idempotent, so a second deploy with no change changes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, WaiterError
from pydantic_settings import BaseSettings, SettingsConfigDict

from deployer import layer
from devstack.config import ROOT
from devstack.runtime import StackError, container_cli, image_exists, log
from devstack.tasks import default_subnets, parse_pairs, run_training_task
from hooklib import code_parameters, ensure_bucket, template_url, upload_bundles  # the hooks' own helpers: one way to bundle code
from sommelier_contract import layout

_NO_CHANGES = ("didn't contain changes", "No updates are to be performed", "The submitted information didn't contain changes")
_INTERESTING = ("FAILED", "ROLLBACK")


class DeployConfig(BaseSettings):
    """DEPLOY_* variables (or .env beside the Makefile); never a key: credentials come from boto3's chain."""

    model_config = SettingsConfigDict(env_prefix="DEPLOY_", env_file=ROOT / ".env.deploy", extra="ignore", frozen=True)

    stack_name: str = "sommelier"
    prefix: str = "sommelier"
    stage: str = "v1"
    account_id: str = ""  # when set, a deploy to any other account stops before changing anything
    dataset_prefix: str = "datasets/wine"
    # "zip" (the default): the predictor as a zip function with its dependency layer (deployer/layer.py), its published
    # versions restored from a SnapStart snapshot; "image": the predictor as its pushed image (no SnapStart: AWS takes
    # zips only), for a model without an ONNX conversion or word-level explanations. The trainer image goes to ECR for the
    # ECS task either way.
    functions_from: str = "zip"
    layer_python: str = "3.12"  # the Python the layer's wheels are for: AWS's python3.12 (the rehearsal: its emulator's)
    images: bool = True  # false: no image is built or pushed (a machine with no container engine); zip functions, no ECS task
    registry: str = ""  # push here instead of the repositories' own host (an emulator's registry port)
    image_tag: str = ""  # default: the tag `make images` gives this source tree
    stack_parameters: str = ""  # extra template parameters, Key=Value,Key=Value
    smoke: bool = True
    canary: bool = True  # new predictor versions through CodeDeploy (10 % for 5 minutes, alarms roll back); emulators have none
    metrics_sink: str = "emf"  # the predictor's metrics as EMF log lines (AWS turns them into metrics); "api" where they are not
    task_subnets: str = ""  # comma-separated subnets for `make train-task` (default: the default VPC's)
    # Key=Value,... added to the training task's container (the rehearsal: an emulator's test keys; AWS: nothing)
    task_environment: str = ""
    # how `make deploy` trains the first model: "function" (the scheduled training function) or "task" (the trainer
    # image as the ECS task; needs DEPLOY_IMAGES)
    first_model: str = "function"

    @property
    def bootstrap_name(self) -> str:
        return f"{self.stack_name}-bootstrap"

    @property
    def info_file(self) -> Path:
        return ROOT / ".sommelier" / "deploy" / f"{self.stack_name}.json"


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


class Deployer:
    def __init__(self, cfg: DeployConfig, confirm: Callable[[str], bool]):
        self.cfg = cfg
        self.confirm = confirm
        try:
            # boto3 reads AWS_DEFAULT_REGION and profiles; AWS_REGION (what AWS's own tooling sets) too, here
            self.session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
            self.region = self.session.region_name
            if not self.region:
                raise NoRegionError()
        except NoRegionError as err:
            raise StackError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in your AWS_PROFILE)") from err
        self.cfn = self.session.client("cloudformation")
        self.s3 = self.session.client("s3")

    # --- checks -----------------------------------------------------------------------------------
    def whoami(self) -> str:
        try:
            identity = self.session.client("sts").get_caller_identity()
        except NoCredentialsError as err:
            raise StackError("no AWS credentials: set AWS_PROFILE (or assume a role; never put keys in a file here)") from err
        except ClientError as err:
            raise StackError(f"the AWS credentials were refused: {err.response['Error']['Message']}") from err
        account = identity["Account"]
        if self.cfg.account_id and account != self.cfg.account_id:
            raise StackError(f"these credentials are for account {account}, DEPLOY_ACCOUNT_ID says {self.cfg.account_id}: nothing changed")
        return f"account {account} ({identity['Arn']}), region {self.region}" + \
            (f", endpoint {os.environ['AWS_ENDPOINT_URL']}" if os.environ.get("AWS_ENDPOINT_URL") else "")

    # --- CloudFormation through change sets -------------------------------------------------------
    def _status(self, name: str) -> str | None:
        try:
            return self.cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except ClientError as err:
            if "does not exist" in err.response["Error"]["Message"]:
                return None
            raise

    def _events(self, name: str, since: float) -> str:
        events = self.cfn.describe_stack_events(StackName=name).get("StackEvents", [])
        bad = [e for e in events if e["Timestamp"].timestamp() >= since - 1 and any(k in e["ResourceStatus"] for k in _INTERESTING)]
        return "\n".join(f"  {e['LogicalResourceId']}: {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}" for e in reversed(bad[:15]))

    def apply(self, name: str, template: Path, parameters: dict[str, str], capabilities: list[str],
              bucket: str | None = None) -> tuple[bool, dict[str, str]]:
        """Create or update `name` through a change set shown before it runs. (changed?, outputs). With `bucket`, the
        template is read from there (a TemplateBody may hold 51,200 bytes; the main template is larger)."""
        status = self._status(name)
        if status == "ROLLBACK_COMPLETE":  # a failed first create leaves a stack that can only be deleted
            log.info("stack %s is ROLLBACK_COMPLETE from a failed create; deleting it first", name)
            self.cfn.delete_stack(StackName=name)
            self.cfn.get_waiter("stack_delete_complete").wait(StackName=name)
            status = None
        kind = "CREATE" if status is None else "UPDATE"
        change_set = f"deploy-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.cfn.create_change_set(StackName=name, ChangeSetName=change_set, ChangeSetType=kind,
                                   **({"TemplateURL": template_url(self.s3, bucket, template, self.region)} if bucket
                                      else {"TemplateBody": template.read_text()}),
                                   Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                                   Capabilities=capabilities)
        try:
            self.cfn.get_waiter("change_set_create_complete").wait(StackName=name, ChangeSetName=change_set,
                                                                    WaiterConfig={"Delay": 2, "MaxAttempts": 150})
        except WaiterError as err:
            described = self.cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
            reason = described.get("StatusReason", "")
            if any(text in reason for text in _NO_CHANGES):
                self.cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
                print(f"    {name}: no changes")
                return False, self.outputs(name)
            raise StackError(f"change set for {name} failed: {reason}") from err
        changes = self.cfn.describe_change_set(StackName=name, ChangeSetName=change_set).get("Changes", [])
        if not changes:
            self.cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
            print(f"    {name}: no changes")
            return False, self.outputs(name)
        print(f"    {name}: {kind.lower()} with {len(changes)} change(s):")
        for c in changes:
            rc = c["ResourceChange"]
            replace = " (REPLACEMENT)" if rc.get("Replacement") == "True" else ""
            print(f"      {rc['Action']:<7} {rc['LogicalResourceId']:<32} {rc['ResourceType']}{replace}")
        if not self.confirm(f"execute this change set on {name}?"):
            self.cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
            raise StackError(f"not executed; the change set for {name} was deleted and nothing changed")
        started = time.time()
        self.cfn.execute_change_set(StackName=name, ChangeSetName=change_set)
        waiter = "stack_create_complete" if kind == "CREATE" else "stack_update_complete"
        try:
            self.cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 3, "MaxAttempts": 400})
        except WaiterError as err:
            raise StackError(f"{name} did not reach {kind}_COMPLETE (now {self._status(name)}); the events that matter:\n"
                             f"{self._events(name, started)}\nthe stack is left as CloudFormation rolled it back") from err
        return True, self.outputs(name)

    def outputs(self, name: str) -> dict[str, str]:
        stack = self.cfn.describe_stacks(StackName=name)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    # --- images -----------------------------------------------------------------------------------
    def push_images(self, repositories: dict[str, str]) -> dict[str, str]:
        """Build (when missing) and push the predictor and trainer images; returns name -> image URI."""
        tag = self.cfg.image_tag or subprocess.run(["bash", "containers/images.sh", "--tag"], cwd=ROOT, capture_output=True,
                                                   text=True, check=True).stdout.strip()
        engine = container_cli()
        if not all(image_exists(f"sommelier/{n}:{tag}") for n in repositories):
            if subprocess.run(["bash", "containers/images.sh"], cwd=ROOT).returncode != 0:
                raise StackError("`make images` failed; its output is above")
        token = self.session.client("ecr").get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
        uris: dict[str, str] = {}
        uris = {}
        ecr = self.session.client("ecr")
        for name, repository in repositories.items():
            registry, path = repository.split("/", 1)
            try:  # tags are immutable: an image already there under this tag is this tree's image
                found = ecr.describe_images(repositoryName=path, imageIds=[{"imageTag": tag}]).get("imageDetails")
            except ecr.exceptions.ImageNotFoundException:
                found = None
            if found:
                print(f"    {repository}:{tag} is in the registry already")
                uris[name] = f"{repository}:{tag}"
                continue
            target = f"{self.cfg.registry or registry}/{path}:{tag}"
            insecure = ["--tls-verify=false"] if engine == "podman" and self.cfg.registry.startswith(("127.", "localhost")) else []
            login = subprocess.run([engine, "login", *insecure, "--username", user, "--password-stdin", target.split("/", 1)[0]],
                                   input=password, capture_output=True, text=True)
            if login.returncode != 0:
                raise StackError(f"registry login to {target.split('/', 1)[0]} failed: {login.stderr.strip()}")
            subprocess.run([engine, "tag", f"sommelier/{name}:{tag}", target], check=True, capture_output=True)
            if self.cfg.registry:
                # an emulator's registry stands in for ECR: the emulator runs functions and tasks through this engine,
                # which then finds the pushed image under the URI the stack names (Lambda and ECS pull it from ECR)
                subprocess.run([engine, "tag", f"sommelier/{name}:{tag}", f"{repository}:{tag}"], check=True, capture_output=True)
            started = time.perf_counter()
            push = subprocess.run([engine, "push", *insecure, target], capture_output=True, text=True)
            if push.returncode != 0:
                raise StackError(f"pushing {target} failed: {push.stderr.strip()[-1500:]}")
            print(f"    pushed {target} ({time.perf_counter() - started:.0f} s)")
            uris[name] = f"{repository}:{tag}"
        return uris

    # --- the whole deploy -------------------------------------------------------------------------
    def deploy(self) -> dict[str, Any]:
        cfg = self.cfg
        step(f"credentials: {self.whoami()}")
        step(f"bootstrap stack {cfg.bootstrap_name} (image repositories, code bucket)")
        _, boot = self.apply(cfg.bootstrap_name, ROOT / "infra" / "bootstrap.yaml", {"Prefix": cfg.prefix}, [])
        if cfg.images:
            step("images: build (when missing), tag with the git revision, push")
            images = self.push_images({"predictor": boot["PredictorRepositoryUri"], "trainer": boot["TrainerRepositoryUri"]})
        else:
            step("images: skipped (DEPLOY_IMAGES=false): zip functions, no ECS training task")
            images = {"predictor": "", "trainer": ""}
        step(f"code bundles to s3://{boot['CodeBucketName']}")
        ensure_bucket(self.s3, boot["CodeBucketName"])
        keys, sha256 = upload_bundles(self.s3, ROOT, boot["CodeBucketName"])
        zipped, predictor_layer = not (cfg.functions_from == "image" and cfg.images), ""
        if zipped:
            step(f"the predictor's dependency layer (Python {cfg.layer_python}, {layer.PLATFORM}; requirements/predictor-zip.txt)")
            predictor_layer = layer.publish(self.session, boot["CodeBucketName"], cfg.prefix, cfg.layer_python)
        params = {
            "Prefix": cfg.prefix, "StageName": cfg.stage, "CodeBucket": boot["CodeBucketName"],
            **code_parameters(keys, sha256),
            "DatasetPrefix": cfg.dataset_prefix, "DatasetName": cfg.dataset_prefix.strip("/").rsplit("/", 1)[-1],
            "TrainerImageUri": images["trainer"],
            # where the function starts the training task for a dataset too big for it (the ECS task's own subnets)
            "TaskSubnets": self.cfg.task_subnets or (",".join(default_subnets(self.session.client("ec2"))) if images["trainer"] else ""),
            "CanaryDeployments": "true" if cfg.canary else "false",
            "MetricsSink": cfg.metrics_sink,
            "PredictorImageUri": "" if zipped else images["predictor"],
            "PredictorLayerArn": predictor_layer,
        }
        params.update(parse_pairs(cfg.stack_parameters))
        step(f"stack {cfg.stack_name} (infra/template.yaml; predictor from "
             f"{'its image' if params['PredictorImageUri'] else 'the zip and its layer, SnapStart on its versions'})")
        changed, outputs = self.apply(cfg.stack_name, ROOT / "infra" / "template.yaml", params, ["CAPABILITY_NAMED_IAM"],
                                      bucket=boot["CodeBucketName"])
        if changed:  # CloudFormation does not redeploy a stage whose methods changed
            self.session.client("apigateway").create_deployment(restApiId=outputs["RestApiId"], stageName=outputs["StageName"],
                                                                description="make deploy")
        for key, value in sorted(outputs.items()):
            print(f"    {key:<28} {value}")
        step("dataset, stack info, page (localstack-init hooks 20, 30, 40)")
        self._hooks()
        step(f"first model (the training {cfg.first_model}, when no model is promoted)")
        self._first_model(outputs)
        info = json.loads(cfg.info_file.read_text())
        if cfg.smoke:
            step("smoke tests against the deployed stack (pytest -m smoke tests/integration)")
            smoke = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "smoke", "tests/integration", "-p", "no:cacheprovider"],
                                   cwd=ROOT, env={**os.environ, "SOMMELIER_STACK_INFO": str(cfg.info_file)})
            if smoke.returncode != 0:
                raise StackError(f"the smoke tests failed against {cfg.stack_name} (output above); the stack stays as deployed")
        step(f"deployed: API {info['api_url']}  (connection details: {cfg.info_file})")
        return info

    def _hooks(self) -> None:
        cfg = self.cfg
        cfg.info_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SOMMELIER_ROOT": str(ROOT), "SOMMELIER_PREFIX": cfg.prefix, "SOMMELIER_STACK_NAME": cfg.stack_name,
               "SOMMELIER_DATASET_PREFIX": cfg.dataset_prefix, "SOMMELIER_STACK_INFO_FILE": str(cfg.info_file),
               "AWS_DEFAULT_REGION": self.region}
        if os.environ.get("AWS_ENDPOINT_URL"):
            env["SOMMELIER_PUBLIC_ENDPOINT"] = os.environ["AWS_ENDPOINT_URL"]
        for hook in ("20-seed-dataset.py", "30-stack-info.py", "40-publish-frontend.py"):
            proc = subprocess.run([sys.executable, str(ROOT / "localstack-init" / "ready.d" / hook)], env=env, capture_output=True,
                                  text=True)
            if proc.returncode != 0:
                raise StackError(f"{hook} failed:\n{proc.stderr[-2000:]}")

    def _first_model(self, outputs: dict[str, str]) -> None:
        try:
            self.s3.head_object(Bucket=outputs["ModelBucketName"], Key=layout.CHAMPION_KEY)
            print("    a model is promoted already")
            return
        except ClientError:
            pass
        if self.cfg.first_model == "task":
            print("    the trainer image as the ECS task (DEPLOY_FIRST_MODEL=task)")
            self.train_task()
            return
        lam = self.session.client("lambda", config=Config(read_timeout=900, retries={"max_attempts": 0}))
        resp = lam.invoke(FunctionName=outputs["TrainerFunctionName"], Payload=json.dumps({"trigger": "deploy"}).encode())
        body = resp["Payload"].read().decode()
        if resp.get("FunctionError"):
            raise StackError(f"the training function failed: {body[:1500]}")
        print(f"    {body[:300]}")

    def train_task(self) -> int:
        """Run the trainer image as the ECS Fargate task the template defines and follow its logs; returns its exit code."""
        outputs = self.outputs(self.cfg.stack_name)
        subnets = [s for s in self.cfg.task_subnets.split(",") if s] or default_subnets(self.session.client("ec2"))
        return run_training_task(self.session.client("ecs"), self.session.client("logs"), outputs, subnets,
                                 parse_pairs(self.cfg.task_environment), out=lambda line: print(line, flush=True))

    def destroy(self, purge: bool) -> None:
        """The main stack goes; its dataset and model buckets (retained by the template) and the bootstrap
        stack (registry, code bucket) go too only with `purge`."""
        step(f"credentials: {self.whoami()}")
        name, retained, table = self.cfg.stack_name, [], None
        if self._status(name):
            outputs = self.outputs(name)
            retained = [outputs[k] for k in ("DatasetBucketName", "ModelBucketName") if k in outputs]
            table = outputs.get("PredictionsTableName")  # retained too: the predictions' audit trail
            if not self.confirm(f"delete stack {name}{' and all its data' if purge else ''}?"):
                raise StackError("nothing deleted")
            self._empty(outputs.get("FrontendBucketName", ""))  # generated content: republished by the next deploy
            self._delete_stack(name)
        else:
            print(f"    {name}: not deployed")
        if not purge:
            print(f"    kept: the dataset and model buckets, the predictions table, the image registry and code bucket ({self.cfg.bootstrap_name}); "
                  "PURGE=1 deletes them")
            return
        for bucket in retained:
            self._empty(bucket, delete=True)
        if table:
            try:
                self.session.client("dynamodb").delete_table(TableName=table)
                print(f"    deleted table {table}")
            except ClientError as err:
                if err.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        if self._status(self.cfg.bootstrap_name):
            boot = self.outputs(self.cfg.bootstrap_name)
            ecr = self.session.client("ecr")
            for key in ("PredictorRepositoryUri", "TrainerRepositoryUri"):
                repository = boot[key].split("/", 1)[1]
                images = ecr.list_images(repositoryName=repository).get("imageIds", [])
                if images:
                    ecr.batch_delete_image(repositoryName=repository, imageIds=images)
            self._delete_stack(self.cfg.bootstrap_name)
            self._empty(boot["CodeBucketName"], delete=True)  # retained by the bootstrap template

    def _delete_stack(self, name: str) -> None:
        started = time.time()
        self.cfn.delete_stack(StackName=name)
        try:
            self.cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 3, "MaxAttempts": 400})
        except WaiterError as err:
            raise StackError(f"{name} was not deleted; the events that matter:\n{self._events(name, started)}") from err
        print(f"    {name}: deleted")

    def _empty(self, bucket: str, delete: bool = False) -> None:
        if not bucket:
            return
        try:
            for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if objects:
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
            if delete:
                self.s3.delete_bucket(Bucket=bucket)
                print(f"    s3://{bucket}: deleted")
        except ClientError as err:
            if err.response["Error"]["Code"] not in ("NoSuchBucket", "404"):
                raise


def prompt(question: str) -> bool:
    if not sys.stdin.isatty():
        raise StackError(f"{question} needs an answer, and there is no terminal: pass --yes (make deploy YES=1)")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

"""Hook 10: bundle the Lambda code and deploy infra/template.yaml as a CloudFormation stack.

Idempotent: bundles are content-addressed, an unchanged stack is left alone, and a stack
left failed by an interrupted run is deleted and created again. A stack that is gone while its
buckets or table are not (an emulator that lost its state but kept its S3 files, or a `make destroy`
that kept the data) is created by importing them first, so their data stays; a stack whose
resources are gone (the reverse) is deleted, its retained data kept, and created the same way.
"""

import functools
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from botocore.exceptions import ClientError  # noqa: E402
from hooklib import (  # noqa: E402
    FUNCTIONS,
    code_parameters,
    ensure_bucket,
    env,
    log,
    named_resources,
    read_template,
    repo_root,
    session,
    stack_outputs,
    template_url,
    upload_bundles,
)  # noqa: E402

_RECREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"}
_WAITER_FOR = {
    "CREATE_IN_PROGRESS": "stack_create_complete",
    "UPDATE_IN_PROGRESS": "stack_update_complete",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "stack_update_complete",
    "DELETE_IN_PROGRESS": "stack_delete_complete",
    "ROLLBACK_IN_PROGRESS": "stack_rollback_complete",
    "UPDATE_ROLLBACK_IN_PROGRESS": "stack_update_complete",
}


def _status(cfn, name: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError as err:
        if "does not exist" in err.response["Error"]["Message"]:
            return None
        raise


def _parameters(code_bucket: str, keys: dict[str, str], sha256: dict[str, str], ec2=None) -> list[dict]:
    """The template's parameters; `ec2`: a function giving an EC2 client, called only when the task's subnets are
    looked up (building that client is ~120 ms, EC2's the largest service model, and the embedded stack never needs it)."""
    params = {
        "Prefix": env("SOMMELIER_PREFIX"),
        "CodeBucket": code_bucket,
        **code_parameters(keys, sha256),
        "DatasetPrefix": env("SOMMELIER_DATASET_PREFIX"),
        "DatasetName": env("SOMMELIER_DATASET_PREFIX").strip("/").rsplit("/", 1)[-1],
    }
    for pair in filter(None, os.environ.get("SOMMELIER_STACK_PARAMETERS", "").split(",")):
        key, _, value = pair.partition("=")
        params[key.strip()] = value.strip()
    if params.get("TrainerImageUri") and not params.get("TaskSubnets") and ec2 is not None:
        # the trainer image is the ECS task: the training function may hand a big dataset to it, in the default
        # subnets as `make deploy` does (an emulator without a default VPC: none, and the function trains itself)
        subnets = ec2().describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        params["TaskSubnets"] = ",".join(s["SubnetId"] for s in subnets)
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]


@functools.cache
def _client(aws, service: str):
    """One client per service for the whole run, used by every step: building one costs ~40 ms, and the check of lost
    resources asks about every resource of the stack (issue 39's `make up` budget)."""
    return aws.client(service)


def _exists(aws, kind: str, name: str) -> bool:
    try:
        if kind == "AWS::S3::Bucket":
            _client(aws, "s3").head_bucket(Bucket=name)
        elif kind == "AWS::DynamoDB::Table":
            _client(aws, "dynamodb").describe_table(TableName=name)
        elif kind == "AWS::Lambda::Function":
            _client(aws, "lambda").get_function(FunctionName=name)
        elif kind == "AWS::ApiGateway::RestApi":
            _client(aws, "apigateway").get_rest_api(restApiId=name)
    except ClientError as err:
        if err.response["Error"]["Code"] in {"404", "NoSuchBucket", "NotFound", "ResourceNotFoundException", "NotFoundException"}:
            return False
        raise
    return True


def _lost_resources(aws, cfn, stack_name: str) -> list[str]:
    """Resources the stack lists that are not there any more (an emulator whose state was partly lost)."""
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    return [r["LogicalResourceId"] for r in resources if r.get("PhysicalResourceId") and not _exists(aws, r["ResourceType"], r["PhysicalResourceId"])]


def _adopt(aws, cfn, args: dict) -> bool:
    """Create the stack by importing the template's named buckets and table that already exist (CloudFormation's
    resource import), so that the full deploy after it updates rather than collides. True if it did."""
    template = read_template(repo_root() / "infra" / "template.yaml")
    values = {p["ParameterKey"]: p["ParameterValue"] for p in args["Parameters"]}
    values |= {"AWS::AccountId": _client(aws, "sts").get_caller_identity()["Account"], "AWS::Region": aws.region_name,
               "AWS::Partition": "aws"}
    present = {k: v for k, v in named_resources(template, values).items() if _exists(aws, v[0], v[2])}
    if not present:
        return False
    log.warning("stack %s is gone but its %s are not: importing them into a new stack", args["StackName"],
                sorted(name for _, _, name in present.values()))
    subset = {**template, "Resources": {k: template["Resources"][k] for k in present}}
    subset.pop("Outputs", None)
    subset.pop("Conditions", None)
    used = {p["ParameterKey"] for p in args["Parameters"]} & set(template.get("Parameters", {}))
    cfn.create_change_set(StackName=args["StackName"], ChangeSetName="adopt-retained-data", ChangeSetType="IMPORT",
                          TemplateBody=json.dumps(subset), Capabilities=args["Capabilities"],
                          Parameters=[p for p in args["Parameters"] if p["ParameterKey"] in used],
                          ResourcesToImport=[{"ResourceType": kind, "LogicalResourceId": k, "ResourceIdentifier": {prop: name}}
                                             for k, (kind, prop, name) in present.items()])
    cfn.get_waiter("change_set_create_complete").wait(StackName=args["StackName"], ChangeSetName="adopt-retained-data",
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    cfn.execute_change_set(StackName=args["StackName"], ChangeSetName="adopt-retained-data")
    cfn.get_waiter("stack_import_complete").wait(StackName=args["StackName"], WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    return True


def main() -> None:
    aws = session()
    s3, cfn = _client(aws, "s3"), _client(aws, "cloudformation")
    root = repo_root()
    stack_name, code_bucket = env("SOMMELIER_STACK_NAME"), env("SOMMELIER_CODE_BUCKET")

    keys, sha256 = {}, {}
    hot_reload = os.environ.get("SOMMELIER_HOT_RELOAD_ROOT", "").strip()
    if os.environ.get("SOMMELIER_LAMBDA_CODE_FROM", "bucket") == "hot-reload":
        # LocalStack's free edition: each function's code and dependencies are a folder on the Docker host
        # (built by compose's lambda-build service), mounted through the magic "hot-reload" bucket.
        code_bucket = "hot-reload"
        keys = {name: f"{hot_reload.rstrip('/')}/{name}" for name in FUNCTIONS}
        sha256 = {name: "" for name in keys}
        log.info("Lambda code from hot-reload folders under %s", hot_reload)
    else:
        ensure_bucket(s3, code_bucket)
        keys, sha256 = upload_bundles(s3, root, code_bucket)

    ensure_bucket(s3, code_bucket)
    args = {
        "StackName": stack_name,
        "TemplateURL": template_url(s3, code_bucket, root / "infra" / "template.yaml", aws.region_name),
        "Parameters": _parameters(code_bucket, keys, sha256, lambda: _client(aws, "ec2")),
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
    }
    status = _status(cfn, stack_name)
    if status in _WAITER_FOR:
        log.info("stack %s is %s; waiting for it to settle", stack_name, status)
        cfn.get_waiter(_WAITER_FOR[status]).wait(StackName=stack_name)
        status = _status(cfn, stack_name)
    if status in _RECREATE:
        log.warning("stack %s was left %s by an earlier run; deleting and creating it again", stack_name, status)
        cfn.delete_stack(StackName=stack_name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack_name)
        status = None

    lost = _lost_resources(aws, cfn, stack_name) if status and status.endswith("_COMPLETE") and not status.startswith("DELETE") else []
    if lost:
        log.warning("stack %s has lost %s (an emulator whose state was partly lost?): deleting it and creating it again; "
                    "its data (buckets, table) is kept and imported back", stack_name, lost)
        cfn.delete_stack(StackName=stack_name)
        cfn.get_waiter("stack_delete_complete").wait(StackName=stack_name)
        status = None
    if status is None and _adopt(aws, cfn, args):
        status = _status(cfn, stack_name)
    if status is None:
        log.info("creating stack %s", stack_name)
        cfn.create_stack(**args)
        cfn.get_waiter("stack_create_complete").wait(StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    else:
        try:
            cfn.update_stack(**args)
        except ClientError as err:
            if "No updates are to be performed" not in err.response["Error"]["Message"]:
                raise
            log.info("stack %s is up to date", stack_name)
        else:
            log.info("updating stack %s", stack_name)
            cfn.get_waiter("stack_update_complete").wait(StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
            # A changed method is served only after a new deployment of the stage (CloudFormation does not redeploy).
            outputs = stack_outputs(cfn, stack_name)
            _client(aws, "apigateway").create_deployment(restApiId=outputs["RestApiId"], stageName=outputs["StageName"],
                                                       description="redeployed by hook 10 after a stack update")
    for key, value in sorted(stack_outputs(cfn, stack_name).items()):
        log.info("output %s = %s", key, value)


main()

"""Lambda entry point: wiring only. Clients, settings and the model cache live at module level,
built once per cold start; the work is done by predictor.api with these passed in."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from predictor.api import Deps, handle
from predictor.config import Settings
from predictor.metrics import Metrics
from predictor.model_store import ModelStore
from predictor.records import PredictionReader, PredictionRecorder
from sommelier_contract.artifacts import Signatures

logger = Logger(service=os.environ.get("SERVICE_NAME", "predictor"))
settings = Settings.from_env()
s3 = boto3.client("s3")
# Items are built by our own code; botocore's client-side validation of 1000-record batches was a
# third of the batch latency (make bench profile), and DynamoDB validates again anyway.
dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False, max_pool_connections=16))
deps = Deps(
    settings=settings,
    store=ModelStore(s3, settings.model_bucket, settings.champion_refresh_seconds,
                     Signatures(boto3.client("kms"), settings.model_signing_key)),
    recorder=PredictionRecorder(dynamodb, settings.predictions_table, settings.prediction_ttl_days),
    reader=PredictionReader(dynamodb, settings.predictions_table),
    s3=s3,
    # metrics are best effort: short timeouts, no retries, so they cannot slow a request much
    metrics=Metrics(boto3.client("cloudwatch", config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})),
                    settings.metrics_namespace, settings.low_confidence_threshold, settings.metrics_sink),
    logger=logger,
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context.aws_request_id, deps)

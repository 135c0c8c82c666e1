"""The peer in `make bench`: the same champion behind a plain gunicorn + Flask endpoint, writing to the same
table the same way, the thing a user would otherwise stand up. What it leaves out is what the stack adds:
API Gateway (keys, usage plan), the Lambda runtime, validation with field errors, metrics.

    PEER_MODEL_BUCKET=... PEER_SIGNING_KEY=... PEER_TABLE=... gunicorn -w 2 bench.peer:app
"""

from __future__ import annotations

import json
import os
import time

import boto3
from botocore.config import Config
from flask import Flask, Response, request

from predictor.model_store import ModelStore
from predictor.records import PredictionRecorder
from sommelier_contract.artifacts import Signatures
from sommelier_contract.records import to_matrix

model = ModelStore(boto3.client("s3"), os.environ["PEER_MODEL_BUCKET"], 3600,
                   Signatures(boto3.client("kms"), os.environ["PEER_SIGNING_KEY"])).current()  # the champion, verified
recorder = PredictionRecorder(boto3.client("dynamodb", config=Config(parameter_validation=False, max_pool_connections=16)),
                              os.environ["PEER_TABLE"], 1)
app = Flask(__name__)


@app.post("/predict")
def predict() -> Response:
    body = request.get_json()
    records = [body["features"]] if "features" in body else body["instances"]
    started = time.perf_counter()
    predictions = model.predict(to_matrix(records, model.features))
    ids = recorder.write(caller="peer", model_version=model.version, now=time.time(), predictions=predictions, inputs=records,
                         context={"latency_ms": round((time.perf_counter() - started) * 1000, 3)})
    out = [{"prediction_id": i, **p} for i, p in zip(ids, predictions, strict=True)]
    return Response(json.dumps(out[0] if "features" in body else {"predictions": out}), mimetype="application/json")

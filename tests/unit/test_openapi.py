"""The OpenAPI document, the template's routes and the function's routes agree."""

import json
from functools import cache
from pathlib import Path

import pytest
import schemathesis
from cfnlint.decode import decode
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft4Validator
from schemathesis.generation import GenerationMode

from predictor.api import ROUTES

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = json.loads((ROOT / "services/predictor/predictor/openapi.json").read_text())


@cache
def _resources() -> dict:
    template, matches = decode(str(ROOT / "infra/template.yaml"))
    assert not matches, matches
    return template["Resources"]


def _template_routes() -> dict[tuple[str, str], bool]:
    resources = _resources()
    paths: dict[str, str] = {}

    def path(logical_id: str) -> str:
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            parent = props["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path(parent["Ref"])
            paths[logical_id] = f"{prefix}/{props['PathPart']}"
        return paths[logical_id]

    routes = {}
    for r in resources.values():
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["HttpMethod"] not in ("OPTIONS", "ANY"):
            props = r["Properties"]
            routes[(props["HttpMethod"], path(props["ResourceId"]["Ref"]))] = props["ApiKeyRequired"]
    return routes


def _openapi_routes() -> dict[tuple[str, str], bool]:
    return {
        (method.upper(), p): op.get("security", OPENAPI["security"]) != []
        for p, ops in OPENAPI["paths"].items()
        for method, op in ops.items()
    }


def test_openapi_routes_and_key_requirements_match_the_template():
    assert _openapi_routes() == _template_routes()


def test_the_function_serves_every_route_of_the_template():
    assert set(ROUTES) == set(_template_routes())


def test_every_route_documents_its_errors_and_a_success():
    for p, ops in OPENAPI["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (method, p)
            if op.get("security", OPENAPI["security"]) != []:
                assert {"403", "429", "500"} <= codes, (method, p)


def _schema(ref: dict) -> dict:
    return OPENAPI["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def test_the_links_name_operations_parameters_and_fields_that_exist():
    """The links the stateful schemathesis run follows: each names an operation, sets parameters or body fields that
    operation takes, and reads a property the answer it starts from has."""
    operations = {op["operationId"]: op for ops in OPENAPI["paths"].values() for op in ops.values()}
    links = 0
    for op in operations.values():
        for answer in op["responses"].values():
            for name, link in answer.get("links", {}).items():
                answered = _schema(answer["content"]["application/json"]["schema"])["properties"]
                target = operations[link["operationId"]]
                takes = {p["name"] for p in target.get("parameters", [])}
                if "requestBody" in target:
                    takes |= set(_schema(target["requestBody"]["content"]["application/json"]["schema"])["properties"])
                for field, expression in {**link.get("parameters", {}), **link.get("requestBody", {})}.items():
                    assert field in takes, (name, field)
                    assert expression.startswith("$response.body#/") and expression.split("/")[1] in answered, (name, expression)
                links += 1
    assert links >= 6


def _template_models() -> dict[str, dict]:
    return {r["Properties"]["Name"]: r["Properties"]["Schema"] for r in _resources().values()
            if r["Type"] == "AWS::ApiGateway::Model"}


@pytest.mark.parametrize(("path", "model"), [("/predict", "PredictRequest"), ("/feedback", "FeedbackRequest")])
def test_the_gateway_never_refuses_a_body_the_document_accepts(path, model):
    """The template's request models are the gateway's first look: they may only be looser than the document (the
    function refuses the rest and says what is wrong and where; the gateway can only say "Invalid request body").
    Bodies generated from the document's schema, each checked with the gateway model as API Gateway does (draft 4)."""
    schema = schemathesis.openapi.from_dict(OPENAPI)
    operation = schema[path]["POST"]
    gateway = Draft4Validator(_template_models()[model])
    refused: list[object] = []

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        if not gateway.is_valid(case.body):
            refused.append(case.body)

    check()
    assert not refused, refused[:3]
    # the operation's body schema is the document's component of the same name (written once)
    assert operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{model}")

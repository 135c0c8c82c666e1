"""The OpenAPI document, the template's routes and the function's routes agree."""

import json
from pathlib import Path

from cfnlint.decode import decode

from predictor.api import ROUTES

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = json.loads((ROOT / "services/predictor/predictor/openapi.json").read_text())


def _template_routes() -> dict[tuple[str, str], bool]:
    template, matches = decode(str(ROOT / "infra/template.yaml"))
    assert not matches, matches
    resources = template["Resources"]
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

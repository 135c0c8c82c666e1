"""The OpenAPI document (openapi.json beside this file): the one place each request's schema is written. The routes'
validators are derived from it here, the template's request models are checked against it by the tests, and
GET /openapi.json serves it with the promoted model's records and classes filled in."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

OPENAPI_FILE = Path(__file__).with_name("openapi.json")
_TEXT = OPENAPI_FILE.read_text()
DOCUMENT: dict[str, Any] = json.loads(_TEXT)

_WHOLE = re.compile(r"0|[1-9][0-9]*")  # ASCII digits in their plain form: int() would also take "²" and "010"
_BOOLEAN = {"true": True, "1": True, "false": False, "0": False}


def fresh() -> dict[str, Any]:
    """A copy of the document to fill in and serve."""
    return json.loads(_TEXT)


def body_schema(name: str) -> dict[str, Any]:
    """A request body's schema, as the document's components name it."""
    return _checkable(DOCUMENT["components"]["schemas"][name])


def query_schema(method: str, path: str) -> dict[str, Any]:
    """An operation's query parameters as one object's schema, no other parameter allowed. Values are checked as
    `query_values` reads them."""
    params = [p for p in DOCUMENT["paths"][path][method.lower()].get("parameters", []) if p["in"] == "query"]
    return {"type": "object", "properties": {p["name"]: _checkable(p["schema"]) for p in params}, "additionalProperties": False}


def query_values(query: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
    """Query strings as the document's types: a whole number in ASCII digits for an integer, true/false/1/0 (any case)
    for a boolean. Anything else stays a string, so the schema refuses it by its type."""
    out: dict[str, Any] = {}
    for name, raw in query.items():
        kind = schema["properties"].get(name, {}).get("type")
        if kind == "integer" and _WHOLE.fullmatch(raw):
            out[name] = int(raw)
        elif kind == "boolean" and raw.lower() in _BOOLEAN:
            out[name] = _BOOLEAN[raw.lower()]
        else:
            out[name] = raw
    return out


def _checkable(schema: dict[str, Any]) -> dict[str, Any]:
    """Without what is said to people rather than checked (descriptions, defaults) and without `format`: timestamps
    are parsed by the route, which says what is wrong with one."""
    out = {k: v for k, v in schema.items() if k not in ("description", "default", "format")}
    if "properties" in out:
        out["properties"] = {name: _checkable(sub) for name, sub in out["properties"].items()}
    return out

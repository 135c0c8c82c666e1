"""The API against its OpenAPI document (schemathesis), as GET /openapi.json serves it (with the
promoted model's record schema): no 5xx for anything, and every answer conforms to the document
(status codes, content types, bodies; schema-valid requests accepted, invalid ones refused).
Bounded: a fixed number of examples per operation and mode, derandomized, so it runs in seconds."""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

EXAMPLES = 25


def expressible(case) -> bool:
    """Positive cases the document can truly promise to accept: a next_token is valid only when a previous page
    issued it (forged ones are refused: the negative run and test_adversarial), and `since` may not be later than
    `until`, a rule between two parameters that OpenAPI 3.0 cannot state (the document says it in words)."""
    query = case.query or {}
    return "next_token" not in query and not ("since" in query and "until" in query)


def test_the_api_keeps_its_openapi_document(stack):
    schema = schemathesis.openapi.from_dict(requests.get(f"{stack.api_url}/openapi.json", timeout=30).json())
    failures, tried = [], 0
    with requests.Session() as session:
        session.headers["x-api-key"] = stack.api_key
        for operation in (result.ok() for result in schema.get_all_operations()):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                strategy = operation.as_strategy(generation_mode=mode)
                if mode is GenerationMode.POSITIVE:
                    strategy = strategy.filter(expressible)

                @given(case=strategy)
                @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
                def check(case) -> None:
                    case.call_and_validate(base_url=stack.api_url, session=session, timeout=30)

                tried += 1
                try:
                    check()
                except Unsatisfiable:  # an operation with no input has nothing to make invalid
                    assert mode is GenerationMode.NEGATIVE, operation.label
                except Exception as err:  # collected, so one run reports every operation that fails
                    failures.append(f"{operation.label} ({mode.value}): {err}")
    assert tried >= 14 and not failures, "\n\n".join(failures)

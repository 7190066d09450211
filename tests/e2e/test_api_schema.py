"""schemathesis against `evreplay local` over HTTP, from the committed docs/openapi.json: for every
operation, a bounded number of generated requests - valid ones and invalid ones (wrong types,
missing fields, out-of-range values, hostile strings) - and for each answer:

- no 5xx;
- every 4xx in the contract's error shape `{"error": {"code", "message", "field"}}`;
- the status code, content type, headers and body are the ones the document declares;
- a request the document calls valid is accepted (schemathesis' positive-data acceptance): a 400 for
  it must name a field whose rule the operation lists under `x-evreplay-checked-in-code` (one field
  against another, a cursor only the API makes, a limit set at deploy time). So a rule the code
  enforces and the document does not state (a pattern, a format, a bound) fails here.

Deterministic (a fixed seed, no example database) so a CI failure reproduces locally; raise
EVREPLAY_FUZZ_EXAMPLES for a longer run by hand.
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.stacks import RunningStack
from tests.template.test_openapi import COMMITTED

MAX_EXAMPLES = int(os.environ.get("EVREPLAY_FUZZ_EXAMPLES", "12"))
# Answers about state, not about the request's shape: a key reused with another body.
STATEFUL_REFUSALS = {(422, "IdempotencyKeyReused")}


def valid_data_is_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, but for the rules the operation documents as checked
    in code (x-evreplay-checked-in-code) and the refusals that depend on earlier requests."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except Failure:
        error = (response.json() or {}).get("error") or {} if response.content else {}
        if (response.status_code, error.get("code")) in STATEFUL_REFUSALS:
            return None
        documented = case.operation.definition.raw.get("x-evreplay-checked-in-code") or {}
        if response.status_code == 400 and _base_field(error.get("field")) in documented:
            return None
        raise


def _base_field(field: Any) -> Any:
    """`events[3].event_time` is checked by the rule of `body` (each event its own)."""
    return "body" if isinstance(field, str) and field.startswith("events[") else field


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    valid_data_is_accepted,
]


# Loaded at collection: one test per operation. The base URL is the running stack's, given per call.
schema = schemathesis.openapi.from_path(
    str(COMMITTED),
    config=SchemathesisConfig.from_dict(
        {
            "seed": 20261125,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
            # The coverage phase adds boundary cases with no bound on their number; fuzzing in both
            # modes reaches those boundaries within max-examples.
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        }
    ),
)


@pytest.mark.slow
@schema.parametrize()
def test_api_answers_as_documented_to_generated_requests(case: Any, local_stack: RunningStack) -> None:
    response = case.call(base_url=local_stack.api_url, timeout=30)

    case.validate_response(response, checks=CHECKS)
    if 400 <= response.status_code < 500:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "field"}, body
        assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_undocumented_methods_are_405_in_the_error_shape(local_stack: RunningStack, method: str) -> None:
    # http.server answered these with a 501 HTML page (schemathesis' coverage phase sent TRACE).
    host, port = local_stack.api_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, "/events")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 405
    assert body["error"]["code"] == "MethodNotAllowed"
    assert set(body["error"]) == {"code", "message", "field"}

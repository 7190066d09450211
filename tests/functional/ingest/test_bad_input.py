"""Bad input catalogue: each case is a 400 (413 for size) naming the field, and nothing is stored."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import DROP, producer_event


def _future(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


CASES = [
    # (case id, body, expected field)
    ("invalid-json", b'{"source": "ios_app",', "body"),
    ("empty-body", b"", "body"),
    ("nan-literal", b'{"source": NaN}', "body"),
    ("array-body", [producer_event()], "body"),
    ("string-body", '"just a string"', "body"),
    ("number-body", b"42", "body"),
    ("invalid-utf8", b'{"source": "\xff\xfe"}', "body"),
    *[
        (f"missing-{name}", producer_event(**{name: DROP}), name)
        for name in ("source", "event_type", "entity_id", "event_time", "payload")
    ],
    ("source-not-string", producer_event(source=7), "source"),
    ("event-type-null", producer_event(event_type=None), "event_type"),
    ("entity-id-number", producer_event(entity_id=123), "entity_id"),
    ("event-time-number", producer_event(event_time=1735426799), "event_time"),
    ("payload-array", producer_event(payload=[1, 2]), "payload"),
    ("payload-string", producer_event(payload="{}"), "payload"),
    ("event-id-number", producer_event(event_id=5), "event_id"),
    ("naive-event-time", producer_event(event_time="2025-12-28T23:59:59.250"), "event_time"),
    ("date-only", producer_event(event_time="2025-12-28"), "event_time"),
    ("malformed-event-time", producer_event(event_time="yesterday at noon"), "event_time"),
    ("impossible-date", producer_event(event_time="2025-02-30T10:00:00Z"), "event_time"),
    ("impossible-offset", producer_event(event_time="2025-12-28T10:00:00+25:00"), "event_time"),
    ("too-far-future", producer_event(event_time=_future(25)), "event_time"),
    ("entity-id-control-char", producer_event(entity_id="user\u0000123"), "entity_id"),
    ("entity-id-newline", producer_event(entity_id="user\n123"), "entity_id"),
    ("entity-id-too-long", producer_event(entity_id="u" * 257), "entity_id"),
    ("entity-id-empty", producer_event(entity_id=""), "entity_id"),
    ("source-space", producer_event(source="ios app"), "source"),
    ("source-slash", producer_event(source="ios/app"), "source"),
    ("event-type-unicode", producer_event(event_type="purchasé"), "event_type"),
    ("event-type-too-long", producer_event(event_type="p" * 129), "event_type"),
    ("event-id-slash", producer_event(event_id="a/b"), "event_id"),
    ("event-id-hash", producer_event(event_id="a#b"), "event_id"),
    ("unknown-field", producer_event(amount=3), "amount"),
]


@pytest.mark.parametrize(("body", "field"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_400_naming_the_field_and_stores_nothing(stack, post, body, field):
    response = post(body)

    assert response.status == 400, response.body
    error = response.json()["error"]
    assert error["field"] == field
    assert error["code"] == "InvalidRequest"
    assert error["message"]
    assert stack.raw_keys() == []
    assert stack.table_items(stack.index_table) == []


def test_oversize_body_is_413(stack, post):
    body = producer_event(payload={"blob": "x" * (1024 * 1024)})

    response = post(json.dumps(body))

    assert response.status == 413
    assert response.json()["error"] == {
        "code": "PayloadTooLarge",
        "message": response.json()["error"]["message"],
        "field": "body",
    }
    assert stack.raw_keys() == []


def test_base64_encoded_body_is_accepted(stack):
    from evreplay.local.gateway import proxy_event
    from evreplay.local.runtime import invoke

    raw = json.dumps(producer_event()).encode()
    request = proxy_event(
        "POST", "/events", "/events", base64.b64encode(raw).decode(), {"Content-Type": "application/json"}
    )
    request["isBase64Encoded"] = True

    result = invoke("evreplay.handlers.ingest.handler", request, "IngestFunction")

    assert result["statusCode"] == 201
    assert len(stack.raw_keys()) == 1


def test_event_within_future_limit_is_accepted(stack, post):
    response = post(producer_event(event_time=_future(23)))

    assert response.status == 201


def test_deeply_nested_payload_is_rejected_cleanly_or_stored(stack, post):
    nested = "[" * 100_000 + "]" * 100_000
    body = (
        '{"source":"a","event_type":"b","entity_id":"c","event_time":"2025-01-01T00:00:00Z","payload":{"x":'
        + nested
        + "}}"
    )

    response = post(body)

    assert response.status == 400
    assert response.json()["error"]["field"] == "body"
    assert stack.raw_keys() == []


def test_unknown_route_is_api_gateways_403_in_error_shape(stack):
    # API Gateway (REST, IAM auth) answers a path or method it does not declare with 403 "Missing
    # Authentication Token", signed or not; the template's DEFAULT_4XX puts it in the error shape.
    for method, path in (("POST", "/nope"), ("PUT", "/events"), ("GET", "/replays/x/nope")):
        response = stack.gateway.request(method, path, {})

        assert response.status == 403, (method, path)
        assert response.json() == {
            "error": {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token", "field": None}
        }
        assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

"""Hostile input (issue 7): bodies at and past the size limit, nesting past any sane depth, huge
arrays, bytes that are not UTF-8, entity ids built to escape their S3 prefix, and query strings
built to break the list routes.

For every request: no 5xx; a rejection is a 4xx in the contract's error shape naming the field,
and stores nothing (no raw object, no index row, no idempotency record); an accepted hostile
entity id lands in one `entity=` segment of its own `raw/source=.../` prefix and reads back
through GET /events exactly.
"""

from __future__ import annotations

import base64
import json
import posixpath
from typing import Any
from urllib.parse import quote

import pytest
from evreplay.core.cursors import encode_cursor
from evreplay.http.plumbing import MAX_JSON_DEPTH
from evreplay.local.gateway import GatewayResponse, proxy_event
from evreplay.local.runtime import invoke

from tests.builders import producer_event
from tests.stacks import Stack, index_rows, raw_object

MIB = 1024 * 1024
EVENT_PREFIX = "raw/source=ios_app/event_type=purchase/event_date=2025-12-28/entity="


def assert_rejected(stack: Stack, response: GatewayResponse, status: int, field: str) -> dict[str, Any]:
    """A 4xx in the error shape naming `field`, and nothing stored anywhere."""
    assert response.status == status, response.body[:500]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["field"] == field
    assert body["error"]["code"] and body["error"]["message"]
    assert stack.raw_keys() == []
    assert stack.table_items(stack.index_table) == []
    assert stack.table_items(stack.env["IDEMPOTENCY_TABLE"]) == []
    return dict(body["error"])


def sized_body(size: int) -> bytes:
    """A valid event whose JSON body is exactly `size` bytes."""
    shell = json.dumps(producer_event(payload={"blob": ""}), separators=(",", ":")).encode()
    body = json.dumps(producer_event(payload={"blob": "x" * (size - len(shell))}), separators=(",", ":")).encode()
    assert len(body) == size
    return body


def nested(depth: int) -> str:
    """`depth` levels of arrays (the outermost counts as one)."""
    return "[" * depth + "]" * depth


def event_text(payload_json: str) -> str:
    head = json.dumps(producer_event(payload={}), separators=(",", ":"))[: -len('"payload":{}}')]
    return f'{head}"payload":{payload_json}}}'


# ---------------------------------------------------------------- size
def test_body_of_exactly_one_mib_is_stored(stack, post):
    response = post(sized_body(MIB))

    assert response.status == 201, response.body[:300]
    assert len(raw_object(stack, response.json()["s3_key"])["payload"]["blob"]) > MIB - 300
    assert len(index_rows(stack)) == 1


@pytest.mark.parametrize("path", ["/events", "/events/batch", "/replays"])
def test_body_one_byte_over_one_mib_is_413_naming_body(stack, post, path):
    error = assert_rejected(stack, post(sized_body(MIB + 1), path=path), 413, "body")

    assert error["code"] == "PayloadTooLarge"
    assert str(MIB) in error["message"]


def test_base64_body_over_the_limit_is_measured_decoded_and_refused(stack):
    request = proxy_event("POST", "/events", "/events", base64.b64encode(sized_body(MIB + 1)).decode())
    request["isBase64Encoded"] = True

    result = invoke("evreplay.handlers.ingest.handler", request, "IngestFunction")

    assert result["statusCode"] == 413
    assert stack.raw_keys() == []


# ---------------------------------------------------------------- nesting
@pytest.mark.parametrize("idempotency_key", [None, "nest-key"])
def test_payload_nested_past_the_limit_is_400_naming_body(stack, post, idempotency_key):
    # Before the limit, 450 levels with a key (Powertools deep-copies the body) and 976 without
    # (the event id serializes it) parsed, then failed with RecursionError: a 500.
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    for depth in (MAX_JSON_DEPTH + 1, 450, 976, 10_000, 100_000):
        # The body object is level 1.
        error = assert_rejected(stack, post(event_text(nested(depth - 1)), headers=headers), 400, "body")

        assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"], depth


@pytest.mark.parametrize("idempotency_key", [None, "nest-key"])
def test_payload_nested_to_the_limit_is_stored_and_reads_back(stack, post, idempotency_key):
    # The body object is level 1, the payload object level 2.
    payload = {"x": json.loads(nested(MAX_JSON_DEPTH - 2))}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None

    response = post(producer_event(payload=payload), headers=headers)

    assert response.status == 201, response.body[:300]
    assert raw_object(stack, response.json()["s3_key"])["payload"] == payload


def test_nesting_inside_strings_does_not_count(stack, post):
    payload = {"text": "[" * 10_000 + "{" * 10_000, "escaped": '\\"[[[[' * 1000}

    response = post(producer_event(payload=payload))

    assert response.status == 201, response.body[:300]
    assert raw_object(stack, response.json()["s3_key"])["payload"] == payload


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/events/batch", '{"events":[' + event_text(nested(10_000)) + "]}"),
        ("/events/batch", '{"events":' + nested(MAX_JSON_DEPTH) + "}"),
        ("/replays", '{"entity_id":"u","start_time":"2025-01-01T00:00:00Z","end_time":' + nested(10_000) + "}"),
    ],
    ids=["batch-item-10000", "batch-events-one-past-limit", "replay-10000"],
)
def test_deep_bodies_on_other_routes_are_400_naming_body(stack, post, path, body):
    assert_rejected(stack, post(body, path=path), 400, "body")


# ---------------------------------------------------------------- huge arrays
def test_payload_with_a_10000_element_array_is_stored_whole(stack, post):
    payload = {"items": list(range(10_000)), "objects": [{"i": i} for i in range(10_000)]}

    response = post(producer_event(payload=payload))

    assert response.status == 201
    assert raw_object(stack, response.json()["s3_key"])["payload"] == payload


def test_batch_of_10000_events_is_400_naming_events(stack, post):
    # Empty items keep the body under 1 MiB: the item count alone is refused, before any item is read.
    error = assert_rejected(stack, post({"events": [{}] * 10_000}, path="/events/batch"), 400, "events")

    assert "500" in error["message"]


def test_body_that_is_a_10000_element_array_is_400_naming_body(stack, post):
    assert_rejected(stack, post(list(range(10_000))), 400, "body")


# ---------------------------------------------------------------- bytes and characters
INVALID_UTF8 = {
    "ff-byte": b"\xff",
    "lone-continuation": b"\x80",
    "overlong-slash": b"\xc0\xaf",
    "truncated-euro": b"\xe2\x82",
    "encoded-surrogate": b"\xed\xa0\x80",
    "above-u10ffff": b"\xf4\x90\x80\x80",
}


@pytest.mark.parametrize("where", ["entity_id", "payload"])
def test_invalid_utf8_in_the_body_is_400_naming_body(stack, post, where):
    body = json.dumps(producer_event(**{where: "__BAD__" if where == "entity_id" else {"v": "__BAD__"}})).encode()
    for name, bad in INVALID_UTF8.items():
        error = assert_rejected(stack, post(body.replace(b"__BAD__", b"a" + bad + b"b")), 400, "body")

        assert "UTF-8" in error["message"], name


def test_lone_surrogate_escape_is_400_naming_body(stack, post):
    # Valid JSON text, but not Unicode: it used to fail hashing the payload (UnicodeEncodeError, 500).
    for text in (r'{"v":"\ud800"}', r'{"v":"\udfff"}', r'{"\udc00":1}', r'{"v":"\ud83d"}'):
        assert_rejected(stack, post(event_text(text)), 400, "body")
    assert_rejected(stack, post(event_text("{}").replace('"user_123"', r'"user\ud800"')), 400, "body")


def test_surrogate_pair_escape_is_a_character_and_is_stored(stack, post):
    response = post(event_text(r'{"v":"\ud83d\ude00"}'))

    assert response.status == 201
    assert raw_object(stack, response.json()["s3_key"])["payload"] == {"v": "\U0001f600"}


def test_number_out_of_range_is_400_naming_body(stack, post):
    # 1e400 parses as inf, which the event id and the raw object cannot write back (was a 500).
    for number in ("1e400", "-1e400", "1" + "0" * 5000):
        assert_rejected(stack, post(event_text('{"v":' + number + "}")), 400, "body")


def test_event_time_outside_what_utc_can_hold_is_400_naming_event_time(stack, post):
    # The first two are RFC 3339 but overflow once converted to UTC (they were a 500).
    for event_time in (
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "\u0662\u0660\u0662\u0665-12-28T00:00:00Z",  # Arabic-Indic digits
        "2025-12-28T00:00:00\x00Z",
    ):
        assert_rejected(stack, post(producer_event(event_time=event_time)), 400, "event_time")


def test_event_time_before_year_1000_is_stored_fixed_width(stack, post):
    # strftime("%Y") wrote "99-..." for year 99: a stored time out of string order (and a 500
    # after the raw object was written).
    response = post(producer_event(event_time="0099-03-01T12:00:00+00:00"))

    assert response.status == 201, response.body
    assert response.json()["event_time"] == "0099-03-01T12:00:00.000000Z"
    assert "/event_date=0099-03-01/" in response.json()["s3_key"]


def test_bad_idempotency_key_header_is_400_naming_the_header(stack, post):
    # An empty header used to reach Powertools as "no key" (IdempotencyKeyError, 500); the others
    # were accepted although the body field of the same meaning refuses them.
    for key in ("", " ", "two words", "x" * 257, "caf\u00e9", "tab\tkey"):
        assert_rejected(stack, post(producer_event(), headers={"Idempotency-Key": key}), 400, "Idempotency-Key")


# ---------------------------------------------------------------- entity ids and S3 keys
ACCEPTED_ENTITIES = {
    "dot-dot-slash": "../../../etc/passwd",
    "dot-dot": "..",
    "dot": ".",
    "percent-2f": "a%2Fb",
    "slash": "a/b",
    "double-encoded": "a%252Fb",
    "tilde": "a~b",
    "percent-7e": "a%7Eb",
    "rtl-override": "user\u202e321_resu",
    "rtl-override-mirror": "user\u202e123_resu",
    "backslash": "..\\..\\windows",
    "query-and-hash": "a?b#c&d=e",
    "256-ascii": "u" * 256,
    "256-ascii-other": "u" * 255 + "v",
    "256-four-byte": "\U0001f600" * 256,
    "256-four-byte-other": "\U0001f600" * 255 + "\U0001f601",
}


@pytest.fixture
def stored_entities(stack, post) -> dict[str, dict[str, Any]]:
    answers = {}
    for name, entity_id in ACCEPTED_ENTITIES.items():
        response = post(producer_event(entity_id=entity_id))
        assert response.status == 201, (name, response.body)
        answers[name] = response.json()
    return answers


def test_hostile_entity_ids_stay_inside_their_prefix(stack, stored_entities):
    for name, answer in stored_entities.items():
        key = answer["s3_key"]
        assert key.startswith(EVENT_PREFIX), name
        segments = key.split("/")
        assert len(segments) == 6, (name, key)
        assert posixpath.normpath(key) == key, (name, key)
        assert key.isascii() and len(key.encode()) <= 1024, (name, key)
        assert answer["entity_id"] == ACCEPTED_ENTITIES[name]
    assert sorted(stack.raw_keys()) == sorted(answer["s3_key"] for answer in stored_entities.values())


def test_distinct_hostile_entity_ids_never_share_a_prefix(stored_entities):
    entity_dirs = {answer["s3_key"].rsplit("/", 1)[0] for answer in stored_entities.values()}

    assert len(entity_dirs) == len(ACCEPTED_ENTITIES)


def test_hostile_entity_ids_are_indexed_and_listed_exactly(stack, stored_entities):
    rows = {row["pk"]: row for row in index_rows(stack)}
    for name, entity_id in ACCEPTED_ENTITIES.items():
        assert rows[f"E#{entity_id}"]["s3_key"] == stored_entities[name]["s3_key"]

        listed = stack.gateway.request("GET", "/events", query={"entity_id": entity_id})

        assert listed.status == 200, (name, listed.body)
        assert [item["s3_key"] for item in listed.json()["items"]] == [stored_entities[name]["s3_key"]], name


def test_rejected_entity_ids_are_400_naming_entity_id(stack, post):
    for entity_id in ("user\x00", "\x00", "a\x1fb", "a\x7fb", "a\x85b", "u" * 257, "\U0001f600" * 257, ""):
        assert_rejected(stack, post(producer_event(entity_id=entity_id)), 400, "entity_id")


def test_rejected_entity_id_in_a_batch_names_its_item_and_stores_only_the_valid_one(stack, post):
    response = post(
        {"events": [producer_event(entity_id="a\x00b"), producer_event(entity_id="../ok")]}, path="/events/batch"
    )

    assert response.status == 200
    rejected, accepted = response.json()["results"]
    assert rejected["status"] == "REJECTED"
    assert rejected["error"]["field"] == "events[0].entity_id"
    assert accepted["status"] == "ACCEPTED"
    (key,) = stack.raw_keys()
    assert key.startswith(EVENT_PREFIX + quote("../ok", safe="") + "/")


# ---------------------------------------------------------------- query strings
LIST_ROUTES = ("/events", "/replays", "/aggregates")


def _cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


BAD_CURSORS = {
    "not-base64": "%%%not-base64%%%",
    "base64-of-text": base64.urlsafe_b64encode(b"hello").decode(),
    "base64-of-invalid-utf8": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "json-array": _cursor([1, 2]),
    "json-number-sk": _cursor({"sk": 5}),
    "sk-over-1024-bytes": _cursor({"sk": "T#2025" + "x" * 2000}),
    "sk-of-other-window": _cursor({"sk": "T#1999-01-01T00:00:00.000000Z#e#a"}),
    "5000-chars": "A" * 5000,
    "nul": "\x00",
}


def test_bad_cursor_is_400_naming_cursor_or_an_empty_page(stack):
    for path in LIST_ROUTES:
        for name, cursor in BAD_CURSORS.items():
            query = {"entity_id": "user_123", "cursor": cursor}

            response = stack.gateway.request("GET", path, query=query)

            # A well-formed cursor that points nowhere may answer an empty page; nothing else may.
            if response.status == 200:
                assert response.json() == {"items": [], "next_cursor": None}, (path, name)
            else:
                assert response.status == 400, (path, name, response.body)
                assert response.json()["error"]["field"] == "cursor", (path, name)


def test_bad_limit_is_400_naming_limit(stack):
    # "²" and a 5 000-digit limit were a 500 on /aggregates; "١٠" (Arabic-Indic 10) was read as 10.
    for path in LIST_ROUTES:
        for limit in ("0", "-1", "1e3", "²", "١٠", "NaN", "1" + "0" * 25, "9" * 5000, "\x00", " "):
            response = stack.gateway.request("GET", path, query={"entity_id": "user_123", "limit": limit})

            assert response.status == 400, (path, limit, response.body)
            assert response.json()["error"]["field"] == "limit", (path, limit)


HOSTILE_QUERIES = [
    ("/events", {"entity_id": "u", "start_time": "0001-01-01T00:00:00+01:00"}, "start_time"),
    ("/events", {"entity_id": "u", "end_time": "9999-12-31T23:59:59-23:59"}, "end_time"),
    ("/events", {"entity_id": "u", "start_time": "2025-01-01T00:00:00\x00Z"}, "start_time"),
    ("/events", {"entity_id": "u", "include_duplicates": "\x00"}, "include_duplicates"),
    ("/events", {"entity_id": "x" * 257}, "entity_id"),
    ("/events", {}, "entity_id"),
    ("/replays", {"status": "RUNNING\x00"}, "status"),
    ("/replays", {"entity_id": "x" * 257}, "entity_id"),
    ("/aggregates", {"entity_id": "u\x00"}, "entity_id"),
    # No stored entity can hold a control character: every query route says so alike.
    ("/events", {"entity_id": "\x00"}, "entity_id"),
    ("/replays", {"entity_id": "\x00"}, "entity_id"),
    ("/aggregates", {"entity_id": "u", "day": "2025-12-2\x00"}, "day"),
    ("/aggregates", {"entity_id": "u", "day": "\u0662\u0660\u0662\u0665-12-28"}, "day"),
    ("/aggregates", {"entity_id": "u", "unknown": "1"}, "unknown"),
]


def test_hostile_query_values_are_400_naming_the_parameter(stack):
    for path, query, field in HOSTILE_QUERIES:
        response = stack.gateway.request("GET", path, query=query)

        assert response.status == 400, (path, query, response.body)
        assert response.json()["error"]["field"] == field, (path, query)


def test_hostile_entity_id_in_a_query_is_an_empty_page(stack):
    for path in ("/events", "/replays"):
        for entity_id in ("../..", "a%2Fb", "\u202e", "u" * 256):
            response = stack.gateway.request("GET", path, query={"entity_id": entity_id})

            assert response.status == 200, (path, entity_id, response.body)
            assert response.json() == {"items": [], "next_cursor": None}, (path, entity_id)


def test_hostile_replay_id_is_404_naming_replay_id(stack):
    for method, suffix in (("GET", ""), ("GET", "/history"), ("DELETE", "")):
        for replay_id in ("..%2F..", "a" * 81, "%00", "\u202e", "x#y", "a b", "..", "."):
            response = stack.gateway.request(method, f"/replays/{replay_id}{suffix}")

            assert response.status == 404, (method, replay_id, suffix, response.body)
            # Powertools' path pattern does not match U+202E (a format character, not \w): its own
            # 404 ("no such route") names no field. Both are a 404 in the error shape.
            assert response.json()["error"]["field"] in ("replay_id", None), (method, replay_id, suffix)
            assert response.json()["error"]["code"] == "NotFound"


def test_a_real_cursor_still_pages(stack, post):
    for second in range(3):
        assert post(producer_event(event_time=f"2025-12-28T10:00:0{second}Z")).status == 201
    first = stack.gateway.request("GET", "/events", query={"entity_id": "user_123", "limit": "2"}).json()

    rest = stack.gateway.request(
        "GET", "/events", query={"entity_id": "user_123", "limit": "2", "cursor": first["next_cursor"]}
    )

    assert len(first["items"]) == 2 and first["next_cursor"] == encode_cursor({"sk": index_rows(stack)[1]["sk"]})
    assert rest.status == 200 and len(rest.json()["items"]) == 1

"""The OpenAPI 3.1 document of the HTTP API, generated - never written by hand.

Three sources, each the only one of its kind:
- the routes, their functions and their authorization: template.yaml (the `Api` events);
- what a valid request is and what a response holds: the JSON Schema files in `evreplay/core/schemas`
  (request bodies, query strings, the Idempotency-Key header; `<name>.response.schema.json` for
  responses), embedded under `components/schemas` with `x-evreplay-source` naming the file;
- everything else (the other parameters, summaries, which status answers what): `OPERATIONS` below,
  with limits imported from the modules that enforce them.

It lives beside the CLI, the top layer, because it reads what no lower layer may: the template (through
evreplay.local.template) and limits from the capabilities that enforce them. No function imports it,
and it is not in the Lambda bundle.

A template route without an entry in OPERATIONS, or an entry without a route, is an error, so the
document cannot silently miss or invent a route. `scripts/openapi.py` writes `docs/openapi.json`;
a test checks the committed file is what this module generates.

Why not Powertools' own generator (`app.get_openapi_json_schema()`): it builds one document per
resolver (four here) from pydantic models and per-route type annotations. Request bodies would
have to be restated as pydantic models beside the JSON Schema files (two sources of truth),
pydantic would join the Lambda bundle (it is not a runtime dependency), and its validation answers
422 in its own shape instead of the contract's 400 `{"error": ...}`. It also does not know the
template's routes or IAM authorization. Measured: on the handlers as written it fails outright
(their `-> Response` annotation is not a pydantic type).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evreplay.core import schemas
from evreplay.http.plumbing import MAX_JSON_DEPTH
from evreplay.investigation import stats as investigation
from evreplay.local.template import Template, project_root
from evreplay.replay import request as replay_request

DOCUMENT_PATH = Path("docs") / "openapi.json"
SCHEMA_DIR = "functions/evreplay/core/schemas"
SECURITY_SCHEME = "sigv4"


# ---------------------------------------------------------------- small builders
def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def string(description: str | None = None, **constraints: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", **constraints}
    if description:
        out["description"] = description
    return out


def response_property(schema_name: str, property_name: str) -> dict[str, Any]:
    """One property of a response schema file (a path parameter is the id its responses carry)."""
    return copy.deepcopy(schemas.load(schema_name)["properties"][property_name])


# ---------------------------------------------------------------- errors
ERRORS: dict[int, tuple[str, str]] = {
    # status: (component name, description)
    400: ("BadRequest", "Invalid input; `field` names the body field, query parameter or header."),
    403: (
        "Forbidden",
        "API Gateway: the request is not signed with SigV4, IAM does not allow it, or the API has no such "
        "method and path (code MISSING_AUTHENTICATION_TOKEN, message 'Missing Authentication Token').",
    ),
    404: ("NotFound", "No such replay (or aggregate version); `field` names which."),
    409: (
        "Conflict",
        "Another attempt with this idempotency key started less than 5 s ago (retry in a second; a key is "
        "never held longer), or the replay (or reconcile) already ended.",
    ),
    413: ("PayloadTooLarge", "The body is larger than MaxBodyBytes (1 MiB by default)."),
    422: ("IdempotencyKeyReused", "This idempotency key was used with a different body."),
    429: ("Throttled", "API Gateway: the stage's throttling limit; retry with backoff."),
    503: ("StorageUnavailable", "AWS failed or throttled a call after retries; retry the same request."),
}
# API Gateway can answer these on any route, before evreplay sees the request.
GATEWAY_ERRORS = (403, 429)


# ---------------------------------------------------------------- operations
@dataclass(frozen=True)
class Operation:
    operation_id: str
    tag: str
    summary: str
    responses: dict[int, dict[str, Any]]
    errors: tuple[int, ...] = ()
    description: str | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    # Rules the code checks that a schema cannot state (one field against another, a cursor only this
    # API makes, limits set at deploy time), by the field a 400 names: `x-evreplay-checked-in-code`.
    # The suite's schemathesis run accepts a 400 for schema-valid input only when it names one of these.
    checked_in_code: dict[str, str] = field(default_factory=dict)


def ok(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


def query(name: str, schema: dict[str, Any], required: bool = False, description: str | None = None) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema}
    if description or schema.get("description"):
        parameter["description"] = description or schema["description"]
    return parameter


def query_from_schema(schema_name: str) -> list[dict[str, Any]]:
    """One query parameter per property of a query-string schema file, in the file's order."""
    loaded = schemas.load(schema_name)
    required = set(loaded.get("required", ()))
    return [query(name, copy.deepcopy(prop), name in required) for name, prop in loaded["properties"].items()]


CURSOR_RULE = "only a next_cursor this API returned for the same query"
TIME_RULE = "its UTC instant within years 0001-9999"
DAY_RULE = "a real calendar day (YYYY-MM-DD: 2025-02-30 and 0000-00-00 are not)"
STRICT_JSON_RULE = f"strict JSON: numbers a double can hold, at most {MAX_JSON_DEPTH} levels, no lone surrogate escapes"
# Template parameter defaults the rules above mention (a deployment may set others).
DEFAULTS = {name: spec.get("Default") for name, spec in (Template().sam.get("Parameters") or {}).items()}
REPLAY_ID_PATH = {
    "name": "replay_id",
    "in": "path",
    "required": True,
    "schema": response_property(schemas.REPLAY_RESPONSE, "replay_id"),
}


def event_body(schema: str, description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {"application/json": {"schema": ref(schema)}}}


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/events"): Operation(
        "postEvent",
        "ingest",
        "Ingest one event",
        description=(
            "Validated against event.schema.json, stored immutably in S3, indexed in DynamoDB. A second "
            "arrival of an event_id is stored and indexed too, as DUPLICATE. The body nests at most "
            f"{MAX_JSON_DEPTH} levels and is strict JSON (no NaN/Infinity, numbers a double can hold, no lone "
            "surrogate)."
        ),
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Same as the body's `idempotency_key` (they must agree when both are sent): the "
                "same key and body again returns the first response and stores nothing.",
                "schema": copy.deepcopy(schemas.load(schemas.EVENT)["properties"]["idempotency_key"]),
            }
        ],
        body=event_body("Event", "One event (event.schema.json)."),
        responses={201: ok("Stored (or, for a repeated idempotency key, the first response again).", "EventAccepted")},
        errors=(400, 409, 413, 422, 503),
        checked_in_code={
            "event_time": f"at most MaxFutureSeconds (default {DEFAULTS['MaxFutureSeconds']}) s ahead; {TIME_RULE}",
            "idempotency_key": "the same as the Idempotency-Key header when both are sent",
            "body": STRICT_JSON_RULE,
        },
    ),
    ("POST", "/events/batch"): Operation(
        "postEventBatch",
        "ingest",
        "Ingest up to 500 events",
        description="Each event is validated and stored on its own; one result per event.",
        body={
            "required": True,
            "description": "event_batch.schema.json; each item is an Event.",
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [ref("EventBatch")],
                        "properties": {"events": {"items": ref("Event")}},
                    }
                }
            },
        },
        responses={200: ok("One result per input event.", "BatchResults")},
        errors=(400, 413),
        checked_in_code={"body": STRICT_JSON_RULE},
    ),
    ("POST", "/replays"): Operation(
        "startReplay",
        "replays",
        "Start a replay",
        description="Starts the replay workflow (a Step Functions execution named by replay_id).",
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The same key and body again returns the same replay.",
                "schema": string(minLength=1, maxLength=256, pattern=r"\S"),
            }
        ],
        body=event_body("ReplayApiRequest", "A replay request (replay_request.schema.json)."),
        responses={
            202: ok(
                "Started.",
                "ReplayStarted",
                headers={"Location": {"description": "replays/{replay_id}, relative to this URL.", "schema": string()}},
            )
        },
        errors=(400, 409, 413, 422, 503),
        checked_in_code={
            "start_time": TIME_RULE,
            "end_time": f"later than start_time; {TIME_RULE}",
            "limit": f"at most MaxReplayLimit (default {DEFAULTS['MaxReplayLimit']}); for an entity list or a "
            "stream at most MaxScopeReplayLimit",
            "entity_id": "exactly one scope: entity_id, entity_ids, or source without an entity (a stream)",
            "entity_ids": "not together with entity_id",
            "event_types": "with a scope (entity_id, entity_ids or source)",
            "max_concurrency": "at most ReplayMaxConcurrency (a deploy-time parameter)",
            "destination": "a name GET /destinations lists",
            "max_events_per_second": "at most MaxReplayEventsPerSecond "
            f"(default {DEFAULTS['MaxReplayEventsPerSecond']})",
            "body": STRICT_JSON_RULE,
        },
    ),
    ("POST", "/replays/{replay_id}/pause"): Operation(
        "pauseReplay",
        "replays",
        "Pause a running replay at its next page boundary (docs/design.md §4.13)",
        description="The replay shows PAUSED once its workers reach a page boundary; resume continues it.",
        parameters=[REPLAY_ID_PATH],
        responses={202: ok("Pause requested; the replay as it is now.", "Replay")},
        errors=(404, 409, 503),
    ),
    ("POST", "/replays/{replay_id}/resume"): Operation(
        "resumeReplay",
        "replays",
        "Resume a PAUSED or FAILED replay under the same replay_id (docs/design.md §4.13)",
        description="The next execution of the replay's chain goes on from where the last one stopped: the "
        "messages are those of an uninterrupted replay (a page in flight may be sent again, same seqs). "
        "409 for a running or finished replay.",
        parameters=[REPLAY_ID_PATH],
        responses={202: ok("Resumed; the replay as it is now.", "Replay")},
        errors=(404, 409, 503),
    ),
    ("GET", "/destinations"): Operation(
        "listDestinations",
        "replays",
        "Where a replay may send (docs/design.md §4.12)",
        description="The built-in queue, `default`, and the destinations the template parameter ReplayDestinations "
        "declares; a replay request names one as `destination`.",
        responses={200: ok("Every destination.", "DestinationList")},
        errors=(503,),
    ),
    ("GET", "/replays"): Operation(
        "listReplays",
        "replays",
        "List replays (the audit listing), newest first",
        description="From the replays' records: `status` is the last one recorded (an execution's end shows "
        "within seconds), filters apply before paging, and a page costs one DynamoDB Query.",
        parameters=query_from_schema(schemas.REPLAYS_QUERY),
        responses={200: ok("A page of replays.", "ReplayList")},
        errors=(400, 503),
        checked_in_code={"cursor": CURSOR_RULE},
    ),
    ("GET", "/replays/{replay_id}"): Operation(
        "getReplay",
        "replays",
        "A replay's status, request, caller and result",
        parameters=[REPLAY_ID_PATH],
        responses={200: ok("The replay.", "Replay")},
        errors=(404, 503),
    ),
    ("DELETE", "/replays/{replay_id}"): Operation(
        "cancelReplay",
        "replays",
        "Cancel a running replay",
        parameters=[REPLAY_ID_PATH],
        responses={200: ok("Stopped; the replay as it is now (ABORTED).", "Replay")},
        errors=(404, 409, 503),
    ),
    ("GET", "/replays/{replay_id}/history"): Operation(
        "getReplayHistory",
        "replays",
        "A replay's execution history, summarized (the audit record)",
        parameters=[REPLAY_ID_PATH],
        responses={200: ok("Every execution's events that a person cares about.", "ReplayHistory")},
        errors=(404, 503),
    ),
    ("GET", "/events"): Operation(
        "listEvents",
        "inspection",
        "An entity's stored occurrences in replay order",
        description="Half-open window [start_time, end_time); DUPLICATE rows are hidden unless include_duplicates. "
        "A page holds `limit` rows shown, fewer only on the last page (no next_cursor).",
        parameters=query_from_schema(schemas.EVENTS_QUERY),
        responses={200: ok("A page of index rows.", "EventList")},
        errors=(400, 503),
        checked_in_code={
            "start_time": TIME_RULE,
            "end_time": f"later than start_time; {TIME_RULE}",
            "cursor": CURSOR_RULE,
        },
    ),
    ("GET", "/aggregates"): Operation(
        "listAggregates",
        "inspection",
        "An entity's aggregate versions (one per replay and UTC day)",
        parameters=query_from_schema(schemas.AGGREGATES_QUERY),
        responses={200: ok("A page of aggregate versions.", "AggregateList")},
        errors=(400, 503),
        checked_in_code={"cursor": CURSOR_RULE},
    ),
    ("GET", "/aggregates/diff"): Operation(
        "diffAggregates",
        "investigation",
        "What changed between two aggregate versions of one entity's day",
        parameters=query_from_schema(schemas.AGGREGATES_DIFF_QUERY),
        responses={200: ok("The two versions compared.", "AggregateDiff")},
        errors=(400, 404, 503),
    ),
    ("GET", "/stats/lag"): Operation(
        "getLagStats",
        "investigation",
        "How late one stream's events of a UTC day arrived",
        parameters=query_from_schema(schemas.LAG_QUERY),
        responses={200: ok("Lag percentiles, histogram and the latest arrivals.", "LagStats")},
        errors=(400, 503),
    ),
    ("GET", "/stats/volume"): Operation(
        "getVolumeStats",
        "investigation",
        "One stream's events per UTC day or hour, with empty and low buckets flagged",
        parameters=query_from_schema(schemas.VOLUME_QUERY),
        responses={200: ok("Counts per bucket.", "VolumeStats")},
        errors=(400, 503),
        checked_in_code={
            "end_day": "not before start_day; at most "
            + ", ".join(f"{days} days with bucket={bucket}" for bucket, days in investigation.MAX_VOLUME_DAYS.items())
        },
    ),
    ("GET", "/stats/duplicates"): Operation(
        "getDuplicateStats",
        "investigation",
        "Duplicate arrivals of a UTC ingest day",
        parameters=query_from_schema(schemas.DUPLICATES_QUERY),
        responses={200: ok("Duplicates by event type and the top entities.", "DuplicateStats")},
        errors=(400, 503),
    ),
    ("GET", "/gaps"): Operation(
        "getGaps",
        "investigation",
        "Empty UTC hours or days of one entity in a window",
        parameters=query_from_schema(schemas.GAPS_QUERY),
        responses={200: ok("The empty buckets, merged into gaps.", "Gaps")},
        errors=(400, 503),
        checked_in_code={
            "start_time": TIME_RULE,
            "end_time": f"later than start_time; at most {investigation.MAX_GAP_BUCKETS} buckets; {TIME_RULE}",
        },
    ),
    ("GET", "/health"): Operation(
        "health",
        "health",
        "Liveness",
        responses={
            200: ok("Ready.", "Health"),
            503: ok("evreplay local only: still starting (or failed to start).", "HealthStarting"),
        },
    ),
}

OPERATIONS[("POST", "/reconcile")] = Operation(
    "startReconcile",
    "reconcile",
    "Check (and with repair, fix) the index against the raw store for a range of UTC event days",
    description="Starts the reconcile workflow (a Step Functions execution named by reconcile_id).",
    body=event_body("ReconcileRequest", "A reconcile request (reconcile_request.schema.json)."),
    responses={
        202: ok(
            "Started.",
            "ReconcileStarted",
            headers={
                "Location": {"description": "reconcile/{reconcile_id}, relative to this URL.", "schema": string()}
            },
        )
    },
    errors=(400, 413, 503),
    checked_in_code={
        "start_day": DAY_RULE,
        "end_day": f"not before start_day; at most MaxReconcileDays (a deploy-time parameter) days; {DAY_RULE}",
    },
)
OPERATIONS[("GET", "/reconcile/{reconcile_id}")] = Operation(
    "getReconcile",
    "reconcile",
    "A reconcile's status, progress and counts",
    parameters=[
        {
            "name": "reconcile_id",
            "in": "path",
            "required": True,
            "schema": response_property(schemas.RECONCILE_RESPONSE, "reconcile_id"),
        }
    ],
    responses={200: ok("The reconcile.", "Reconcile")},
    errors=(404, 503),
)

TAGS = [
    {"name": "ingest", "description": "Producers send events."},
    {"name": "replays", "description": "Replay one entity's window into the processor; follow, list, cancel."},
    {"name": "inspection", "description": "Look at what is stored: index rows and aggregate versions."},
    {"name": "investigation", "description": "Late data, missing windows, duplicate storms, changed aggregates."},
    {"name": "reconcile", "description": "Check and repair the index against the raw store."},
    {"name": "health", "description": "Liveness."},
]

# Request schemas as the files define them, by component name.
REQUEST_SCHEMAS = {
    "Event": schemas.EVENT,
    "EventBatch": schemas.EVENT_BATCH,
    "ReplayRequest": schemas.REPLAY_REQUEST,
    "ReconcileRequest": schemas.RECONCILE_REQUEST,
}


# ---------------------------------------------------------------- the template's side
@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    function: str
    event: str  # the Api event's logical id
    iam: bool  # IAM-authorized (the API's DefaultAuthorizer, unless the route opts out)


def api_routes(template: Template) -> list[ApiRoute]:
    """Every `Api` event of every function, with whether IAM authorizes it."""
    resources = template.sam.get("Resources", {})
    routes = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_id, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") != "Api":
                continue
            props = event["Properties"]
            api = resources.get(_logical_id(props.get("RestApiId")), {})
            default = ((api.get("Properties") or {}).get("Auth") or {}).get("DefaultAuthorizer")
            authorizer = (props.get("Auth") or {}).get("Authorizer", default)
            routes.append(
                ApiRoute(
                    str(props["Method"]).upper(), str(props["Path"]), logical_id, event_id, authorizer == "AWS_IAM"
                )
            )
    return routes


def _logical_id(value: Any) -> str:
    return str(value.get("Ref")) if isinstance(value, dict) else str(value)


class DocumentError(RuntimeError):
    """The template's routes and OPERATIONS disagree."""


# ---------------------------------------------------------------- the document
def schema_component(name: str) -> dict[str, Any]:
    """A schema file as a component: unchanged but for `$schema` (OpenAPI 3.1's dialect is 2020-12)."""
    loaded = copy.deepcopy(schemas.load(name))
    loaded.pop("$schema", None)
    return {**loaded, "x-evreplay-source": f"{SCHEMA_DIR}/{name}.schema.json"}


def response_components() -> dict[str, dict[str, Any]]:
    """Every `<name>.response.schema.json` as a component named by its title. The files refer to each
    other (and to request files) by file name; in the document those become component references,
    and the `$id` goes (a component's `$id` would change what its references resolve against)."""
    names = {f"{file}.schema.json": component for component, file in REQUEST_SCHEMAS.items()}
    names.update({f"{name}.schema.json": schemas.load(name)["title"] for name in schemas.response_names()})

    def linked(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: ref(names[value])["$ref"] if key == "$ref" else linked(value) for key, value in node.items()}
        if isinstance(node, list):
            return [linked(value) for value in node]
        return node

    components: dict[str, dict[str, Any]] = {}
    for name in schemas.response_names():
        component = schema_component(name)
        component.pop("$id")
        components[component["title"]] = linked(component)
    return components


def replay_api_request() -> dict[str, Any]:
    """replay_request.schema.json as POST /replays accepts it: without the fields evreplay sets."""
    derived = schema_component(schemas.REPLAY_REQUEST)
    for name in replay_request.API_FORBIDDEN_FIELDS:
        derived["properties"].pop(name)
    derived.pop("$id", None)
    derived["title"] = "ReplayApiRequest"
    derived["description"] = (
        f"{derived['description']} Through the API, without {', '.join(replay_request.API_FORBIDDEN_FIELDS)} "
        "(evreplay sets them)."
    )
    return derived


def error_responses() -> dict[str, Any]:
    return {
        name: {"description": description, "content": {"application/json": {"schema": ref("Error")}}}
        for name, description in ERRORS.values()
    }


def _version() -> str:
    with (project_root() / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def _operation(route: ApiRoute, spec: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {str(status): response for status, response in sorted(spec.responses.items())}
    for status in sorted({*spec.errors, *(GATEWAY_ERRORS if route.iam else ())}):
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    operation: dict[str, Any] = {
        "operationId": spec.operation_id,
        "tags": [spec.tag],
        "summary": spec.summary,
    }
    if spec.description:
        operation["description"] = spec.description
    if spec.parameters:
        operation["parameters"] = copy.deepcopy(spec.parameters)
    if spec.body:
        operation["requestBody"] = copy.deepcopy(spec.body)
    operation["responses"] = responses
    operation["security"] = [{SECURITY_SCHEME: []}] if route.iam else []
    if spec.checked_in_code:
        operation["x-evreplay-checked-in-code"] = dict(spec.checked_in_code)
    operation["x-evreplay-function"] = route.function
    operation["x-evreplay-template-event"] = route.event
    return operation


def build_document(template: Template | None = None) -> dict[str, Any]:
    template = template or Template()
    routes = api_routes(template)
    in_template = {(route.method, route.path) for route in routes}
    missing = sorted(in_template - set(OPERATIONS))
    extra = sorted(set(OPERATIONS) - in_template)
    if missing or extra:
        raise DocumentError(
            f"template routes without an entry in OPERATIONS: {missing}; entries without a route: {extra}"
        )
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.path, r.method)):
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, OPERATIONS[(route.method, route.path)]
        )
    components_schemas = {name: schema_component(file) for name, file in REQUEST_SCHEMAS.items()}
    components_schemas["ReplayApiRequest"] = replay_api_request()
    components_schemas.update(response_components())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "evreplay",
            "version": _version(),
            "summary": "Event investigation and replay for AWS event pipelines.",
            "description": (
                "Generated by `scripts/openapi.py` from template.yaml (routes, IAM authorization), the JSON "
                "Schema files in functions/evreplay/core/schemas (request bodies, query strings, responses). "
                "Do not edit by hand. Every route of the deployed API "
                "uses IAM authorization: sign requests with SigV4 (service `execute-api`). Every error "
                'answers {"error": {"code", "message", "field"}}.'
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/v1",
                "description": "Deployed (the stack output ApiUrl).",
                "variables": {"api_id": {"default": "api_id"}, "region": {"default": "us-east-1"}},
            },
            {"url": "http://127.0.0.1:3000", "description": "`evreplay local` (no authentication; loopback only)."},
        ],
        "security": [{SECURITY_SCHEME: []}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 (IAM authorization, API Gateway's AWS_IAM authorizer).",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
            "schemas": components_schemas,
            "responses": error_responses(),
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write (or check) docs/openapi.json from template.yaml and the schemas."
    )
    parser.add_argument("--output", type=Path, default=project_root() / DOCUMENT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from what would be written")
    args = parser.parse_args(argv)
    text = render(build_document())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is out of date: run scripts/openapi.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0

"""The replay API: POST/GET/DELETE /replays, GET /replays/{id}/history, POST /replays/{id}/pause and
/resume, GET /destinations, GET /events, GET /health."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients, schemas
from evreplay.core.idempotency import IdempotencyStore
from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import get_settings
from evreplay.http import query as query_params
from evreplay.http.plumbing import answer_response, install_error_handlers, json_response, read_json_body, requested_by
from evreplay.investigation.events import list_events, parse_event_query
from evreplay.replay.destinations import parse_destinations
from evreplay.replay.service import DEFAULT_LIST_LIMIT, ReplayService
from evreplay.replay.state import ReplayStateStore
from evreplay.store.index import EventIndex

settings = get_settings()
schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
app = APIGatewayRestResolver()
install_error_handlers(app)
index = EventIndex(clients.dynamodb(), settings.require("index_table"))
service = ReplayService(
    stepfunctions_client=clients.stepfunctions(),
    state_machine_arn=settings.require("replay_state_machine_arn"),
    store=ReplayStateStore(
        clients.dynamodb(), settings.require("replay_state_table"), settings.replay_marker_ttl_seconds
    ),
    idempotency_persistence=IdempotencyStore(
        table_name=settings.require("idempotency_table"), boto3_client=clients.dynamodb()
    ),
    idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
    max_limit=settings.max_replay_limit,
    max_scope_limit=settings.max_scope_replay_limit,
    max_concurrency=settings.replay_max_concurrency,
    destinations=parse_destinations(settings.replay_destinations, settings.require("replay_queue_arn")),
    max_events_per_second=settings.max_events_per_second,
)


def _params() -> dict[str, str | None]:
    return dict(app.current_event.query_string_parameters or {})


@app.post("/replays")
@tracer.capture_method
def start_replay() -> Response:
    body = read_json_body(app.current_event, settings.max_body_bytes)
    started = service.start(body, requested_by(app.current_event), app.current_event.headers.get("Idempotency-Key"))
    # Relative to the request URI (…/replays), so it resolves under any stage or custom domain.
    location = f"replays/{quote(started.body['replay_id'], safe='')}"
    return answer_response(started, {"Location": location})


@app.get("/replays")
@tracer.capture_method
def list_replays() -> Response:
    params = query_params.schema_checked(schemas.REPLAYS_QUERY, _params(), integers=("limit",))
    listed = service.list_replays(
        entity_id=params.get("entity_id"),
        status=params.get("status"),
        limit=params.get("limit", DEFAULT_LIST_LIMIT),
        cursor=params.get("cursor"),
        source=params.get("source"),
    )
    return json_response(200, listed)


@app.get("/replays/<replay_id>")
@tracer.capture_method
def get_replay(replay_id: str) -> Response:
    return json_response(200, service.get(replay_id))


@app.get("/replays/<replay_id>/history")
@tracer.capture_method
def get_replay_history(replay_id: str) -> Response:
    return json_response(200, service.history(replay_id))


@app.delete("/replays/<replay_id>")
@tracer.capture_method
def cancel_replay(replay_id: str) -> Response:
    return json_response(200, service.cancel(replay_id))


@app.post("/replays/<replay_id>/pause")
@tracer.capture_method
def pause_replay(replay_id: str) -> Response:
    return json_response(202, service.pause(replay_id))


@app.post("/replays/<replay_id>/resume")
@tracer.capture_method
def resume_replay(replay_id: str) -> Response:
    return json_response(202, service.resume(replay_id))


@app.get("/destinations")
@tracer.capture_method
def list_destinations() -> Response:
    return json_response(200, service.list_destinations())


@app.get("/events")
@tracer.capture_method
def get_events() -> Response:
    return json_response(200, list_events(index, parse_event_query(_params())))


@app.get("/health")
def health() -> Response:
    return json_response(200, {"status": "ok"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service.idempotent.register_lambda_context(context)
    return app.resolve(event, context)

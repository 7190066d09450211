"""GET /aggregates: an entity's aggregate versions (one per replay and UTC day), paginated; GET /aggregates/diff:
what changed between two of them."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients, schemas
from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import get_settings
from evreplay.http.plumbing import install_error_handlers, json_response
from evreplay.processor.diff import diff_versions, parse_diff_query
from evreplay.processor.store import AggregateStore
from evreplay.processor.versions import parse_list_query

settings = get_settings()
schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
app = APIGatewayRestResolver()
install_error_handlers(app)
dynamodb = clients.dynamodb()
store = AggregateStore(dynamodb, settings.require("aggregates_table"))


@app.get("/aggregates")
@tracer.capture_method
def list_aggregates() -> Response:
    query = parse_list_query(app.current_event.query_string_parameters or {})
    versions, next_cursor = store.list_versions(query.entity_id, query.day, query.limit, query.cursor)
    return json_response(200, {"items": [version.public() for version in versions], "next_cursor": next_cursor})


@app.get("/aggregates/diff")
@tracer.capture_method
def diff_aggregates() -> Response:
    query = parse_diff_query(app.current_event.query_string_parameters or {})
    return json_response(200, diff_versions(store, query))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

"""GET /stats/lag, /stats/volume, /stats/duplicates and /gaps: investigation reads over the index."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients, schemas
from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import get_settings
from evreplay.http.plumbing import install_error_handlers, json_response
from evreplay.investigation.stats import (
    Investigation,
    parse_duplicates_query,
    parse_gaps_query,
    parse_lag_query,
    parse_volume_query,
)

settings = get_settings()
schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
app = APIGatewayRestResolver()
install_error_handlers(app)
dynamodb = clients.dynamodb()
investigation = Investigation(dynamodb, settings.require("index_table"))


def _params() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


@app.get("/stats/lag")
@tracer.capture_method
def lag() -> Response:
    return json_response(200, investigation.lag(parse_lag_query(_params())))


@app.get("/stats/volume")
@tracer.capture_method
def volume() -> Response:
    return json_response(200, investigation.volume(parse_volume_query(_params())))


@app.get("/gaps")
@tracer.capture_method
def gaps() -> Response:
    return json_response(200, investigation.gaps(parse_gaps_query(_params())))


@app.get("/stats/duplicates")
@tracer.capture_method
def duplicates() -> Response:
    return json_response(200, investigation.duplicates(parse_duplicates_query(_params())))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

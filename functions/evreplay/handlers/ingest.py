"""POST /events and POST /events/batch."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients, schemas
from evreplay.core.errors import InvalidRequest
from evreplay.core.idempotency import IdempotencyStore
from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import get_settings
from evreplay.core.times import utc_now
from evreplay.http.plumbing import answer_response, install_error_handlers, json_response, read_json_body
from evreplay.ingest.receipts import Receipts
from evreplay.ingest.service import Ingestor, parse_event
from evreplay.store.index import EventIndex
from evreplay.store.raw import RawStore

settings = get_settings()
schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
app = APIGatewayRestResolver()
install_error_handlers(app)
ingestor = Ingestor(
    raw_store=RawStore(clients.s3(), settings.require("raw_bucket")),
    index=EventIndex(clients.dynamodb(), settings.require("index_table")),
    idempotency_persistence=IdempotencyStore(
        table_name=settings.require("idempotency_table"), boto3_client=clients.dynamodb()
    ),
    idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
    receipts=Receipts(clients.dynamodb(), settings.require("idempotency_table"), settings.idempotency_ttl_seconds),
)


def _request_id() -> str:
    return str((app.current_event.get("requestContext") or {}).get("requestId", ""))


@app.post("/events")
@tracer.capture_method
def post_event() -> Response:
    try:
        body = read_json_body(app.current_event, settings.max_body_bytes)
        event = parse_event(
            body,
            utc_now(),
            settings.max_future_seconds,
            header_key=app.current_event.headers.get("Idempotency-Key"),
        )
    except InvalidRequest as error:
        ingestor.metrics.rejected(error)
        raise
    return answer_response(ingestor.ingest(event, _request_id()))


@app.post("/events/batch")
@tracer.capture_method
def post_batch() -> Response:
    body = read_json_body(app.current_event, settings.max_body_bytes)
    schemas.check(schemas.EVENT_BATCH, body)
    results = ingestor.ingest_batch(body["events"], _request_id(), settings.max_future_seconds)
    return json_response(200, {"results": results})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ingestor.idempotent.register_lambda_context(context)
    try:
        return app.resolve(event, context)
    finally:
        # Per-stream documents (evreplay.ingest.metrics); `metrics` above carries the rest.
        ingestor.metrics.flush()

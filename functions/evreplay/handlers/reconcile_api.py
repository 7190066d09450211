"""The reconcile API: POST /reconcile (start the workflow), GET /reconcile/{id} (follow it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients, schemas
from evreplay.core.observability import logger, tracer
from evreplay.core.settings import get_settings
from evreplay.http.plumbing import install_error_handlers, json_response, read_json_body
from evreplay.reconcile.workflow import ReconcileFiles, ReconcileService

settings = get_settings()
schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
app = APIGatewayRestResolver()
install_error_handlers(app)
service = ReconcileService(
    clients.stepfunctions(),
    settings.require("reconcile_state_machine_arn"),
    ReconcileFiles(clients.s3(), settings.require("reconcile_bucket")),
    settings.max_reconcile_days,
)


@app.post("/reconcile")
@tracer.capture_method
def start_reconcile() -> Response:
    started = service.start(read_json_body(app.current_event, settings.max_body_bytes))
    return json_response(202, started, {"Location": f"reconcile/{quote(started['reconcile_id'], safe='')}"})


@app.get("/reconcile/<reconcile_id>")
@tracer.capture_method
def get_reconcile(reconcile_id: str) -> Response:
    return json_response(200, service.get(reconcile_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

"""ValidateRequest, the replay state machine's first task: the execution's input checked and the
replay's record written (evreplay.replay.workflow.start_replay). InvalidReplayRequest is not retried:
the execution fails naming the field; StorageUnavailable is retried by the state machine."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import schemas
from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import get_settings
from evreplay.replay.tasks import request_destinations, state_store
from evreplay.replay.workflow import start_replay

schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
# Init: built here (its clients too), not on the first invocation; the handler's lookup is a cache hit.
state_store(get_settings())


@logger.inject_lambda_context(correlation_id_path="execution_name")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return start_replay(
        execution_input=event.get("input"),
        execution_name=event["execution_name"],
        execution_arn=event["execution_arn"],
        started_at=event["started_at"],
        max_limit=settings.max_replay_limit,
        store=state_store(settings),
        max_scope_limit=settings.max_scope_replay_limit,
        max_concurrency=settings.replay_max_concurrency,
        destinations=request_destinations(settings),
        max_events_per_second=settings.max_events_per_second,
    )

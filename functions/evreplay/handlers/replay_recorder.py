"""The target of the EventBridge rule on the replay executions' status changes: gives the replay's
record the status, result or error its execution ended with (evreplay.replay.outcomes)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import schemas
from evreplay.core.observability import logger, tracer
from evreplay.core.settings import get_settings
from evreplay.replay.outcomes import record_status_change
from evreplay.replay.tasks import state_store

schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
# Init: built here (its clients too), not on the first invocation; the handler's lookup is a cache hit.
state_store(get_settings())


@logger.inject_lambda_context(correlation_id_path="detail.name")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    recorded = record_status_change(event, state_store(settings), settings.max_replay_limit)
    if recorded is None:
        return {"recorded": False}
    logger.info("replay status recorded", extra={"replay_id": recorded.replay_id, "status": recorded.status})
    return {"recorded": True, "replay_id": recorded.replay_id, "status": recorded.status}

"""ReplayPage, the replay state machine's window task: one run of index pages sent to the replay queue
(evreplay.replay.workflow.ReplayPager; the state's shape is described there). StorageUnavailable and
SqsSendFailed are retried by the state machine."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import get_settings
from evreplay.replay.tasks import pager

# Init: built here (its clients too), not on the first invocation; the handler's lookup is a cache hit.
pager(get_settings())


@logger.inject_lambda_context(correlation_id_path="replay_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pager(get_settings()).run(event)

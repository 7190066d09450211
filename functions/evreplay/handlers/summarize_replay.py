"""SummarizeReplay: the Distributed Map's results folded into the replay's result
(evreplay.replay.fanout.summarize)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core.observability import logger, tracer
from evreplay.core.settings import get_settings
from evreplay.replay.fanout import summarize
from evreplay.replay.tasks import state_store

# Init: built here (its clients too), not on the first invocation; the handler's lookup is a cache hit.
state_store(get_settings())


@logger.inject_lambda_context(correlation_id_path="replay_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return summarize(state_store(get_settings()), event)

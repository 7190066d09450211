"""The replay queue consumer: one SQS batch per invocation, folded as a whole by `MessageFolder`
(concurrent round trips), its failed messages reported back through Powertools' batch processor
(ReportBatchItemFailures) so only they return to the queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients, schemas
from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import get_settings
from evreplay.processor.folding import MessageFolder
from evreplay.processor.store import AggregateStore
from evreplay.store.raw import RawStore

settings = get_settings()
schemas.prepare()  # init: its requests validate; jsonschema and the validators load here, not on a request
# A batch whose every message fails is still answered with batchItemFailures (not an exception):
# the effect on the queue is the same, and the Lambda Errors alarm keeps meaning "crash or timeout".
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
folder = MessageFolder(
    raw_store=RawStore(clients.s3(), settings.require("raw_bucket")),
    store=AggregateStore(clients.dynamodb(), settings.require("aggregates_table")),
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    folded = folder.fold_batch([(record["messageId"], record["body"]) for record in event.get("Records", [])])
    return process_partial_response(event=event, record_handler=folded.outcome, processor=processor, context=context)

"""Lambda's SQS trigger, in process: drive a queue into the function the template wires to it.

One round is what Lambda's poller does for one batch: ReceiveMessage until the trigger's
BatchSize (10 per call), build the SQS Lambda event (messageId, receiptHandle, body, attributes
with ApproximateReceiveCount, eventSourceARN, ...), invoke the template's handler in process
(`evreplay.local.runtime`), then delete what succeeded. What failed is left alone, as Lambda
leaves it: it comes back when its visibility timeout ends, and the queue's RedrivePolicy moves
it to the DLQ once it has been received maxReceiveCount times. moto 5.2.5 does that move itself
on ReceiveMessage (exactly as SQS does), so the driver relies on it rather than copying it;
tests/functional/processor/test_queue_driver.py fails if moto stops doing so.

Failure semantics follow Lambda's: with ReportBatchItemFailures only the reported messages
fail, and a response naming a message not in the batch (or not shaped as the contract says)
fails the whole batch; a handler that raises fails the whole batch; without
ReportBatchItemFailures a normal return deletes the whole batch.

`retry_visibility_timeout` shortens how long a failed message stays hidden (Lambda waits for
the visibility timeout the message was received with, 180 s for the replay queue); tests and
an impatient local user set it to 0 or 1. Messages are always received with the queue's own
visibility timeout, so nothing is delivered twice while its batch is still running.
"""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import dataclass, fields
from typing import Any

from evreplay.local.runtime import function_lock, invoke
from evreplay.local.template import QueueTrigger, Template

log = logging.getLogger(__name__)

_RECEIVE_MAX = 10  # SQS ReceiveMessage and DeleteMessageBatch take at most 10 at a time
# The system attributes Lambda puts on each record (plus the FIFO ones when present).
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
)


@dataclass
class DrainStats:
    """What a drain (or the run loop so far) did."""

    rounds: int = 0  # batches handed to the function
    received: int = 0  # messages in those batches
    succeeded: int = 0  # deleted after the function succeeded with them
    failed: int = 0  # left on the queue to come back (and eventually reach the DLQ)
    handler_errors: int = 0  # invocations that raised: their whole batch failed

    def add(self, other: DrainStats) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class QueueDriver:
    """Drives one queue trigger of the template (see the module docstring)."""

    def __init__(
        self,
        template: Template,
        sqs_client: Any,
        trigger: QueueTrigger,
        *,
        retry_visibility_timeout: int | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.template = template
        self.trigger = trigger
        self.retry_visibility_timeout = retry_visibility_timeout
        self.poll_interval = poll_interval
        self.totals = DrainStats()
        self._sqs = sqs_client
        self._queue_url: str | None = None
        self._handler = template.function_handler(trigger.function)
        self._timeout = template.function_timeout(trigger.function)
        self._source_arn = template.get_att(trigger.queue, "Arn")
        self._lock = threading.Lock()

    @property
    def queue_url(self) -> str:
        # Asked of the endpoint the client talks to (in-process moto or the moto server), once.
        if self._queue_url is None:
            name = self.template.physical_name(self.trigger.queue)
            self._queue_url = str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])
        return self._queue_url

    # ------------------------------------------------------------ one batch
    def poll_once(self) -> DrainStats:
        """Receive one batch, run the function on it, delete what succeeded."""
        stats = DrainStats()
        messages = self._receive_batch()
        if not messages:
            return stats
        stats.rounds, stats.received = 1, len(messages)
        failed_ids = self._invoke(messages, stats)
        succeeded = [m for m in messages if m["MessageId"] not in failed_ids]
        failed = [m for m in messages if m["MessageId"] in failed_ids]
        self._delete(succeeded)
        self._hide_for_retry(failed)
        stats.succeeded, stats.failed = len(succeeded), len(failed)
        with self._lock:
            self.totals.add(stats)
        return stats

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.trigger.batch_size:
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(_RECEIVE_MAX, self.trigger.batch_size - len(messages)),
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            if not received:
                break
            messages.extend(received)
        return messages

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS trigger would pass for these received messages."""
        return {"Records": [self._record(message) for message in messages]}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes") or {}
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {name: attributes[name] for name in _RECORD_ATTRIBUTES if name in attributes},
            "messageAttributes": {
                name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._source_arn,
            "awsRegion": self.template.region,
        }

    def _invoke(self, messages: list[dict[str, Any]], stats: DrainStats) -> set[str]:
        """Run the function; return the ids of the messages that failed."""
        every_id = {message["MessageId"] for message in messages}
        try:
            # One invocation of a function at a time, as the API server and moto's invokes run it
            # (evreplay.local.runtime.function_lock): the processor may also be invoked directly.
            with function_lock(self.trigger.function):
                response = invoke(self._handler, self.event(messages), self.trigger.function, self._timeout)
        except Exception:
            log.exception("%s raised; the whole batch of %d returns to the queue", self.trigger.function, len(messages))
            stats.handler_errors = 1
            return every_id
        if not self.trigger.report_batch_item_failures or response is None:
            return set()
        failures = (response.get("batchItemFailures") or []) if isinstance(response, dict) else None
        if not isinstance(failures, list):
            log.error("%s answered %r: not a batch response; the whole batch fails", self.trigger.function, response)
            return every_id
        identifiers = [failure.get("itemIdentifier") if isinstance(failure, dict) else None for failure in failures]
        if not all(isinstance(identifier, str) and identifier in every_id for identifier in identifiers):
            # Lambda treats an empty, unknown or malformed identifier as a failure of the whole batch.
            log.error(
                "%s reported failures %r outside its batch; the whole batch fails", self.trigger.function, failures
            )
            return every_id
        return {str(identifier) for identifier in identifiers}

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _RECEIVE_MAX):
            chunk = messages[start : start + _RECEIVE_MAX]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                # The message outlived its visibility timeout and may be delivered again: the
                # processor's exactly-once markers make that harmless.
                log.warning("could not delete a processed message: %s", failure)

    def _hide_for_retry(self, messages: list[dict[str, Any]]) -> None:
        if self.retry_visibility_timeout is None or not messages:
            return
        for start in range(0, len(messages), _RECEIVE_MAX):
            chunk = messages[start : start + _RECEIVE_MAX]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": self.retry_visibility_timeout,
                    }
                    for i, m in enumerate(chunk)
                ],
            )

    # ------------------------------------------------------------ loops
    def drain(self, max_rounds: int | None = None) -> DrainStats:
        """Run batches until a receive comes back empty (or `max_rounds` batches ran).

        Messages hidden by their visibility timeout do not count as "there": a failed message
        returns only after `retry_visibility_timeout` (or the queue's timeout), so a drain with
        retry_visibility_timeout=0 runs until every message succeeded or reached the DLQ."""
        total = DrainStats()
        while max_rounds is None or total.rounds < max_rounds:
            stats = self.poll_once()
            if stats.received == 0:
                break
            total.add(stats)
        return total

    def run(self, stop_event: threading.Event) -> None:
        """Poll until `stop_event` is set (the local stack runs this in a background thread)."""
        while not stop_event.is_set():
            try:
                stats = self.poll_once()
            except Exception:  # the local AWS going away at shutdown, a broken handler import...
                log.exception("polling %s failed; retrying", self.trigger.queue)
                stop_event.wait(max(self.poll_interval, 1.0))
                continue
            if stats.received == 0:
                stop_event.wait(self.poll_interval)


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attribute -> the Lambda event's camelCase shape."""
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode("ascii") if isinstance(binary, bytes) else binary,
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType"),
    }

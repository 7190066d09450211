"""Domain exceptions. Their class names double as the error names that the state machine's
Retry/Catch match and as the `code` of an HTTP error body; HTTP statuses are mapped in one place
(`http_status`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# What a botocore call raises once its own retries are spent: an error answer from the service
# (ClientError), or no answer at all (BotoCoreError: connect/read timeouts, connection errors).
# Adapters catch both and name them; a timeout must reach the caller as retryable, never as a 500.
AWS_CALL_ERRORS = (ClientError, BotoCoreError)


class EvReplayError(Exception):
    """Base class: something evreplay knows how to name.

    One wording for every client-facing message, API and console alike: "<field>: <what is wrong,
    and what is allowed>". Raise with the second part; the field is put in front here, once."""

    code = "InternalError"

    def __init__(self, message: str, field: str | None = None) -> None:
        if field and not message.startswith(f"{field}: "):
            message = f"{field}: {message}"
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(EvReplayError):
    """The client sent something the contract does not allow (400)."""

    code = "InvalidRequest"


class PayloadTooLarge(InvalidRequest):
    """The body is larger than the configured maximum (413)."""

    code = "PayloadTooLarge"


class InvalidReplayRequest(InvalidRequest):
    """A replay request (API body or execution input) breaks the replay schema or rules."""

    code = "InvalidReplayRequest"


class InvalidReplayMessage(InvalidRequest):
    """A replay queue message is not a replay message (docs/design.md §4.6), or disagrees with the raw
    object it points at. Retrying cannot help: it ends in the DLQ after the configured receives."""

    code = "InvalidReplayMessage"


class NotFound(EvReplayError):
    code = "NotFound"


class VersionNotFound(NotFound):
    """An aggregate version (entity, day, replay_id) that does not exist (404)."""

    code = "VersionNotFound"


class Conflict(EvReplayError):
    """The request cannot proceed now (an in-flight idempotent request, a finished replay)."""

    code = "Conflict"


class IdempotencyKeyReused(EvReplayError):
    """The same idempotency key arrived with a different body (422)."""

    code = "IdempotencyKeyReused"


class StorageUnavailable(EvReplayError):
    """AWS refused or failed a storage call after retries: retryable by the caller (503)."""

    code = "StorageUnavailable"


class RawObjectExists(EvReplayError):
    """A raw object key was already taken: raw objects are never overwritten."""

    code = "RawObjectExists"


class SqsSendFailed(EvReplayError):
    """SendMessageBatch kept reporting entries as Failed after retries."""

    code = "SqsSendFailed"


class EventBridgeSendFailed(EvReplayError):
    """PutEvents kept reporting entries as failed after retries (docs/design.md §4.12)."""

    code = "EventBridgeSendFailed"


class ReplayIncomplete(EvReplayError):
    """An entity-list or stream replay ended with work items that did not finish (a worker failed or
    was cancelled): the execution fails visibly rather than report a partial result as done."""

    code = "ReplayIncomplete"


class ReplayPlanStale(EvReplayError):
    """An entity held more matching occurrences than the replay's plan counted for it (the stream
    index lagged behind the table): its reserved seq range would overflow, so its work item fails."""

    code = "ReplayPlanStale"


_STATUS = {
    PayloadTooLarge: 413,
    InvalidRequest: 400,
    NotFound: 404,
    Conflict: 409,
    IdempotencyKeyReused: 422,
    StorageUnavailable: 503,
}


def http_status(error: EvReplayError) -> int:
    """The HTTP status for a domain error (the most specific class wins)."""
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_body(error: EvReplayError) -> dict[str, object]:
    """The contract's error shape: {"error": {"code", "message", "field"}}."""
    return {"error": {"code": error.code, "message": error.message, "field": error.field}}


def aws_error_code(exc: Any) -> str:
    """The AWS error code of a botocore ClientError ("" when the response carries none); for an
    error without an answer (a timeout), its class name, e.g. "ReadTimeoutError"."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return type(exc).__name__
    return str(response.get("Error", {}).get("Code", ""))

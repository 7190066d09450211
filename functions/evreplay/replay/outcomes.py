"""How a replay's execution ended, from Step Functions' "Step Functions Execution Status Change"
event (an EventBridge rule on the replay state machine, template.yaml `ReplayRecorderFunction`).

The event covers every way an execution ends - SUCCEEDED, FAILED (an input that never passed the
check included), TIMED_OUT and ABORTED - where a last state in the workflow would run for neither
of the last two. The replay's record (evreplay.replay.state) then holds the status, result or error,
so the audit listing and GET /replays/{id} answer without Step Functions, even once it has forgotten
the execution. The event's `detail` is what DescribeExecution answers, dates in epoch milliseconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from evreplay.core import schemas
from evreplay.core.errors import InvalidReplayRequest, InvalidRequest
from evreplay.core.times import format_utc
from evreplay.replay.request import parse_replay_request, request_view
from evreplay.replay.state import ReplayRecord, ReplayStateStore

ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
PAUSED = "PAUSED"  # not a Step Functions status: an execution that SUCCEEDED with `paused` in its output
RESULT_FIELDS = ("scanned", "duplicates_skipped", "enqueued", "truncated", "pages")
SCOPE_RESULT_FIELDS = ("entities", "occurrences")  # entity lists and streams (docs/design.md §4.11 rule 6)
DRY_RUN_RESULT_FIELDS = ("entities", "top_entities", "preview")  # dry runs of every scope
EVENT_FORMAT_RESULT_FIELDS = ("sent_as_pointer",)  # format "event" (docs/design.md §4.12)
PACED_RESULT_FIELDS = ("achieved_events_per_second",)  # max_events_per_second (§4.13)


def result_of(output: Any) -> dict[str, Any]:
    """The result a finished execution's output holds (docs/design.md §4.7, §4.11 rule 6, §4.12, §4.13)."""
    produced = output if isinstance(output, dict) else {}
    given = produced.get("request")
    request: dict[str, Any] = given if isinstance(given, dict) else {}
    result = {name: produced.get(name) for name in RESULT_FIELDS}
    extra = (
        (() if "entity_id" in request else SCOPE_RESULT_FIELDS)
        + (DRY_RUN_RESULT_FIELDS if request.get("dry_run") else ())
        + (EVENT_FORMAT_RESULT_FIELDS if request.get("format") == "event" else ())
        + (PACED_RESULT_FIELDS if request.get("max_events_per_second") else ())
    )
    result.update({name: produced[name] for name in extra if name in produced})
    return result


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _time(epoch_ms: Any) -> str | None:
    if not isinstance(epoch_ms, (int, float)):
        return None
    return format_utc(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


def _entity(execution_input: Any) -> str | None:
    """The entity an input names, if it is one the listing can key on (a valid entity_id)."""
    value = execution_input.get("entity_id") if isinstance(execution_input, dict) else None
    try:
        schemas.check_property(schemas.REPLAY_REQUEST, "entity_id", value, "entity_id")
    except InvalidRequest:
        return None
    return str(value)


def _source(execution_input: Any) -> str | None:
    """The source a valid input names (a stream replay's, or a source filter), else None."""
    value = execution_input.get("source") if isinstance(execution_input, dict) else None
    try:
        schemas.check_property(schemas.REPLAY_REQUEST, "source", value, "source")
    except InvalidRequest:
        return None
    return str(value)


def _continuation(execution_input: Any, max_limit: int) -> dict[str, Any] | None:
    """A valid input's continuation (the execution continues a long replay), else None."""
    try:
        parse_replay_request(execution_input, max_limit)
    except InvalidReplayRequest:
        return None
    continuation = execution_input.get("continuation")
    return continuation if isinstance(continuation, dict) else None


def ended_replay(detail: dict[str, Any], max_limit: int) -> ReplayRecord | None:
    """The record an ended execution implies, or None when the event changes no replay's status
    (not an end, or an execution that handed the replay on to its continuation)."""
    status = detail.get("status")
    if status not in ENDED:
        return None
    execution_input = _json(detail.get("input"))
    output = _json(detail.get("output"))
    replay_id, generation = str(detail["name"]), 0
    continuation = _continuation(execution_input, max_limit)
    if continuation:
        replay_id, generation = continuation["replay_id"], int(continuation["generation"])
    if status == "SUCCEEDED" and isinstance(output, dict) and output.get("continued_as"):
        return None
    result = error = None
    if status == "SUCCEEDED" and isinstance(output, dict) and output.get("paused"):
        status = PAUSED  # docs/design.md §4.13: stopped at a page boundary, resumable
    elif status == "SUCCEEDED":
        result = result_of(output)
    else:
        error = {"error": detail.get("error"), "cause": detail.get("cause")}
    return ReplayRecord(
        replay_id=replay_id,
        entity_id=_entity(execution_input),
        started_at=_time(detail.get("startDate")) or "",
        execution_arn=str(detail["executionArn"]),
        request=request_view(execution_input, max_limit),
        requested_by=execution_input.get("requested_by") if isinstance(execution_input, dict) else None,
        status=str(status),
        stopped_at=_time(detail.get("stopDate")),
        result=result,
        error=error,
        generation=generation,
        source=_source(execution_input),
    )


def record_status_change(event: dict[str, Any], store: ReplayStateStore, max_limit: int) -> ReplayRecord | None:
    """Apply one status change event to the replay's record; the record as it now is (None: no change)."""
    ended = ended_replay(event.get("detail") or {}, max_limit)
    if ended is None:
        return None
    return store.record_end(ended)

"""Replays as the API sees them: start, follow, list, explain and cancel executions of the replay
state machine (docs/design.md §4). The execution name is the replay_id. While Step Functions keeps the
execution it is the source of truth for status, result, progress and history; the audit listing
reads the replays' records instead (evreplay.replay.state: the last known status, written when an
execution ends), one Query per page, and GET /replays/{id} answers from the record once Step
Functions has forgotten the execution (~90 days after it closed).

A long replay continues in new executions named `<replay_id>--c1`, `--c2`, ... (deterministic, see
`replay_workflow.continuation_name`). Following a replay means following that chain by name, so a
continuation is found even if its parent was stopped or failed right after starting it; the replay's
status is the status of the last execution in the chain.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
)

from evreplay.core import schemas
from evreplay.core.answers import Answer
from evreplay.core.cursors import decode_cursor, encode_cursor
from evreplay.core.errors import (
    AWS_CALL_ERRORS,
    Conflict,
    InvalidRequest,
    NotFound,
    StorageUnavailable,
    aws_error_code,
)
from evreplay.core.event_ids import canonical_json
from evreplay.core.idempotency import IN_PROGRESS_SECONDS, IdempotentCall
from evreplay.core.observability import logger
from evreplay.core.times import format_utc
from evreplay.replay.destinations import Destination
from evreplay.replay.outcomes import PAUSED, result_of
from evreplay.replay.request import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_SCOPE_LIMIT,
    ReplayRequest,
    parse_api_request,
    request_view,
)
from evreplay.replay.state import ReplayRecord, ReplayStateStore
from evreplay.replay.workflow import Progress, continuation_name, next_execution

RUNNING = "RUNNING"
# The listing's query string is replays_query.schema.json: its enum and bounds, read once.
_QUERY = schemas.load(schemas.REPLAYS_QUERY)["properties"]
STATUSES: tuple[str, ...] = tuple(_QUERY["status"]["enum"])
DEFAULT_LIST_LIMIT: int = _QUERY["limit"]["default"]
MAX_LIST_LIMIT: int = _QUERY["limit"]["maximum"]
# Step Functions execution names: 1-80 characters, none of these (they would also break the ARN).
_EXECUTION_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")
# History events worth showing a person; the rest (scheduled/started/exited) is plumbing.
_SHOWN_EVENTS = {
    "ExecutionStarted",
    "ExecutionSucceeded",
    "ExecutionFailed",
    "ExecutionAborted",
    "ExecutionTimedOut",
    "TaskStateEntered",
    "ChoiceStateEntered",
    "WaitStateEntered",
    "PassStateEntered",
    "TaskSucceeded",
    "TaskFailed",
    "TaskTimedOut",
    "LambdaFunctionFailed",
}
# The states whose output a resume goes on from (the last one the execution left).
_RESUMABLE_STATES = ("ReplayPage", "PlanReplay", "ValidateRequest")
# Names of keyed replays' executions (uuid5 of the key and the request) live in this namespace.
_KEYED_REPLAY_NAMESPACE = uuid.UUID("5c0e7a43-2f5e-4d0a-9b1e-6f3c2a9d8e71")


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return format_utc(value)
    return str(value) if value else None


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class ReplayService:
    def __init__(
        self,
        stepfunctions_client: Any,
        state_machine_arn: str,
        store: ReplayStateStore,
        idempotency_persistence: DynamoDBPersistenceLayer,
        idempotency_ttl_seconds: int,
        max_limit: int,
        new_replay_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        max_scope_limit: int = DEFAULT_MAX_SCOPE_LIMIT,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        destinations: dict[str, Destination] | None = None,
        max_events_per_second: int | None = None,
    ) -> None:
        self.destinations = destinations or {}
        self._max_events_per_second = max_events_per_second
        self._max_scope_limit = max_scope_limit
        self._max_concurrency = max_concurrency
        self._sfn = stepfunctions_client
        self.state_machine_arn = state_machine_arn
        self._store = store
        self._max_limit = max_limit
        self._new_replay_id = new_replay_id
        self.idempotent = IdempotentCall(
            self._start_call,
            idempotency_persistence,
            idempotency_ttl_seconds,
            key_prefix="evreplay.replay",
            payload_field="request",
            key_field="Idempotency-Key",
            in_flight_message=(
                "a replay with this Idempotency-Key is starting (it began less than "
                f"{IN_PROGRESS_SECONDS} s ago); retry in a second"
            ),
            reused_message="this Idempotency-Key was used with a different replay request",
            status_code=202,
        )

    def list_destinations(self) -> dict[str, Any]:
        """GET /destinations: what a replay may send to, `default` (the built-in queue) first."""
        return {"items": [destination.as_dict() for destination in self.destinations.values()]}

    # ------------------------------------------------------------------ start
    def start(self, body: Any, requested_by: dict[str, Any], idempotency_key: str | None = None) -> Answer:
        """POST /replays: validate, start the execution; the 202 answer. Same key and body: same replay."""
        request = parse_api_request(
            body,
            self._max_limit,
            max_scope_limit=self._max_scope_limit,
            max_concurrency=self._max_concurrency,
            destinations=self.destinations,
            max_events_per_second=self._max_events_per_second,
        )
        if idempotency_key is None:
            return self._start(request, requested_by, self._new_replay_id())
        if not idempotency_key.strip() or len(idempotency_key) > 256:
            raise InvalidRequest("must be 1-256 characters", field="Idempotency-Key")
        call = {"idempotency_key": idempotency_key, "request": request.as_dict()}
        return self.idempotent(call, requested_by=requested_by)

    def _start_call(self, call: dict[str, Any], requested_by: dict[str, Any]) -> Answer:
        # Through Powertools' idempotency wrapper: it stores what this returns under the key. The
        # execution name comes from the key and the request, so two runs of one keyed start (one
        # outliving its idempotency record's in-progress window, evreplay.core.idempotency) start one
        # execution: the second StartExecution meets the first's name and answers that replay.
        name = uuid.uuid5(_KEYED_REPLAY_NAMESPACE, f"{call['idempotency_key']}\x00{canonical_json(call['request'])}")
        return self._start(ReplayRequest.from_dict(call["request"]), requested_by, str(name))

    def _start(self, request: ReplayRequest, requested_by: dict[str, Any], replay_id: str) -> Answer:
        execution_input = {**request.as_dict(), "requested_by": requested_by}
        try:
            started = self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=replay_id, input=json.dumps(execution_input)
            )
        except AWS_CALL_ERRORS as exc:
            started = self._started_before(exc, replay_id, execution_input)
        logger.info("replay started", extra={"replay_id": replay_id, "request": execution_input})
        status = str(started.get("status", RUNNING))  # an execution found already ended says so
        return Answer.of(202, {"replay_id": replay_id, "status": status, "execution_arn": started["executionArn"]})

    def _started_before(self, exc: Exception, replay_id: str, execution_input: dict[str, Any]) -> dict[str, Any]:
        """ExecutionAlreadyExists for a replay_id this call made up or derived from its key: an
        earlier attempt of this StartExecution (its answer lost), or an earlier run of this keyed
        start, started it. Step Functions says so once the execution has ended, or while it runs
        when the input differs (another run's `requested_by`). Same request: this replay."""
        if _code(exc) == "ExecutionAlreadyExists":
            existing = self._describe(replay_id)
            if existing is not None and _without_caller(_json(existing.get("input"))) == _without_caller(
                execution_input
            ):
                return existing
        raise StorageUnavailable(f"could not start the replay ({_code(exc)}); retry") from exc

    # ------------------------------------------------------------------ follow
    def execution_arn(self, name: str) -> str:
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{prefix}:{name}"

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            described: dict[str, Any] = self._sfn.describe_execution(executionArn=self.execution_arn(name))
        except AWS_CALL_ERRORS as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                return None
            raise StorageUnavailable(f"could not describe the replay ({_code(exc)}); retry") from exc
        return described

    def chain(self, replay_id: str) -> list[dict[str, Any]]:
        """DescribeExecution of the replay's execution and of each continuation, in order."""
        if not _EXECUTION_NAME.match(replay_id):
            raise NotFound(f"no replay {replay_id!r}", field="replay_id")
        first = self._describe(replay_id)
        if first is None:
            raise NotFound(f"no replay {replay_id!r}", field="replay_id")
        executions = [first]
        while (following := self._describe(continuation_name(replay_id, len(executions)))) is not None:
            executions.append(following)
        return executions

    def _expired(self, replay_id: str) -> ReplayRecord:
        """The record of a replay whose execution Step Functions no longer has; 404 when there is none."""
        record = self._store.get(replay_id)
        if record is None:
            raise NotFound(f"no replay {replay_id!r}", field="replay_id")
        return record

    def _chain_or_record(self, replay_id: str) -> tuple[list[dict[str, Any]], ReplayRecord | None]:
        """The chain, or ([], its record) for a replay whose executions Step Functions no longer keeps
        (404 when there is no record either)."""
        try:
            return self.chain(replay_id), None
        except NotFound:
            if not _EXECUTION_NAME.match(replay_id):
                raise
            return [], self._expired(replay_id)

    def get(self, replay_id: str) -> dict[str, Any]:
        """GET /replays/{id}: live from Step Functions, or the record's last known status."""
        executions, record = self._chain_or_record(replay_id)
        if record is not None:
            return self._record_view(record)
        return self._view(replay_id, executions)

    def _record_view(self, record: ReplayRecord) -> dict[str, Any]:
        """What a record says about its replay (the listing's items, and GET of an expired execution)."""
        view: dict[str, Any] = {
            "replay_id": record.replay_id,
            "status": record.status,
            "execution_arn": record.execution_arn,
            "request": record.request,
            "requested_by": record.requested_by,
            "started_at": record.started_at,
            "stopped_at": record.stopped_at,
        }
        if record.generation:
            view["executions"] = [record.execution_arn] + [
                self.execution_arn(continuation_name(record.replay_id, n)) for n in range(1, record.generation + 1)
            ]
        if record.result is not None:
            view["result"] = record.result
        elif record.error is not None:
            view["error"] = record.error
        return view

    def _view(self, replay_id: str, executions: list[dict[str, Any]]) -> dict[str, Any]:
        first, last = executions[0], executions[-1]
        execution_input = _json(first.get("input"))
        status = _status(last)
        view: dict[str, Any] = {
            "replay_id": replay_id,
            "status": status,
            "execution_arn": first["executionArn"],
            "request": request_view(execution_input, self._max_limit),
            "requested_by": _requested_by(execution_input),
            "started_at": _iso(first.get("startDate")),
            "stopped_at": _iso(last.get("stopDate")) if status != RUNNING else None,
        }
        if len(executions) > 1:
            view["executions"] = [execution["executionArn"] for execution in executions]
        if status == "SUCCEEDED":
            view["result"] = result_of(_json(last.get("output")))
        elif status == PAUSED:
            output = _json(last.get("output")) or {}
            counters = output.get("progress") or output
            view["progress"] = {
                name: counters.get(name) for name in ("scanned", "duplicates_skipped", "enqueued") if name in counters
            }
        elif status == RUNNING:
            progress = (
                self._progress(last["executionArn"]) if _one_entity(execution_input) else self._work_progress(replay_id)
            )
            if progress:
                view["progress"] = progress
        else:
            view["error"] = {"error": last.get("error"), "cause": last.get("cause")}
        return view

    def _progress(self, execution_arn: str) -> dict[str, Any] | None:
        """Counters of the latest finished step of a running execution (from its history)."""
        try:
            events = self._sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=20)
        except AWS_CALL_ERRORS as exc:
            logger.warning("could not read execution history", extra={"code": _code(exc)})
            return None
        for event in sorted(events.get("events", []), key=lambda e: e["id"], reverse=True):
            if event["type"] == "TaskSucceeded":
                payload = (_json(event["taskSucceededEventDetails"].get("output")) or {}).get("Payload") or {}
                progress = payload.get("progress") if isinstance(payload, dict) else None
                if progress:
                    return {
                        name: progress.get(name)
                        for name in ("scanned", "duplicates_skipped", "enqueued", "pages", "generation")
                    }
        return None

    def _work_progress(self, replay_id: str) -> dict[str, Any] | None:
        """An entity-list or stream replay's progress: the plan's totals and every work item's counters
        (docs/design.md §4.11 rule 7); None while it is still planning."""
        plan, items = self._store.work(replay_id)
        if plan is None:
            return None
        return {
            "entities_total": plan["entities_total"],
            "entities_done": sum(int(item["entities_done"]) for item in items),
            "enqueued": sum(int(item["enqueued"]) for item in items),
            "items_total": plan["items_total"],
            "items_done": sum(1 for item in items if item.get("done")),
        }

    # ------------------------------------------------------------------ list
    def list_replays(
        self, entity_id: str | None, status: str | None, limit: int, cursor: str | None, source: str | None = None
    ) -> dict[str, Any]:
        """GET /replays: newest first, from the records alone (console starts included, failed input
        checks too): one Query per page, the filters part of its key, whatever Step Functions still
        keeps. A status is the last one recorded: an execution's end shows within seconds of it."""
        # Each value was checked against replays_query.schema.json (status its enum, source its pattern).
        if source is not None and entity_id is not None:
            raise InvalidRequest("lists one source's replays: give entity_id or source, not both", field="source")
        position = decode_cursor(cursor, ("sk",))
        records, next_sk = self._store.list_records(
            entity_id, status, limit, position["sk"] if position else None, source=source
        )
        items = [{"entity_id": record.entity_id, **self._record_view(record)} for record in records]
        return {"items": items, "next_cursor": encode_cursor({"sk": next_sk} if next_sk else None)}

    # ------------------------------------------------------------------ history
    def history(self, replay_id: str) -> dict[str, Any]:
        """GET /replays/{id}/history: every execution of the replay, summarized for a person."""
        executions, record = self._chain_or_record(replay_id)
        if record is not None:
            raise NotFound(
                f"replay {replay_id} ({record.status}): Step Functions no longer keeps its execution, so its "
                f"history is gone; GET /replays/{replay_id} shows its last known status",
                field="replay_id",
            )
        events: list[dict[str, Any]] = []
        counts = {"history_events": 0, "state_transitions": 0}
        for execution in executions:
            raw = self._history(execution["executionArn"])
            counts["history_events"] += len(raw)
            counts["state_transitions"] += sum(1 for event in raw if event["type"].endswith("StateEntered"))
            events.extend(_summarize(execution["name"], raw))
        return {
            "replay_id": replay_id,
            "status": executions[-1]["status"],
            "executions": [execution["executionArn"] for execution in executions],
            **counts,
            "events": events,
        }

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        pages = self._sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution_arn, PaginationConfig={"PageSize": 1000}
        )
        try:
            events = [event for page in pages for event in page.get("events", [])]
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not read the replay's history ({_code(exc)}); retry") from exc
        return sorted(events, key=lambda event: event["id"])

    # ------------------------------------------------------------------ cancel
    def cancel(self, replay_id: str) -> dict[str, Any]:
        """DELETE /replays/{id}: stop the running execution(s) of the replay; 409 if it already ended."""
        executions, record = self._chain_or_record(replay_id)
        if record is not None:
            raise Conflict(f"replay {replay_id} already ended ({record.status})", field="replay_id")
        if not any(execution["status"] == RUNNING for execution in executions):
            raise Conflict(f"replay {replay_id} already ended ({_status(executions[-1])})", field="replay_id")
        if not _one_entity(_json(executions[0].get("input"))):
            # Before the stop: the Distributed Map's workers read it before every page.
            self._store.mark_cancelled(replay_id)
        stopped_at: Any = None
        for execution in executions:
            if execution["status"] == RUNNING:
                stopped_at = self._stop(execution["executionArn"])
        # The execution may have started its continuation between our describe and our stop.
        following = self._describe(continuation_name(replay_id, len(executions)))
        if following is not None and following["status"] == RUNNING:
            stopped_at = self._stop(following["executionArn"])
        logger.info("replay cancelled", extra={"replay_id": replay_id})
        view = self.get(replay_id)
        if view["status"] == RUNNING:  # stopped; a describe right after may not show it yet
            view.pop("progress", None)
            view.update(status="ABORTED", stopped_at=_iso(stopped_at))
        return view

    # ------------------------------------------------------------------ pause, resume (docs/design.md §4.13)
    def pause(self, replay_id: str) -> dict[str, Any]:
        """POST /replays/{id}/pause: the replay stops at its next page boundary and shows PAUSED."""
        executions = self._chain_or_conflict(replay_id)
        if executions[-1]["status"] != RUNNING:
            raise Conflict(
                f"replay {replay_id} is not running ({_status(executions[-1])}): only a running replay pauses",
                field="replay_id",
            )
        self._store.mark_paused(replay_id)
        logger.info("replay pause requested", extra={"replay_id": replay_id})
        return self.get(replay_id)

    def resume(self, replay_id: str) -> dict[str, Any]:
        """POST /replays/{id}/resume: a PAUSED or FAILED replay goes on under the same replay_id, in the
        next execution of its chain, from the last state its last execution reached."""
        executions = self._chain_or_conflict(replay_id)
        last = executions[-1]
        status = _status(last)
        if status not in (PAUSED, "FAILED"):
            raise Conflict(f"replay {replay_id} is {status}: only a PAUSED or FAILED replay resumes", field="replay_id")
        state = self._resume_state(last["executionArn"])
        if state is None:
            raise Conflict(
                f"replay {replay_id} failed before it was under way ({last.get('error')}): start it again",
                field="replay_id",
            )
        progress = replace(
            Progress.from_dict(state["progress"]), generation=len(executions) - 1, paused=False, wait_seconds=0
        )
        carried = {"request": state["request"], "execution_arn": last["executionArn"]}
        following = next_execution(replay_id, carried, progress, state.get("plan"))
        self._store.mark_paused(replay_id, False)  # before the start: its first page must not stop again
        try:
            self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=following["name"],
                input=json.dumps(following["input"], ensure_ascii=False),
            )
        except AWS_CALL_ERRORS as exc:
            # Already started: this resume's answer was lost and it is being asked again.
            if _code(exc) != "ExecutionAlreadyExists":
                raise StorageUnavailable(f"could not resume the replay ({_code(exc)}); retry") from exc
        record = self._store.get(replay_id)
        if record is not None:
            running = replace(record, status=RUNNING, stopped_at=None, result=None, error=None)
            self._store.record_end(replace(running, generation=progress.generation + 1))
        logger.info("replay resumed", extra={"replay_id": replay_id, "execution": following["name"]})
        return self.get(replay_id)

    def _chain_or_conflict(self, replay_id: str) -> list[dict[str, Any]]:
        executions, record = self._chain_or_record(replay_id)
        if record is not None:
            raise Conflict(
                f"replay {replay_id} ({record.status}): Step Functions no longer keeps its execution",
                field="replay_id",
            )
        return executions

    def _resume_state(self, execution_arn: str) -> dict[str, Any] | None:
        """The last state the execution handed from one step to the next: a page's (one entity), the
        plan's (entity lists and streams) or the checked input's; None when there is none to go on from
        (the input check failed, or the limit guard did: nothing was sent)."""
        for event in reversed(self._history(execution_arn)):
            details = event.get("stateExitedEventDetails") or {}
            if event["type"] != "TaskStateExited" or details.get("name") not in _RESUMABLE_STATES:
                continue
            state = _json(details.get("output"))
            if not isinstance(state, dict) or (state.get("plan") or {}).get("too_large"):
                return None
            return state
        return None

    def _stop(self, execution_arn: str) -> Any:
        try:
            stopped = self._sfn.stop_execution(
                executionArn=execution_arn, error="ReplayCancelled", cause="cancelled through DELETE /replays/{id}"
            )
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not stop the replay ({_code(exc)}); retry") from exc
        return stopped.get("stopDate")


def _status(execution: dict[str, Any]) -> str:
    """Step Functions' status, or PAUSED for an execution that ended at a pause (docs/design.md §4.13)."""
    status = str(execution["status"])
    if status == "SUCCEEDED":
        output = _json(execution.get("output"))
        if isinstance(output, dict) and output.get("paused"):
            return PAUSED
    return status


def _code(exc: Exception) -> str:
    return aws_error_code(exc) or "error"


def _without_caller(execution_input: Any) -> Any:
    """An execution's input as a request: who asked (and through which API request) left out."""
    if not isinstance(execution_input, dict):
        return execution_input
    return {name: value for name, value in execution_input.items() if name != "requested_by"}


def _one_entity(execution_input: Any) -> bool:
    """Whether an execution input is a one-entity replay (or not a request at all)."""
    return (
        not isinstance(execution_input, dict)
        or "entity_id" in execution_input
        or not ("entity_ids" in execution_input or "source" in execution_input)
    )


def _requested_by(execution_input: Any) -> Any:
    return execution_input.get("requested_by") if isinstance(execution_input, dict) else None


def _summarize(execution_name: str, raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per event a person cares about: which state ran, what each page did, errors, outcome."""
    shown: list[dict[str, Any]] = []
    state: str | None = None
    for event in raw:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            state = event.get("stateEnteredEventDetails", {}).get("name")
        if kind not in _SHOWN_EVENTS:
            continue
        entry: dict[str, Any] = {
            "execution": execution_name,
            "id": event["id"],
            "timestamp": _iso(event.get("timestamp")),
            "type": kind,
            "state": state,
        }
        detail = _detail(kind, event)
        if detail is not None:
            entry["detail"] = detail
        shown.append(entry)
    return shown


_FAILURE_DETAILS = (
    "taskFailedEventDetails",
    "taskTimedOutEventDetails",
    "lambdaFunctionFailedEventDetails",
    "executionFailedEventDetails",
    "executionAbortedEventDetails",
    "executionTimedOutEventDetails",
)


def _detail(kind: str, event: dict[str, Any]) -> Any:
    if kind == "ExecutionStarted":
        return _json(event.get("executionStartedEventDetails", {}).get("input"))
    if kind == "ExecutionSucceeded":
        return _json(event.get("executionSucceededEventDetails", {}).get("output"))
    if kind == "TaskSucceeded":
        output = _json(event.get("taskSucceededEventDetails", {}).get("output"))
        payload = output.get("Payload") if isinstance(output, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("progress"), dict):
            progress = payload["progress"]
            counters = ("scanned", "duplicates_skipped", "enqueued", "pages", "done", "truncated")
            return {**{name: progress.get(name) for name in counters}, "page": progress.get("last_page") or None}
        if isinstance(output, dict) and "ExecutionArn" in output:
            return {"continued_as": output["ExecutionArn"]}
        return None
    for details in _FAILURE_DETAILS:
        if details in event:
            return {"error": event[details].get("error"), "cause": event[details].get("cause")}
    return None

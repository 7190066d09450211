"""What the replay state machine's two Lambda tasks do (statemachines/replay.asl.json).

The workflow's state is small and the same between every step (never rows):

    {"replay_id", "execution_arn", "request": {...}, "progress": {...}}

plus `next_execution` {"name", "input"} when the page says to continue in a new execution.

- `start_replay` (ValidateRequest): checks the execution input with the API's rules, records the
  replay for the audit listing, and builds the first state; for a continuation execution it picks up
  the counters and cursor it was handed.
- `ReplayPager.run` (ReplayPage): one DynamoDB Query page, the rules of `replay_plan`, the messages
  sent 10 per SendMessageBatch, and the new state. A retried page repeats the same decisions and the
  same messages: claims are idempotent and `seq` follows from the counters in the state.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from evreplay.core.errors import InvalidReplayRequest
from evreplay.core.observability import logger, metrics
from evreplay.core.times import InvalidTimestamp, normalize
from evreplay.replay.concurrency import DEFAULT_WORKERS, run_batches
from evreplay.replay.plan import BATCH_SIZE, PagePlan, plan_page
from evreplay.replay.queue import ReplayMessage, SendReport
from evreplay.replay.request import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_SCOPE_LIMIT,
    ENTITY,
    ReplayRequest,
    parse_replay_request,
)
from evreplay.replay.senders import Senders
from evreplay.replay.state import ReplayRecord, ReplayStateStore
from evreplay.store.index import DUPLICATE, EventIndex, IndexRow, entity_pk

MAX_EXECUTION_NAME = 80
REGISTRY_READ_KEYS = 100  # BatchGetItem's most keys per request: one registry read per worker
PREVIEW_SIZE = 10  # message bodies a dry run shows (docs/design.md §4.11 rule 6)
CONTINUATION_MARK = "--c"


@dataclass(frozen=True)
class Progress:
    """Counters and position of a replay, carried from step to step (and across executions)."""

    as_of: str  # the replay's snapshot time: rows ingested later are not part of it
    generation: int = 0  # 0 for the execution the replay started in, +1 per continue-as-new
    cursor: str | None = None  # sort key of the last consumed index row
    scanned: int = 0
    duplicates_skipped: int = 0
    enqueued: int = 0
    pages: int = 0  # DynamoDB Query calls, all executions together
    pages_in_execution: int = 0
    done: bool = False
    truncated: bool = False
    continue_as_new: bool = False
    last_page: dict[str, Any] = field(default_factory=dict)
    # docs/design.md §4.11 rule 6, for one entity: whether it matched, and (dry runs) its first message bodies.
    entities: int = 0
    top_entities: list[dict[str, Any]] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    sent_as_pointer: int = 0  # docs/design.md §4.12: event-format messages too large, sent as pointers
    pace: dict[str, Any] | None = None  # §4.13: the token bucket of a paced replay (Pace)
    wait_seconds: int = 0  # §4.13: the PaceWait state waits this long before the next page
    achieved_events_per_second: float | None = None  # §4.13: once a paced replay is done
    paused: bool = False  # §4.13: POST /replays/{id}/pause was seen at this page boundary

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Pace:
    """Pacing (docs/design.md §4.13) as a token bucket of `rate` tokens a second holding at most `rate`:
    a step sends at most the tokens it finds, so any 10 seconds carry at most 10 s of refill plus one
    full bucket, 1.1x the rate. Between steps the workflow's PaceWait state waits (whole seconds, shown
    in the history) until the bucket holds a step's worth again. The bucket travels in the state:
    {"tokens", "at" (epoch seconds), "first" and "last" (when sending began and last ended)}."""

    def __init__(
        self, rate: int, state: dict[str, Any] | None, clock: Callable[[], float] = time.time, *, full: bool = True
    ) -> None:
        self.rate = rate
        self._clock = clock
        # A replay starts with a full bucket; a work item of a stream replay with an empty one: it may
        # take the place of an item that just sent its last full bucket.
        fresh: dict[str, Any] = {"tokens": float(rate) if full else 0.0, "at": clock(), "first": None, "last": None}
        self.state: dict[str, Any] = dict(state) if state else fresh
        now = clock()
        elapsed = max(0.0, now - float(self.state["at"]))
        self.state["tokens"] = min(float(rate), float(self.state["tokens"]) + rate * elapsed)
        self.state["at"] = now

    @property
    def quota(self) -> int:
        """Messages this step may send: the whole tokens in the bucket."""
        return max(0, math.floor(self.state["tokens"] + 1e-9))

    def spent(self, messages: int, started: float) -> None:
        if messages:
            self.state["tokens"] = float(self.state["tokens"]) - messages
            self.state["first"] = self.state["first"] if self.state["first"] is not None else started
            # The bucket refills only between sends: a message arrives while its step sends, so counting
            # from the send's end keeps any window's arrivals within the bound whatever a send takes.
            self.state["last"] = self.state["at"] = self._clock()

    def wait_seconds(self, step: int) -> int:
        """Whole seconds until the bucket holds `step` tokens (a full bucket at most)."""
        now = self._clock()
        tokens = min(float(self.rate), float(self.state["tokens"]) + self.rate * max(0.0, now - self.state["at"]))
        deficit = min(step, self.rate) - tokens
        return max(0, math.ceil(deficit / self.rate - 1e-9)) if deficit > 0 else 0


def achieved_rate(enqueued: int, first: float | None, last: float | None) -> float | None:
    """Messages a second over the span from the first send to the end of the last (None: one instant)."""
    if first is None or last is None or last <= first:
        return None
    return round(enqueued / (last - first), 3)


def continuation_name(replay_id: str, generation: int) -> str:
    """The execution name of a replay's `generation`-th continuation (unique, at most 80 chars)."""
    suffix = f"{CONTINUATION_MARK}{generation}"
    if len(replay_id) + len(suffix) <= MAX_EXECUTION_NAME:
        return replay_id + suffix
    digest = hashlib.sha256(replay_id.encode("utf-8")).hexdigest()[:8]
    return f"{replay_id[: MAX_EXECUTION_NAME - len(suffix) - 9]}-{digest}{suffix}"


def start_replay(
    execution_input: Any,
    execution_name: str,
    execution_arn: str,
    started_at: str,
    max_limit: int,
    store: ReplayStateStore,
    max_scope_limit: int = DEFAULT_MAX_SCOPE_LIMIT,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    destinations: Collection[str] | None = None,
    max_events_per_second: int | None = None,
) -> dict[str, Any]:
    """ValidateRequest: the first state of an execution, or InvalidReplayRequest naming the field.
    `scope` in the state says which way the workflow goes: the page loop for one entity, the
    Distributed Map for an entity list or a stream."""
    # An InvalidReplayRequest's message ("<field>: ...") becomes the execution's cause.
    request = parse_replay_request(
        execution_input,
        max_limit,
        root="input",
        max_scope_limit=max_scope_limit,
        max_concurrency=max_concurrency,
        destinations=destinations,
        max_events_per_second=max_events_per_second,
    )
    continuation = execution_input.get("continuation")
    if continuation is not None and request.scope != ENTITY and "plan" not in continuation:
        raise InvalidReplayRequest(
            "an entity-list or stream replay continues (resumes) only with its plan", field="continuation"
        )
    if continuation is None:
        replay_id = execution_name
        progress = Progress(as_of=normalize(started_at))
        store.record(
            ReplayRecord(
                replay_id=replay_id,
                entity_id=request.entity_id,
                started_at=progress.as_of,
                execution_arn=execution_arn,
                request={k: v for k, v in request.as_dict().items() if k != "requested_by"},
                requested_by=request.requested_by,
                source=request.source,
            )
        )
        metrics.add_metric(name="ReplayRequestedCount", unit=MetricUnit.Count, value=1)
    else:
        replay_id = continuation["replay_id"]
        try:
            as_of = normalize(continuation["as_of"])
        except InvalidTimestamp as exc:
            raise InvalidReplayRequest(str(exc), field="continuation.as_of") from exc
        progress = Progress(
            as_of=as_of,
            generation=continuation["generation"],
            cursor=continuation["cursor"],
            scanned=continuation["scanned"],
            duplicates_skipped=continuation["duplicates_skipped"],
            enqueued=continuation["enqueued"],
            pages=continuation["pages"],
            preview=continuation.get("preview", []),
            sent_as_pointer=continuation.get("sent_as_pointer", 0),
            pace=continuation.get("pace"),
        )
    logger.info(
        "replay execution started",
        extra={"replay_id": replay_id, "generation": progress.generation, "request": request.as_dict()},
    )
    state = {
        "replay_id": replay_id,
        "execution_arn": execution_arn,
        "scope": request.scope,
        "request": request.as_dict(),
        "progress": progress.as_dict(),
        # A resumed entity-list or stream replay skips planning: its workers pick up where they stopped.
        "resumed": continuation is not None,
    }
    if continuation is not None and "plan" in continuation:
        state["plan"] = continuation["plan"]
    return state


class _InPageClaims:
    """The `Claims` of a page that holds the whole window: nothing before it, nothing after it, so the
    first occurrence the page meets holds the event (plan_page remembers it for the page's repeats)."""

    def claim(self, event_id: str, row_sk: str) -> bool:
        return True

    def held_by_other(self, event_id: str, row_sk: str) -> bool:
        return False


class _ReplayClaims:
    """The `Claims` protocol over the state table, bound to one replay."""

    def __init__(self, store: ReplayStateStore, replay_id: str) -> None:
        self._store = store
        self._replay_id = replay_id

    def claim(self, event_id: str, row_sk: str) -> bool:
        return self._store.claim(self._replay_id, event_id, row_sk)

    def held_by_other(self, event_id: str, row_sk: str) -> bool:
        return self._store.held_by_other(self._replay_id, event_id, row_sk)


class ReplayPager:
    """ReplayPage: one page per call."""

    def __init__(
        self,
        index: EventIndex,
        store: ReplayStateStore,
        senders: Senders,
        page_size: int,
        pages_per_execution: int,
        clock: Callable[[], float] = time.time,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._index = index
        self._store = store
        self._senders = senders
        self.clock = clock
        self.page_size = page_size
        self.pages_per_execution = pages_per_execution
        self._workers = max_workers

    def run(self, state: dict[str, Any]) -> dict[str, Any]:
        replay_id: str = state["replay_id"]
        request = ReplayRequest.from_dict(state["request"])
        progress = Progress.from_dict(state["progress"])
        if self._store.paused(replay_id):
            # A page boundary: nothing of this page read or sent; resume continues from this progress.
            logger.info("replay paused", extra={"replay_id": replay_id, "progress": progress.as_dict()})
            return {**self._out(replay_id, state, replace(progress, paused=True, wait_seconds=0)), "paused": True}
        pace = Pace(request.max_events_per_second, progress.pace, self.clock) if request.max_events_per_second else None
        # An empty bucket (a wait cut short): no page this time, only the wait.
        updated = (
            progress
            if pace is not None and pace.quota == 0
            else self.page(replay_id, replay_id, request, progress, pace=pace)
        )
        if pace is not None:
            wait = 0 if updated.done or updated.continue_as_new else pace.wait_seconds(self.page_size)
            achieved = (
                achieved_rate(updated.enqueued, pace.state["first"], pace.state["last"]) if updated.done else None
            )
            updated = replace(updated, pace=pace.state, wait_seconds=wait, achieved_events_per_second=achieved)
        logger.info("replay page done", extra={"replay_id": replay_id, "progress": updated.as_dict()})
        out = self._out(replay_id, state, updated)
        if updated.continue_as_new:
            out["next_execution"] = self._next_execution(replay_id, state, updated)
        return out

    @staticmethod
    def _out(replay_id: str, state: dict[str, Any], progress: Progress) -> dict[str, Any]:
        return {
            "replay_id": replay_id,
            "execution_arn": state["execution_arn"],
            "request": state["request"],
            "progress": progress.as_dict(),
        }

    def send(self, messages: list[ReplayMessage], request: ReplayRequest) -> SendReport:
        report = self._senders.get(request.destination, request.format).send(messages)
        if messages:
            metrics.add_metric(name="ReplayMessageCount", unit=MetricUnit.Count, value=len(messages))
        return report

    def page(
        self,
        replay_id: str,
        claims_id: str,
        request: ReplayRequest,
        progress: Progress,
        seq_base: int = 0,
        outbox: list[ReplayMessage] | None = None,
        pace: Pace | None = None,
        max_rows: int | None = None,
    ) -> Progress:
        """One page of one entity (`request.entity_id`): read, decide, send; the new progress. Messages
        carry `seq_base + position` (an entity-list or stream replay reserves each entity a seq range);
        duplicate markers are those of `claims_id` (the replay, or the replay and entity). With an
        `outbox`, the messages are added to it instead of sent: the caller sends several small
        entities' pages together, 10 per SendMessageBatch, before it reports the step done. With a `pace`,
        the page reads (and so sends) at most its quota; `max_rows` caps the rows read as well."""
        assert request.entity_id is not None
        start_key = (
            {"pk": {"S": entity_pk(request.entity_id)}, "sk": {"S": progress.cursor}} if progress.cursor else None
        )
        # Strongly consistent reads: an event stored before the replay started is part of it.
        rows, last_key = self._index.query_window(
            request.entity_id,
            request.start_time,
            request.end_time,
            limit=self._rows_to_read(request, progress, pace, max_rows),
            exclusive_start_key=start_key,
            consistent=True,
            source=request.source,
            event_types=request.event_types,
        )
        # The whole window in one page (a small entity): duplicates are all in view, so the page itself
        # decides them (first in replay order wins) with no registry read and no marker written.
        whole = progress.cursor is None and last_key is None
        plan = plan_page(
            rows,
            more=last_key is not None,
            enqueued=progress.enqueued,
            limit=request.limit,
            include_duplicates=request.include_duplicates,
            as_of=progress.as_of,
            needs_check=(lambda row: True) if whole else self._needs_check(request, rows),
            claims=_InPageClaims() if whole else _ReplayClaims(self._store, claims_id),
        )
        messages = [
            ReplayMessage(
                replay_id=replay_id,
                seq=seq_base + progress.enqueued + position,
                event_id=row.event_id,
                entity_id=row.entity_id,
                event_time=row.event_time,
                s3_bucket=row.s3_bucket,
                s3_key=row.s3_key,
                event_type=row.event_type,
            )
            for position, row in enumerate(plan.send, start=1)
        ]
        if request.dry_run:
            report = SendReport()
        elif outbox is not None:
            outbox.extend(messages)
            report = SendReport()
        else:
            started = self.clock()
            report = self.send(messages, request)
            if pace is not None:
                pace.spent(len(messages), started)
        updated = self._advance(progress, plan, rows, last_key, messages, report)
        if request.dry_run and len(updated.preview) < PREVIEW_SIZE:
            bodies = [json.loads(message.body()) for message in messages[: PREVIEW_SIZE - len(updated.preview)]]
            updated = replace(updated, preview=updated.preview + bodies)
        return replace(
            updated,
            entities=1 if updated.scanned else 0,
            top_entities=[{"entity_id": request.entity_id, "occurrences": updated.scanned}] if updated.scanned else [],
        )

    def _rows_to_read(
        self, request: ReplayRequest, progress: Progress, pace: Pace | None = None, max_rows: int | None = None
    ) -> int:
        """Near the limit, only what can still matter: the remaining messages and a batch more to
        find out `truncated`. Once the limit is reached, a whole page: what follows may be a long
        run of duplicates, each read in vain. A paced page: at most its quota (each row read may be sent)."""
        remaining = request.limit - progress.enqueued
        rows = min(self.page_size, remaining + BATCH_SIZE) if remaining > 0 else self.page_size
        if pace is not None:
            rows = min(rows, pace.quota)
        return max(1, min(rows, max_rows)) if max_rows is not None else rows

    def _needs_check(self, request: ReplayRequest, rows: list[IndexRow]) -> Any:
        if request.include_duplicates:
            return lambda row: False
        accepted = list(dict.fromkeys(row.event_id for row in rows if row.status != DUPLICATE))
        entity_id = request.entity_id or ""
        # A 1 000-row page is 10 BatchGetItem requests: asked together, not one after another.
        chunks = [accepted[start : start + REGISTRY_READ_KEYS] for start in range(0, len(accepted), REGISTRY_READ_KEYS)]
        counts: dict[str, int] = {}
        for found in run_batches(
            chunks, lambda ids: self._index.occurrences(entity_id, ids, consistent=True), max_workers=self._workers
        ):
            counts.update(found)
        # A DUPLICATE row always has siblings; an unknown count (0) is checked to be safe.
        return lambda row: row.status == DUPLICATE or counts.get(row.event_id, 0) != 1

    def _advance(
        self,
        progress: Progress,
        plan: PagePlan,
        rows: list[IndexRow],
        last_key: dict[str, Any] | None,
        messages: list[ReplayMessage],
        report: SendReport,
    ) -> Progress:
        cursor = plan.cursor
        if cursor is None:
            # Nothing consumed: an empty page that DynamoDB still gave a key to continue from.
            cursor = last_key["sk"]["S"] if last_key else progress.cursor
        pages_in_execution = progress.pages_in_execution + 1
        return replace(
            progress,
            cursor=cursor,
            scanned=progress.scanned + plan.scanned,
            duplicates_skipped=progress.duplicates_skipped + plan.duplicates_skipped,
            enqueued=progress.enqueued + len(messages),
            sent_as_pointer=progress.sent_as_pointer + report.sent_as_pointer,
            pages=progress.pages + 1,
            pages_in_execution=pages_in_execution,
            done=plan.done,
            truncated=plan.truncated,
            continue_as_new=not plan.done and pages_in_execution >= self.pages_per_execution,
            last_page={
                "rows_read": len(rows),
                "rows_consumed": plan.consumed,
                "messages": len(messages),
                "first_seq": messages[0].seq if messages else None,
                "last_seq": messages[-1].seq if messages else None,
                "send_calls": report.calls,
                "resent_entries": report.resent_entries,
            },
        )

    def _next_execution(self, replay_id: str, state: dict[str, Any], progress: Progress) -> dict[str, Any]:
        return next_execution(replay_id, state, progress)


def next_execution(
    replay_id: str, state: dict[str, Any], progress: Progress, plan: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The name and input of the execution that carries the replay on from `state` (its request, its
    execution) at `progress`: a continue-as-new, or a resume (docs/design.md §4.13), which for an
    entity-list or stream replay hands on its `plan` (every work item's position is in the state table)."""
    generation = progress.generation + 1
    continuation: dict[str, Any] = {
        "replay_id": replay_id,
        "generation": generation,
        "as_of": progress.as_of,
        "cursor": progress.cursor,
        "scanned": progress.scanned,
        "duplicates_skipped": progress.duplicates_skipped,
        "enqueued": progress.enqueued,
        "pages": progress.pages,
        "preview": progress.preview,
        "sent_as_pointer": progress.sent_as_pointer,
        "pace": progress.pace,
        "previous_execution": state["execution_arn"],
    }
    if plan is not None:
        continuation["plan"] = plan
    return {
        "name": continuation_name(replay_id, generation),
        "input": {**state["request"], "continuation": continuation},
    }

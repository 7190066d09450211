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
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from evreplay.core.errors import InvalidReplayRequest
from evreplay.core.observability import logger, metrics
from evreplay.core.times import InvalidTimestamp, normalize
from evreplay.replay.concurrency import DEFAULT_WORKERS, run_batches
from evreplay.replay.plan import BATCH_SIZE, PagePlan, plan_page
from evreplay.replay.queue import ReplayMessage, ReplayQueue, SendReport
from evreplay.replay.request import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_SCOPE_LIMIT,
    ENTITY,
    ReplayRequest,
    parse_replay_request,
)
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
) -> dict[str, Any]:
    """ValidateRequest: the first state of an execution, or InvalidReplayRequest naming the field.
    `scope` in the state says which way the workflow goes: the page loop for one entity, the
    Distributed Map for an entity list or a stream."""
    # An InvalidReplayRequest's message ("<field>: ...") becomes the execution's cause.
    request = parse_replay_request(
        execution_input, max_limit, root="input", max_scope_limit=max_scope_limit, max_concurrency=max_concurrency
    )
    continuation = execution_input.get("continuation")
    if continuation is not None and request.scope != ENTITY:
        raise InvalidReplayRequest("only a one-entity replay continues in a new execution", field="continuation")
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
        )
    logger.info(
        "replay execution started",
        extra={"replay_id": replay_id, "generation": progress.generation, "request": request.as_dict()},
    )
    return {
        "replay_id": replay_id,
        "execution_arn": execution_arn,
        "scope": request.scope,
        "request": request.as_dict(),
        "progress": progress.as_dict(),
    }


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
        queue: ReplayQueue,
        page_size: int,
        pages_per_execution: int,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._index = index
        self._store = store
        self._queue = queue
        self.page_size = page_size
        self.pages_per_execution = pages_per_execution
        self._workers = max_workers

    def run(self, state: dict[str, Any]) -> dict[str, Any]:
        replay_id: str = state["replay_id"]
        request = ReplayRequest.from_dict(state["request"])
        updated = self.page(replay_id, replay_id, request, Progress.from_dict(state["progress"]))
        logger.info("replay page done", extra={"replay_id": replay_id, "progress": updated.as_dict()})
        out: dict[str, Any] = {
            "replay_id": replay_id,
            "execution_arn": state["execution_arn"],
            "request": state["request"],
            "progress": updated.as_dict(),
        }
        if updated.continue_as_new:
            out["next_execution"] = self._next_execution(replay_id, state, updated)
        return out

    def send(self, messages: list[ReplayMessage]) -> SendReport:
        report = self._queue.send(messages)
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
    ) -> Progress:
        """One page of one entity (`request.entity_id`): read, decide, send; the new progress. Messages
        carry `seq_base + position` (an entity-list or stream replay reserves each entity a seq range);
        duplicate markers are those of `claims_id` (the replay, or the replay and entity). With an
        `outbox`, the messages are added to it instead of sent: the caller sends several small
        entities' pages together, 10 per SendMessageBatch, before it reports the step done."""
        assert request.entity_id is not None
        start_key = (
            {"pk": {"S": entity_pk(request.entity_id)}, "sk": {"S": progress.cursor}} if progress.cursor else None
        )
        # Strongly consistent reads: an event stored before the replay started is part of it.
        rows, last_key = self._index.query_window(
            request.entity_id,
            request.start_time,
            request.end_time,
            limit=self._rows_to_read(request, progress),
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
            )
            for position, row in enumerate(plan.send, start=1)
        ]
        if request.dry_run:
            report = SendReport()
        elif outbox is not None:
            outbox.extend(messages)
            report = SendReport()
        else:
            report = self.send(messages)
        updated = self._advance(progress, plan, rows, last_key, messages, report)
        if request.dry_run and len(updated.preview) < PREVIEW_SIZE:
            bodies = [asdict(message) for message in messages[: PREVIEW_SIZE - len(updated.preview)]]
            updated = replace(updated, preview=updated.preview + bodies)
        return replace(
            updated,
            entities=1 if updated.scanned else 0,
            top_entities=[{"entity_id": request.entity_id, "occurrences": updated.scanned}] if updated.scanned else [],
        )

    def _rows_to_read(self, request: ReplayRequest, progress: Progress) -> int:
        """Near the limit, only what can still matter: the remaining messages and a batch more to
        find out `truncated`. Once the limit is reached, a whole page: what follows may be a long
        run of duplicates, each read in vain."""
        remaining = request.limit - progress.enqueued
        return min(self.page_size, remaining + BATCH_SIZE) if remaining > 0 else self.page_size

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
        generation = progress.generation + 1
        return {
            "name": continuation_name(replay_id, generation),
            "input": {
                **state["request"],
                "continuation": {
                    "replay_id": replay_id,
                    "generation": generation,
                    "as_of": progress.as_of,
                    "cursor": progress.cursor,
                    "scanned": progress.scanned,
                    "duplicates_skipped": progress.duplicates_skipped,
                    "enqueued": progress.enqueued,
                    "pages": progress.pages,
                    "preview": progress.preview,
                    "previous_execution": state["execution_arn"],
                },
            },
        }

"""Entity-list and stream replays (docs/design.md §4.11) on the replay state machine's Distributed Map.

Three tasks, state in and state out (statemachines/replay.asl.json):

- `ReplayPlanner.run` (PlanReplay): counts the selection per entity - a Select=COUNT Query per listed
  entity, or the stream index (`StreamByDay`) for a whole stream - with every filter and the replay's
  `as_of`; above `limit` it says so (`too_large`, and the ASL fails the execution `ReplayTooLarge`);
  otherwise it writes the plan to S3: a JSON array of pre-batched work items (moto, like any reader,
  gets no `ItemBatcher` from us), each `{"entities": [[entity_id, seq_base, count], ...]}` - many small
  entities together, a large one alone, sized so the workers run full rounds (`balanced_item_rows`) -
  in entity_id order. Entity `i` owns seqs
  `seq_base + 1 .. seq_base + count`, so `seq` is unique in the replay and increases within each
  entity whatever order the workers run in.
- `EntitiesWorker.run` (ReplayEntities, one work item's child execution): the one-entity page logic
  (`ReplayPager.page`: same order, same exact dedup, per (entity_id, event_id)) over the item's
  entities, a bounded number of rows per step; the child loops until its item is done. Before each
  step, and again before its one send (the step's small entities' messages go together, 10 per
  SendMessageBatch), it reads the replay's cancel mark. After each step it overwrites the item's
  counters in the state table: progress for GET /replays/{id}, and the totals of the result.
- `summarize` (SummarizeReplay): the result from every item's counters. moto's Distributed Map ignores
  ToleratedFailure* (a parent may SUCCEED over failed children), and on AWS a cancelled worker ends
  quietly: either way an item that did not finish fails the replay with `ReplayIncomplete`.

Neither the state nor any execution's history grows with the fleet: the plan is in S3, the Map writes
its results to S3 (ResultWriter), counters are in DynamoDB, and each child handles one item.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import partial
from typing import Any

from evreplay.core.errors import AWS_CALL_ERRORS, ReplayIncomplete, ReplayPlanStale, StorageUnavailable, aws_error_code
from evreplay.core.observability import logger
from evreplay.replay.concurrency import DEFAULT_WORKERS, run_batches
from evreplay.replay.queue import ReplayMessage
from evreplay.replay.request import ENTITIES, ReplayRequest
from evreplay.replay.state import ReplayStateStore
from evreplay.replay.workflow import Pace, Progress, ReplayPager, achieved_rate
from evreplay.store.index import EventIndex, stream_partitions

ITEM_ROWS = 2000  # occurrences a work item aims at, at most: one entity at least, ITEM_ENTITIES at most
MIN_ITEM_ROWS = 500  # and at least, when fewer rows than the workers' one round of ITEM_ROWS items
ITEM_ENTITIES = 500
STEPS_ROWS = 5  # a ReplayEntities step reads about this many pages of rows, then the child loops
TOP_ENTITIES = 20
_COUNTERS = ("scanned", "duplicates_skipped", "enqueued", "pages", "sent_as_pointer")


def paced_workers(rate: int, max_concurrency: int) -> tuple[int, int]:
    """(workers, each worker's rate) for a paced replay (docs/design.md §4.13): whole messages a second
    per worker, so that workers x rate <= the requested rate, as close to it as the cap allows."""
    per_worker = math.ceil(rate / max_concurrency)
    return max(1, rate // per_worker), per_worker


def count_selection(
    index: EventIndex, request: ReplayRequest, as_of: str, max_workers: int = DEFAULT_WORKERS
) -> dict[str, int]:
    """Matching occurrences per entity (entities with none left out). The listed entities' counts, or
    the stream index's (day, shard) partitions, are independent reads: on AWS PlanReplay's time is their
    waits, so they are read side by side (one after another, 16 shards a day were ~16 Query waits)."""
    counts: dict[str, int] = {}
    if request.scope == ENTITIES:
        entity_ids = list(dict.fromkeys(request.entity_ids or []))
        found = run_batches(
            entity_ids,
            lambda entity_id: index.count_window(
                entity_id, request.start_time, request.end_time, as_of, request.source, request.event_types
            ),
            max_workers=max_workers,
        )
        counts = dict(zip(entity_ids, found, strict=True))
    else:
        assert request.source is not None
        partitions = stream_partitions(request.source, request.start_time, request.end_time)
        for partial_counts in run_batches(
            partitions, partial(_partition_counts, index, request, as_of), max_workers=max_workers
        ):
            for entity_id, count in partial_counts.items():
                counts[entity_id] = counts.get(entity_id, 0) + count
    return {entity_id: count for entity_id, count in counts.items() if count}


def _partition_counts(index: EventIndex, request: ReplayRequest, as_of: str, partition: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entity_id, event_type, ingest_time in index.stream_partition_rows(
        partition, request.start_time, request.end_time
    ):
        if ingest_time <= as_of and (request.event_types is None or event_type in request.event_types):
            counts[entity_id] = counts.get(entity_id, 0) + 1
    return counts


def balanced_item_rows(occurrences: int, workers: int, most: int = ITEM_ROWS, least: int = MIN_ITEM_ROWS) -> int:
    """The rows a work item aims at so that `workers` children at once stay busy to the end: the
    fewest rounds of `workers` items of at most `most` rows, split evenly (2 000 rows over 40 workers
    would be one busy child and 39 idle; 100 000 rows, 50 items of 2 000, two rounds with the second
    a quarter full). At least `least` rows (each item costs a child's start, a Lambda invoke and its
    state reads, whatever its size), never more than `most`."""
    rounds = max(1, math.ceil(occurrences / (max(1, workers) * most)))
    return min(most, max(least, math.ceil(occurrences / (max(1, workers) * rounds))))


def batch_plan(counts: dict[str, int], item_rows: int = ITEM_ROWS, item_entities: int = ITEM_ENTITIES) -> list[Any]:
    """The work items: entities in entity_id order, each with its seq range, grouped into items. An item
    is closed once it holds `item_rows` rows or `item_entities` entities; an entity of more than
    `item_rows` rows goes alone. So every item but the last holds at least `item_rows` rows (or is
    bounded by a large entity or the entity cap) and the plan has at most occurrences / item_rows
    items: a plan split for N workers needs no extra round for a remainder."""
    items: list[dict[str, Any]] = []
    current: list[list[Any]] = []
    rows = seq = 0
    for entity_id in sorted(counts):
        count = counts[entity_id]
        large = count > item_rows
        if current and (large or rows >= item_rows or len(current) >= item_entities):
            items.append({"entities": current})
            current, rows = [], 0
        current.append([entity_id, seq, count])
        rows += count
        seq += count
        if large:
            items.append({"entities": current})
            current, rows = [], 0
    if current:
        items.append({"entities": current})
    return items


class PlanStore:
    """Plans in the replay plan bucket, `plans/<replay_id>.json` (the Map's ItemReader reads them)."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self.bucket = bucket

    def write(self, replay_id: str, items: list[Any]) -> str:
        key = f"plans/{replay_id}.json"
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
                ContentType="application/json",
            )
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not write the replay's plan ({aws_error_code(exc) or 'error'})") from exc
        return key


class ReplayPlanner:
    """PlanReplay."""

    def __init__(
        self, index: EventIndex, store: ReplayStateStore, plans: PlanStore, max_concurrency: int, page_size: int
    ) -> None:
        self._index = index
        self._store = store
        self._plans = plans
        self._max_concurrency = max_concurrency
        self._item_rows = max(ITEM_ROWS, page_size)

    def run(self, state: dict[str, Any]) -> dict[str, Any]:
        replay_id: str = state["replay_id"]
        request = ReplayRequest.from_dict(state["request"])
        counts = count_selection(self._index, request, state["progress"]["as_of"])
        occurrences = sum(counts.values())
        too_large = occurrences > request.limit and not request.dry_run
        concurrency = min(self._max_concurrency, request.max_concurrency or self._max_concurrency)
        item_rate = None
        if request.max_events_per_second:
            # The rate is shared: each of at most `concurrency` workers at once paces its item to its part.
            concurrency, item_rate = paced_workers(request.max_events_per_second, concurrency)
        item_rows = balanced_item_rows(occurrences, concurrency, self._item_rows, min(MIN_ITEM_ROWS, self._item_rows))
        items = [] if too_large else batch_plan(counts, item_rows)
        top = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:TOP_ENTITIES]
        plan = {
            "bucket": self._plans.bucket,
            "key": None if too_large else self._plans.write(replay_id, items),
            "items": len(items),
            "entities": len(counts),
            "occurrences": occurrences,
            "too_large": too_large,
            "cause": f"matched {occurrences} occurrences; limit {request.limit}",
            "max_concurrency": concurrency,
            "item_rate": item_rate,
            "top_entities": [{"entity_id": entity_id, "occurrences": count} for entity_id, count in top],
        }
        if not too_large:
            self._store.record_plan(replay_id, len(counts), len(items))
        logger.info("replay planned", extra={"replay_id": replay_id, "plan": {**plan, "top_entities": None}})
        return {**state, "plan": plan}


class EntitiesWorker:
    """ReplayEntities: one step of one work item."""

    def __init__(self, pager: ReplayPager, store: ReplayStateStore) -> None:
        self._pager = pager
        self._store = store
        self._rows_per_step = STEPS_ROWS * pager.page_size
        self._workers = DEFAULT_WORKERS

    def run(self, state: dict[str, Any]) -> dict[str, Any]:
        replay_id: str = state["replay_id"]
        item: int = state["item"]
        entities: list[list[Any]] = state["entities"]
        request = ReplayRequest.from_dict(state["request"])
        if "position" not in state and state.get("resumed"):
            # A resumed replay (docs/design.md §4.13): this item goes on from its last recorded step.
            state = {**state, **self._recorded(replay_id, item)}
            if state.get("finished"):
                return {**state, "done": True}
        position: dict[str, Any] = state.get("position") or {"entity": 0, "progress": None}
        totals: dict[str, int] = state.get("totals") or {**dict.fromkeys(_COUNTERS, 0), "entities_done": 0}
        preview: list[dict[str, Any]] = state.get("preview") or []
        item_rate = state.get("item_rate")
        pace = Pace(int(item_rate), state.get("pace"), full=False) if item_rate else None
        budget = min(self._rows_per_step, pace.quota) if pace else self._rows_per_step
        rows_read = 0
        # The pause and the cancel mark are two items: read side by side (on AWS, one wait instead of two).
        paused, cancelled = run_batches(
            [self._store.paused, self._store.cancelled], lambda read: read(replay_id), max_workers=2
        )
        cancelled = paused or cancelled
        outbox: list[ReplayMessage] = []
        while not cancelled and position["entity"] < len(entities) and rows_read < budget:
            remaining = budget - rows_read
            # A paced step reads one entity at a time: its quota, not the Queries' waits, sets its pace.
            group = self._next_group(entities, position, state["as_of"], remaining, alone=pace is not None)
            # Each entity's page is independent of the others': read them together (on AWS a step's time
            # is its Queries' waits), then take the results in entity order, as one after another would.
            pages = run_batches(
                group,
                partial(self._entity_page, replay_id, request, max_rows=remaining),
                max_workers=self._workers,
            )
            for (entity_id, _, count, before), (after, messages) in zip(group, pages, strict=True):
                rows_read += after.last_page["rows_read"]
                outbox.extend(messages)
                totals = {
                    **totals,
                    **{name: totals[name] + getattr(after, name) - getattr(before, name) for name in _COUNTERS},
                }
                if item == 0 and position["entity"] == 0:
                    preview = after.preview
                if not after.done:
                    # More rows than one page: the entity goes on from here; the group's later entities
                    # are read again next step (their pages decide and claim the same way again).
                    position = {"entity": position["entity"], "progress": after.as_dict()}
                    break
                if after.truncated:
                    raise ReplayPlanStale(
                        f"entity {entity_id!r} has more than the {count} matching occurrences planned for it "
                        "(rows reached the stream index after the plan); replay again"
                    )
                totals["entities_done"] += 1
                position = {"entity": position["entity"] + 1, "progress": None}
        # One send for the step's pages (a retried step repeats the same messages: claims are idempotent
        # and seqs follow from the state it started from); not after a cancel that came meanwhile.
        if outbox and not (cancelled := cancelled or self._store.cancelled(replay_id)):
            started = self._pager.clock()
            report = self._pager.send(outbox, request)
            totals["sent_as_pointer"] = totals.get("sent_as_pointer", 0) + report.sent_as_pointer
            if pace is not None:
                pace.spent(len(outbox), started)
        done = cancelled or position["entity"] >= len(entities)
        finished = done and not cancelled
        sending = {"first": pace.state["first"], "last": pace.state["last"]} if pace else {}
        self._store.record_item(
            replay_id,
            item,
            {
                **totals,
                **sending,
                "entities": len(entities),
                "done": finished,
                "cancelled": cancelled and not paused,
                "paused": paused,
                "preview": preview,
                "position": position,
            },
        )
        out = {**state, "position": position, "totals": totals, "preview": preview, "done": done}
        if pace is not None:
            out.update(pace=pace.state, wait_seconds=0 if done else pace.wait_seconds(self._rows_per_step))
        logger.info(
            "replay work item step", extra={"replay_id": replay_id, "item": item, "totals": totals, "done": done}
        )
        return out

    def _recorded(self, replay_id: str, item: int) -> dict[str, Any]:
        """The item's state as its last step recorded it (nothing recorded: from its start)."""
        recorded = self._store.item(replay_id, item)
        if recorded is None:
            return {}
        totals = {name: int(recorded.get(name, 0)) for name in (*_COUNTERS, "entities_done")}
        return {
            "position": recorded.get("position"),
            "totals": totals,
            "preview": recorded.get("preview") or [],
            "finished": bool(recorded.get("done")),
        }

    def _next_group(
        self, entities: list[list[Any]], position: dict[str, Any], as_of: str, budget: int, alone: bool = False
    ) -> list[tuple[str, int, int, Progress]]:
        """The entities to read together: the current one (from where it stands), then, if it starts
        fresh (and not `alone`), the next small ones (a page each at most) whose planned rows fit the
        step's budget."""
        first, progress = position["entity"], position["progress"]
        entity_id, seq_base, count = entities[first]
        group = [(entity_id, seq_base, count, Progress.from_dict(progress) if progress else Progress(as_of=as_of))]
        planned = count
        small = not alone and progress is None and count <= self._pager.page_size
        for entity_id, seq_base, count in entities[first + 1 :] if small else []:
            if count > self._pager.page_size or planned + count > budget:
                break
            group.append((entity_id, seq_base, count, Progress(as_of=as_of)))
            planned += count
        return group

    def _entity_page(
        self, replay_id: str, request: ReplayRequest, entry: tuple[str, int, int, Progress], *, max_rows: int
    ) -> tuple[Progress, list[ReplayMessage]]:
        entity_id, seq_base, count, before = entry
        # The entity's seq range is its cap: a message past it would take another entity's seq.
        one = replace(request, entity_id=entity_id, entity_ids=None, limit=count)
        messages: list[ReplayMessage] = []
        after = self._pager.page(
            replay_id, f"{replay_id}#{entity_id}", one, before, seq_base, messages, max_rows=max_rows
        )
        return after, messages


def summarize(store: ReplayStateStore, state: dict[str, Any]) -> dict[str, Any]:
    """SummarizeReplay: the execution's output, or ReplayIncomplete when an item did not finish."""
    replay_id: str = state["replay_id"]
    request = state["request"]
    plan = state["plan"]
    _, items = store.work(replay_id)
    finished = [item for item in items if item.get("done")]
    totals = {name: sum(int(item.get(name, 0)) for item in items) for name in _COUNTERS}
    if len(finished) < plan["items"] and store.paused(replay_id):
        # Paused at a page boundary (docs/design.md §4.13): the execution ends; resume hands on the plan.
        return {
            "replay_id": replay_id,
            "paused": True,
            **{name: totals[name] for name in ("scanned", "duplicates_skipped", "enqueued")},
            "request": request,
            "plan": plan,
        }
    if len(finished) < plan["items"]:
        raise ReplayIncomplete(
            f"{plan['items'] - len(finished)} of {plan['items']} work items did not finish (a worker failed "
            f"or the replay was cancelled); {totals['enqueued']} messages were sent"
        )
    out: dict[str, Any] = {
        "replay_id": replay_id,
        **{name: totals[name] for name in ("scanned", "duplicates_skipped", "enqueued")},
        "truncated": False,  # a guard, not a cut: above the limit nothing is sent at all
        "pages": totals["pages"],
        "entities": plan["entities"],
        "occurrences": plan["occurrences"],
        "sent_as_pointer": totals["sent_as_pointer"],
        "request": request,
    }
    if request.get("max_events_per_second"):
        firsts = [float(item["first"]) for item in items if item.get("first") is not None]
        lasts = [float(item["last"]) for item in items if item.get("last") is not None]
        out["achieved_events_per_second"] = achieved_rate(
            totals["enqueued"], min(firsts, default=None), max(lasts, default=None)
        )
    if request.get("dry_run"):
        out["top_entities"] = plan["top_entities"]
        out["preview"] = items[0].get("preview", []) if items else []
    return out

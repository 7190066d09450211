"""What the replay state machine's Lambda tasks work with, built once per process from settings and
clients: each `evreplay.handlers` task module wires one of these to one function. Each handler module
builds its own at import (the init phase, clients included, as for the API handlers) and looks it up
again per invocation: a cache hit in Lambda, and a fresh one after `reset()`, which tests call when
they replace settings and clients.
"""

from __future__ import annotations

from functools import cache

from evreplay.core import clients
from evreplay.core.settings import Settings
from evreplay.replay.destinations import destination_names, parse_destinations
from evreplay.replay.fanout import EntitiesWorker, PlanStore, ReplayPlanner
from evreplay.replay.senders import Senders
from evreplay.replay.state import ReplayStateStore
from evreplay.replay.workflow import ReplayPager
from evreplay.store.index import EventIndex
from evreplay.store.raw import RawStore


@cache
def state_store(settings: Settings) -> ReplayStateStore:
    return ReplayStateStore(
        clients.dynamodb(), settings.require("replay_state_table"), settings.replay_marker_ttl_seconds
    )


@cache
def _index(settings: Settings) -> EventIndex:
    return EventIndex(clients.dynamodb(), settings.require("index_table"))


def request_destinations(settings: Settings) -> frozenset[str]:
    """The names a replay request may give as `destination` (docs/design.md §4.12)."""
    return destination_names(settings.replay_destinations)


@cache
def pager(settings: Settings) -> ReplayPager:
    # Only ReplayPage and ReplayEntities are given the queue and the destinations (least privilege):
    # built only there.
    return ReplayPager(
        index=_index(settings),
        store=state_store(settings),
        senders=Senders(
            parse_destinations(settings.replay_destinations, None),
            sqs_client=clients.sqs(),
            default_queue_url=settings.require("replay_queue_url"),
            events_client=clients.events,
            # The event format reads stored events (each message names its bucket).
            raw=lambda: RawStore(clients.s3(), settings.raw_bucket or ""),
        ),
        page_size=settings.replay_page_size,
        pages_per_execution=settings.replay_pages_per_execution,
    )


@cache
def planner(settings: Settings) -> ReplayPlanner:
    return ReplayPlanner(
        index=_index(settings),
        store=state_store(settings),
        plans=PlanStore(clients.s3(), settings.require("replay_plan_bucket")),
        max_concurrency=settings.replay_max_concurrency,
        page_size=settings.replay_page_size,
    )


@cache
def entities_worker(settings: Settings) -> EntitiesWorker:
    return EntitiesWorker(pager(settings), state_store(settings))


def reset() -> None:
    """Forget what was built from settings and clients (tests and the local stack replace both)."""
    for factory in (state_store, _index, pager, planner, entities_worker):
        factory.cache_clear()

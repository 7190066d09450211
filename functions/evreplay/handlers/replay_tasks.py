"""The replay state machine's Lambda tasks: `validate` (ValidateRequest) and `replay_page` (ReplayPage);
for entity lists and streams `plan` (PlanReplay), `replay_entities` (ReplayEntities, inside the
Distributed Map) and `summarize_replay` (SummarizeReplay), see evreplay.replay.fanout;
and `record_end`, the target of the EventBridge rule on its executions' status changes, which gives
the replay's record the status, result or error its execution ended with (evreplay.replay.outcomes).

Plain functions, state in and state out (see evreplay.replay.workflow for the state's shape).
A domain error leaves as an exception whose class name is the error the state machine sees:
InvalidReplayRequest (not retried: the execution fails naming the field), StorageUnavailable and
SqsSendFailed (retried by the state machine).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients
from evreplay.core.observability import logger, metrics, tracer
from evreplay.core.settings import Settings, get_settings
from evreplay.replay.destinations import destination_names, parse_destinations
from evreplay.replay.fanout import EntitiesWorker, PlanStore, ReplayPlanner, summarize
from evreplay.replay.outcomes import record_status_change
from evreplay.replay.senders import Senders
from evreplay.replay.state import ReplayStateStore
from evreplay.replay.workflow import ReplayPager, start_replay
from evreplay.store.index import EventIndex
from evreplay.store.raw import RawStore


@cache
def _store(settings: Settings) -> ReplayStateStore:
    return ReplayStateStore(
        clients.dynamodb(), settings.require("replay_state_table"), settings.replay_marker_ttl_seconds
    )


@cache
def _pager(settings: Settings) -> ReplayPager:
    # Only the sending functions are given the index, the queue and the destinations (least privilege).
    return ReplayPager(
        index=EventIndex(clients.dynamodb(), settings.require("index_table")),
        store=_store(settings),
        senders=Senders(
            parse_destinations(settings.replay_destinations, None),
            sqs_client=clients.sqs(),
            default_queue_url=settings.require("replay_queue_url"),
            events_client=clients.events,
            # The event format reads stored events (the bucket is in each message).
            raw=lambda: RawStore(clients.s3(), settings.raw_bucket or ""),
        ),
        page_size=settings.replay_page_size,
        pages_per_execution=settings.replay_pages_per_execution,
    )


@cache
def _planner(settings: Settings) -> ReplayPlanner:
    return ReplayPlanner(
        index=EventIndex(clients.dynamodb(), settings.require("index_table")),
        store=_store(settings),
        plans=PlanStore(clients.s3(), settings.require("replay_plan_bucket")),
        max_concurrency=settings.replay_max_concurrency,
        page_size=settings.replay_page_size,
    )


@cache
def _worker(settings: Settings) -> EntitiesWorker:
    return EntitiesWorker(_pager(settings), _store(settings))


def reset() -> None:
    """Forget what was built from settings and clients (tests and the local stack replace both)."""
    _pager.cache_clear()
    _store.cache_clear()
    _planner.cache_clear()
    _worker.cache_clear()


@logger.inject_lambda_context(correlation_id_path="execution_name")
@tracer.capture_lambda_handler
@metrics.log_metrics
def validate(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return start_replay(
        execution_input=event.get("input"),
        execution_name=event["execution_name"],
        execution_arn=event["execution_arn"],
        started_at=event["started_at"],
        max_limit=settings.max_replay_limit,
        store=_store(settings),
        max_scope_limit=settings.max_scope_replay_limit,
        max_concurrency=settings.replay_max_concurrency,
        destinations=destination_names(settings.replay_destinations),
        max_events_per_second=settings.max_events_per_second,
    )


@logger.inject_lambda_context(correlation_id_path="replay_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def replay_page(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _pager(get_settings()).run(event)


@logger.inject_lambda_context(correlation_id_path="replay_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def plan(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _planner(get_settings()).run(event)


@logger.inject_lambda_context(correlation_id_path="replay_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def replay_entities(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _worker(get_settings()).run(event)


@logger.inject_lambda_context(correlation_id_path="replay_id")
@tracer.capture_lambda_handler
def summarize_replay(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return summarize(_store(get_settings()), event)


@logger.inject_lambda_context(correlation_id_path="detail.name")
@tracer.capture_lambda_handler
def record_end(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    recorded = record_status_change(event, _store(settings), settings.max_replay_limit)
    if recorded is None:
        return {"recorded": False}
    logger.info("replay status recorded", extra={"replay_id": recorded.replay_id, "status": recorded.status})
    return {"recorded": True, "replay_id": recorded.replay_id, "status": recorded.status}

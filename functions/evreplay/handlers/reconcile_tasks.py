"""The reconcile state machine's Lambda tasks: `list_partitions` (ListPartitions),
`reconcile_partition` (ReconcilePartition, in each Distributed Map child) and `summarize`
(Summarize). Plain functions over evreplay.reconcile.workflow; error class names are what the
state machine's Retry matches (StorageUnavailable retried; InvalidReconcileRequest and
ReconcileIncomplete fail the execution)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core import clients, schemas
from evreplay.core.observability import logger, tracer
from evreplay.core.settings import Settings, get_settings
from evreplay.reconcile.reconciler import PartitionReconciler
from evreplay.reconcile.workflow import ReconcileFiles, begin, finish, run_partition
from evreplay.store.index import EventIndex
from evreplay.store.raw import RawStore


@cache
def _files(settings: Settings) -> ReconcileFiles:
    return ReconcileFiles(clients.s3(), settings.require("reconcile_bucket"))


@cache
def _reconciler(settings: Settings) -> PartitionReconciler:
    return PartitionReconciler(
        clients.s3(),
        RawStore(clients.s3(), settings.require("raw_bucket")),
        EventIndex(clients.dynamodb(), settings.require("index_table")),
        settings.reconcile_page_size,
        settings.reconcile_pages_per_task,
    )


def reset() -> None:
    """Forget what was built from settings and clients (tests and the local stack replace both)."""
    _files.cache_clear()
    _reconciler.cache_clear()


# Init: built here (their clients too), not on the first invocation; the handlers' lookups are cache
# hits. The three functions share this module: ListPartitions validates its input (jsonschema loads
# here for all three), and only ReconcilePartition is granted the index.
schemas.prepare()
_files(get_settings())
if get_settings().index_table:
    _reconciler(get_settings())


@logger.inject_lambda_context(correlation_id_path="execution_name")
@tracer.capture_lambda_handler
def list_partitions(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return begin(
        event.get("input"),
        event["execution_name"],
        clients.s3(),
        settings.require("raw_bucket"),
        _files(settings),
        settings.max_reconcile_days,
    )


@logger.inject_lambda_context(correlation_id_path="reconcile_id")
@tracer.capture_lambda_handler
def reconcile_partition(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return run_partition(event, _reconciler(settings), _files(settings))


@logger.inject_lambda_context(correlation_id_path="reconcile_id")
@tracer.capture_lambda_handler
def summarize(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return finish(event, _files(get_settings()))

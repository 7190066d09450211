"""The reconcile workflow's steps and its API (statemachines/reconcile.asl.json; evreplay.reconcile.reconciler
does the checking). The execution name is the reconcile_id.

1. `begin` (ListPartitions): checks the input with the API's rules, lists the raw store's partitions
   of those days and writes them as a JSON manifest to the reconcile bucket, because the Distributed
   Map reads its items from S3 (`ItemReader`), which cannot list a bucket itself;
2. one child run per partition loops over `run_partition` until the partition is done, then writes
   its counts to `reconcile/<id>/parts/<n>.json` (overwritten if retried: one file per partition);
3. `finish` (Summarize) sums the parts and writes `reconcile/<id>/result.json`. A partition without
   a part is a failed child: the Map is told to tolerate every failure (so a partial count is still
   reported; moto ignores that setting anyway), and `finish` fails the execution with
   ReconcileIncomplete, so a partial reconcile can never look complete.

Work files expire with the bucket's lifecycle rule; they are never event data.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

from evreplay.core.errors import AWS_CALL_ERRORS, NotFound, StorageUnavailable, aws_error_code
from evreplay.core.times import format_utc
from evreplay.reconcile.reconciler import (
    Partition,
    PartitionReconciler,
    ReconcileIncomplete,
    dumps,
    list_partitions,
    parse_reconcile_request,
    result_document,
)

WORK_PREFIX = "reconcile/"
FINAL_STATES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
_RECONCILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class ReconcileFiles:
    """The reconcile bucket: a run's manifest, its partitions' parts and its result."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    @staticmethod
    def manifest_key(reconcile_id: str) -> str:
        return f"{WORK_PREFIX}{reconcile_id}/partitions.json"

    @staticmethod
    def parts_prefix(reconcile_id: str) -> str:
        return f"{WORK_PREFIX}{reconcile_id}/parts/"

    @staticmethod
    def result_key(reconcile_id: str) -> str:
        return f"{WORK_PREFIX}{reconcile_id}/result.json"

    def put(self, key: str, value: Any) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=dumps(value), ContentType="application/json")
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not write {key} ({aws_error_code(exc) or 'error'})") from exc

    def get(self, key: str) -> Any:
        """The JSON at `key`, or None when there is none."""
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except AWS_CALL_ERRORS as exc:
            if aws_error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise StorageUnavailable(f"could not read {key} ({aws_error_code(exc) or 'error'})") from exc
        return json.loads(body)

    def part_keys(self, reconcile_id: str) -> list[str]:
        keys: list[str] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.parts_prefix(reconcile_id)
            )
            for page in pages:
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not list the parts ({aws_error_code(exc) or 'error'})") from exc
        return keys


def begin(
    execution_input: Any, reconcile_id: str, s3: Any, raw_bucket: str, files: ReconcileFiles, max_days: int
) -> dict[str, Any]:
    """ListPartitions: the checked request, the manifest written, how many partitions it lists."""
    request = parse_reconcile_request(execution_input, max_days)
    partitions = list_partitions(s3, raw_bucket, request)
    key = files.manifest_key(reconcile_id)
    files.put(key, [{"index": n, **partition.as_dict()} for n, partition in enumerate(partitions)])
    return {
        "reconcile_id": reconcile_id,
        "request": request.as_dict(),
        "manifest": {"bucket": files.bucket, "key": key},
        "partitions": len(partitions),
    }


def run_partition(state: dict[str, Any], reconciler: PartitionReconciler, files: ReconcileFiles) -> dict[str, Any]:
    """One child step: advance the partition; once done, write its part. The state handed back
    stays small (a partition, counters, a continuation token)."""
    item = state["partition"]
    state = reconciler.run({**state, "partition": Partition.from_dict(item).as_dict()})
    state["partition"] = item
    if state["done"]:
        files.put(
            f"{files.parts_prefix(state['reconcile_id'])}{int(item['index']):07d}.json",
            {"partition": item, "counts": state["counts"]},
        )
    return state


def finish(state: dict[str, Any], files: ReconcileFiles) -> dict[str, Any]:
    """Summarize: the result, written next to the parts; ReconcileIncomplete if any is missing."""
    reconcile_id = state["reconcile_id"]
    parts = [files.get(key) for key in files.part_keys(reconcile_id)]
    result = result_document(state["request"], int(state["partitions"]), [part for part in parts if part])
    files.put(files.result_key(reconcile_id), result)
    if result["failed_partitions"]:
        raise ReconcileIncomplete(json.dumps(result, separators=(",", ":")))
    return result


def _iso(value: Any) -> str | None:
    return format_utc(value) if isinstance(value, datetime) else (str(value) if value else None)


class ReconcileService:
    """POST /reconcile and GET /reconcile/{id}: start and follow executions of the reconcile
    state machine. Progress and the result come from the work files, so they stay readable after
    the execution itself is gone (Step Functions keeps executions 90 days; the local stack forgets
    them on restart)."""

    def __init__(self, stepfunctions: Any, state_machine_arn: str, files: ReconcileFiles, max_days: int) -> None:
        self._sfn = stepfunctions
        self._arn = state_machine_arn
        self._files = files
        self._max_days = max_days

    def start(self, body: Any) -> dict[str, Any]:
        request = parse_reconcile_request(body, self._max_days)
        reconcile_id = f"rc-{uuid.uuid4().hex}"
        try:
            started = self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=reconcile_id,
                input=json.dumps(request.as_dict()),
            )
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not start the reconcile ({aws_error_code(exc) or 'error'})") from exc
        return {
            "reconcile_id": reconcile_id,
            "status": "RUNNING",
            "execution_arn": started["executionArn"],
            "request": request.as_dict(),
        }

    def get(self, reconcile_id: str) -> dict[str, Any]:
        if not _RECONCILE_ID.match(reconcile_id):
            raise NotFound(f"no reconcile {reconcile_id!r}", field="reconcile_id")
        execution_arn = self._arn.replace(":stateMachine:", ":execution:") + ":" + reconcile_id
        result = self._files.get(self._files.result_key(reconcile_id))
        try:
            execution = self._sfn.describe_execution(executionArn=execution_arn)
        except AWS_CALL_ERRORS as exc:
            if aws_error_code(exc) != "ExecutionDoesNotExist":
                raise StorageUnavailable(f"could not read the reconcile ({aws_error_code(exc) or 'error'})") from exc
            if result is None:
                raise NotFound(f"no reconcile {reconcile_id!r}", field="reconcile_id") from exc
            # The execution is gone, its result file is not: answer from the file.
            status = "FAILED" if result["failed_partitions"] else "SUCCEEDED"
            return {"reconcile_id": reconcile_id, "status": status, "request": result["request"], "result": result}
        status = str(execution["status"])
        view: dict[str, Any] = {
            "reconcile_id": reconcile_id,
            "status": status,
            "execution_arn": execution_arn,
            "request": json.loads(execution.get("input") or "{}"),
            "started_at": _iso(execution.get("startDate")),
            "stopped_at": _iso(execution.get("stopDate")) if status in FINAL_STATES else None,
        }
        if result is not None:
            view["result"] = result
        if status == "RUNNING":
            manifest = self._files.get(self._files.manifest_key(reconcile_id))
            view["progress"] = {
                "partitions_total": None if manifest is None else len(manifest),
                "partitions_done": len(self._files.part_keys(reconcile_id)),
            }
        elif status != "SUCCEEDED":
            view["error"] = {"error": execution.get("error"), "cause": execution.get("cause")}
        return view

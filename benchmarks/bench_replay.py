"""Replay cost and throughput: the real workflow (statemachines/replay.asl.json on moto's Step
Functions interpreter, task Lambdas in-process) against a bare boto3 loop, in one process.

    python benchmarks/bench_replay.py                    # 1 000 and 10 000 events (~75 s)
    python benchmarks/bench_replay.py --events 100000    # the long one, run on its own
    python benchmarks/bench_replay.py --events 5000 --latency-scale 20 --repeats 1   # under the latency model

For each size: a fresh moto, the index filled with that many events of one entity (occurrence rows
and registry items, as ingest writes them; no duplicates), one replay of the whole window with the
template's defaults (1 000-row pages, 1 000 pages per execution, duplicates skipped), then the bare
loop over the same data with the same requests: Query pages (strongly consistent, 1 000 rows),
BatchGetItem of the page's registry items (the duplicate check), SendMessageBatch by 10.

Counted, not estimated:
- AWS requests made by the task Lambdas: a botocore `before-send` hook on the process-wide clients
  of `evreplay.core.clients` (the ones the handlers use), so every HTTP attempt counts, retries included;
- requests made by the state machine itself (lambda:invoke, states:startExecution): the
  TaskScheduled events of the execution histories;
- state transitions (StateEntered events) and history events, from GetExecutionHistory of every
  execution of the replay (continue-as-new included); the largest input/output/parameters there.
Billed units follow the price pages: SQS bills each 64 KiB chunk of a request's payload; DynamoDB
bills a strongly consistent read 1 RRU per 4 KiB (a Query by the page's total item size, a
BatchGetItem per item), a write 1 WRU per 1 KiB per item. Item sizes use DynamoDB's sizing rules
(names + values). Lambda GB-s use the task durations measured here (in-process, on moto), which
says little about AWS latency: a sensitivity line prices them at an assumed 20 ms per AWS request.

The naive shape is computed from the same counts: one SQS SendMessage per event, and one Map
iteration per 10-message batch at ~5 transitions (and ~5 history events) each.

Under the latency model (`--latency-scale K`, benchmarks/_latency.py: every moto request first waits
its operation's typical AWS latency times K, figures scaled back by K), each size also runs the replay
twice more: with the page's BatchGetItem and SendMessageBatch calls one after another (the shape
before concurrent sends: `run_batches` held to one worker), and as built (DEFAULT_WORKERS threads).

Throughput ratio = workflow events/s over bare-loop events/s (target >= 0.5), as wall time and as
this process's CPU time (steadier on a shared machine). The workflow's time is Step Functions' own
(first start to last stop); a 10-event warm-up replay runs first (the task module's import is a cold
start, see bench_cold_start.py). Each side sends to its own empty queue (same attributes) and every
size gets a fresh moto, so queue depth and partition size are the same for both sides; moto's Query
still sorts the entity's partition on every page (O(partition) per page), which is why time per
event grows with the replay size on both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import json
import math
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from _common import TEMPLATE, local_aws, machine
from _latency import LatencyModel, add_arguments, print_model
from evreplay.core import clients
from evreplay.core.settings import get_settings, reset_settings
from evreplay.ingest.service import new_arrival_id
from evreplay.local import moto_patches
from evreplay.local.template import Template
from evreplay.local.workflow import deploy_workflow
from evreplay.replay import concurrency
from evreplay.replay import queue as replay_queue
from evreplay.replay import tasks as replay_tasks
from evreplay.replay import workflow as replay_workflow
from evreplay.store.index import IndexRow, entity_pk, registry_sk, window_condition

ENTITY = "bench-entity"
WINDOW_START = datetime(2025, 6, 1, tzinfo=UTC)
WINDOW = {"start_time": "2025-06-01T00:00:00Z", "end_time": "2025-06-08T00:00:00Z"}

# List prices, us-east-1 (sources in benchmarks/README.md).
PRICE_TRANSITION = 0.025 / 1_000  # Step Functions Standard, per state transition
PRICE_SQS_REQUEST = 0.40 / 1_000_000  # SQS standard queue, per request (64 KiB chunk), past the free tier
PRICE_RRU = 0.125 / 1_000_000  # DynamoDB on-demand, per read request unit
PRICE_WRU = 0.625 / 1_000_000  # DynamoDB on-demand, per write request unit
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000  # Lambda, per invocation
PRICE_LAMBDA_GB_S = 0.0000133334  # Lambda arm64 (the template's architecture), per GB-second, first tier
ASSUMED_AWS_CALL_SECONDS = 0.020  # sensitivity only: one in-region SQS/DynamoDB round trip

TARGETS = {"sqs_send_calls": 101, "transitions": 20, "history_per_execution": 25_000, "payload_bytes": 256 * 1024}


# ---------------------------------------------------------------------------- DynamoDB sizing
def _value_size(value: dict[str, Any]) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "N":
        digits = data.lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + _value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in data)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in data)
    return 0


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (developer guide, item sizes)."""
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


# ---------------------------------------------------------------------------- counting hooks
@dataclass
class Requests:
    """Requests seen at botocore (every attempt), and the billed units they consume."""

    calls: Counter[str] = field(default_factory=Counter)
    sqs_chunks: int = 0
    rru: float = 0.0
    wru: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def before_send(self, request: Any, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        with self.lock:
            self.calls[f"{service}:{operation}"] += 1
            if service == "sqs" and operation in ("SendMessageBatch", "SendMessage"):
                body = json.loads(request.body)
                entries = body.get("Entries") or [body]
                payload = sum(len(entry["MessageBody"].encode("utf-8")) for entry in entries)
                self.sqs_chunks += max(1, math.ceil(payload / 65536))

    def after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        with self.lock:
            if name == "Query":
                # Strongly consistent: 1 RRU per 4 KiB of the items read, summed over the page.
                self.rru += max(1, math.ceil(sum(item_size(i) for i in parsed.get("Items", [])) / 4096))
            elif name == "BatchGetItem":
                # Each item is rounded up to 4 KiB on its own (billed on the full item; a registry item,
                # projected or not, is far below 4 KiB).
                for items in parsed.get("Responses", {}).values():
                    self.rru += sum(max(1, math.ceil(item_size(i) / 4096)) for i in items)
            elif name == "GetItem" and "Item" in parsed:
                self.rru += max(1, math.ceil(item_size(parsed["Item"]) / 4096))

    def before_parameters(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        sizes: list[int] = []
        if name == "PutItem":
            sizes = [item_size(params["Item"])]
        elif name == "BatchWriteItem":
            sizes = [
                item_size(w["PutRequest"]["Item"])
                for ws in params["RequestItems"].values()
                for w in ws
                if "PutRequest" in w
            ]
        elif name in ("UpdateItem", "DeleteItem"):
            sizes = [1024]
        with self.lock:
            self.wru += sum(max(1, math.ceil(size / 1024)) for size in sizes)

    def reset(self) -> None:
        with self.lock:
            self.calls, self.sqs_chunks, self.rru, self.wru = Counter(), 0, 0.0, 0

    def snapshot(self) -> Requests:
        with self.lock:
            return Requests(copy.copy(self.calls), self.sqs_chunks, self.rru, self.wru)

    def install(self, client: Any) -> None:
        events = client.meta.events
        events.register_first("before-send", self.before_send)  # before moto answers the request
        events.register("after-call", self.after_call)
        events.register("before-parameter-build", self.before_parameters)


# ---------------------------------------------------------------------------- data
def seed(ddb: Any, table: str, bucket: str, count: int) -> None:
    """`count` occurrence rows of one entity, 6 s apart, each with its registry item (occurrences 1)."""
    now = datetime.now(UTC)
    items: list[dict[str, Any]] = []
    for n in range(count):
        event_time = (WINDOW_START + timedelta(seconds=6 * n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event_id = f"ev-{n:07d}"
        row = IndexRow(
            entity_id=ENTITY,
            event_id=event_id,
            event_time=event_time,
            arrival_id=new_arrival_id(now),
            ingest_time=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            ingest_lag_ms=1234,
            status="ACCEPTED",
            s3_bucket=bucket,
            s3_key=f"raw/source=bench/event_type=tick/dt=2025-06-01/{ENTITY}/{event_id}-{uuid.uuid4().hex[:8]}.json",
            source="bench",
            event_type="tick",
            payload_sha256=uuid.uuid4().hex * 2,
        )
        items.append(row.to_item())
        items.append(
            {
                "pk": {"S": entity_pk(ENTITY)},
                "sk": {"S": registry_sk(event_id)},
                "occurrences": {"N": "1"},
                "first_sk": {"S": row.sk},
                "event_id": {"S": event_id},
            }
        )
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "SqsManagedSseEnabled",
    "RedrivePolicy",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
)


def twin_queue(sqs: Any, url: str, name: str) -> str:
    """A new, empty queue with the replay queue's attributes (PurgeQueue may run once a minute)."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    kept = {key: value for key, value in attributes.items() if key in QUEUE_ATTRIBUTES}
    return str(sqs.create_queue(QueueName=name, Attributes=kept)["QueueUrl"])


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


# ---------------------------------------------------------------------------- the workflow
@dataclass
class WorkflowRun:
    wall: float  # Step Functions' own clock: the first execution's start to the last one's stop
    cpu: float  # this process's CPU time meanwhile (every thread: interpreter, tasks, moto)
    result: dict[str, Any]
    histories: list[list[dict[str, Any]]]
    requests: Requests


@dataclass
class BareRun:
    wall: float
    cpu: float
    enqueued: int
    requests: Requests


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def run_workflow(
    sfn: Any, state_machine_arn: str, replay_id: str, request: dict[str, Any], requests: Requests, timeout: float
) -> WorkflowRun:
    requests.reset()
    started, cpu = time.perf_counter(), time.process_time()
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=replay_id, input=json.dumps(request))[
        "executionArn"
    ]
    arns = [arn]
    while True:
        # Rare, cheap polls of the newest execution only: moto's DescribeExecution costs ~20 ms of CPU
        # (and the GIL) per call, which polling the whole chain often would charge to the workflow.
        time.sleep(1.0)
        last = sfn.describe_execution(executionArn=arns[-1])
        if last["status"] == "RUNNING":
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"replay {replay_id} still running after {timeout:.0f}s")
            continue
        continued_as = json.loads(last.get("output") or "{}").get("continued_as")
        if last["status"] == "SUCCEEDED" and continued_as:
            # continue-as-new: follow the chain (an ARN, or a name when the start's answer was lost)
            if not continued_as.startswith("arn:"):
                continued_as = state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + continued_as
            arns.append(continued_as)
            continue
        break
    cpu = time.process_time() - cpu
    if last["status"] != "SUCCEEDED":
        raise SystemExit(f"replay {replay_id} ended {last['status']}: {str(last.get('cause', ''))[:500]}")
    first = sfn.describe_execution(executionArn=arns[0])
    wall = (last["stopDate"] - first["startDate"]).total_seconds()
    histories = [history(sfn, execution) for execution in arns]
    return WorkflowRun(wall, cpu, json.loads(last["output"]), histories, requests.snapshot())


# ---------------------------------------------------------------------------- the bare loop
def run_baseline(
    ddb: Any, sqs: Any, table: str, url: str, replay_id: str, page_size: int, requests: Requests
) -> BareRun:
    """The same requests, no workflow: Query page, BatchGetItem of its registry items, SendMessageBatch by 10."""
    requests.reset()
    started, cpu = time.perf_counter(), time.process_time()
    enqueued = 0
    start_key: dict[str, Any] | None = None
    normalized = {"start_time": "2025-06-01T00:00:00.000000Z", "end_time": "2025-06-08T00:00:00.000000Z"}
    while True:
        params: dict[str, Any] = {
            "TableName": table,
            "Limit": page_size,
            "ConsistentRead": True,
            **window_condition(ENTITY, normalized["start_time"], normalized["end_time"]),
        }
        if start_key:
            params["ExclusiveStartKey"] = start_key
        page = ddb.query(**params)
        rows = page.get("Items", [])
        event_ids = [row["event_id"]["S"] for row in rows]
        for start in range(0, len(event_ids), 100):
            keys = [
                {"pk": {"S": entity_pk(ENTITY)}, "sk": {"S": registry_sk(e)}} for e in event_ids[start : start + 100]
            ]
            ddb.batch_get_item(
                RequestItems={
                    table: {"Keys": keys, "ProjectionExpression": "event_id, occurrences", "ConsistentRead": True}
                }
            )
        bodies = [
            json.dumps(
                {
                    "replay_id": replay_id,
                    "seq": enqueued + i,
                    "event_id": row["event_id"]["S"],
                    "entity_id": row["entity_id"]["S"],
                    "event_time": row["event_time"]["S"],
                    "s3_bucket": row["s3_bucket"]["S"],
                    "s3_key": row["s3_key"]["S"],
                },
                separators=(",", ":"),
            )
            for i, row in enumerate(rows, start=1)
        ]
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(start + i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            if response.get("Failed"):
                raise SystemExit(f"bare loop: SendMessageBatch reported {response['Failed']}")
        enqueued += len(bodies)
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return BareRun(time.perf_counter() - started, time.process_time() - cpu, enqueued, requests.snapshot())


# ---------------------------------------------------------------------------- cost
@dataclass
class History:
    transitions: int
    events: int
    max_per_execution: int
    executions: int
    scheduled: Counter[str]  # the state machine's own integrations: "lambda:invoke", "states:startExecution"
    task_seconds: dict[str, float]  # Lambda task time by function, TaskScheduled to its end event
    largest_payload: int


def read_histories(histories: list[list[dict[str, Any]]]) -> History:
    scheduled: Counter[str] = Counter()
    task_seconds: Counter[str] = Counter()
    largest = 0
    for events in histories:
        open_task: tuple[str, datetime] | None = None
        for e in events:
            if e["type"] == "TaskScheduled":
                details = e["taskScheduledEventDetails"]
                scheduled[f"{details['resourceType']}:{details['resource']}"] += 1
                if details["resourceType"] == "lambda":
                    function = str(json.loads(details["parameters"]).get("FunctionName", ""))
                    open_task = (function.rsplit(":", 1)[-1], e["timestamp"])
            elif e["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and open_task:
                task_seconds[open_task[0]] += (e["timestamp"] - open_task[1]).total_seconds()
                open_task = None
            for details in e.values():
                if isinstance(details, dict):
                    for name in ("input", "output", "parameters"):
                        if isinstance(details.get(name), str):
                            largest = max(largest, len(details[name].encode("utf-8")))
    return History(
        transitions=sum(1 for h in histories for e in h if e["type"].endswith("StateEntered")),
        events=sum(len(h) for h in histories),
        max_per_execution=max(len(h) for h in histories),
        executions=len(histories),
        scheduled=scheduled,
        task_seconds=dict(task_seconds),
        largest_payload=largest,
    )


def memory_mb(template: Template, function: str) -> int:
    return int(template.resolve(template.properties(function).get("MemorySize", 512)))


def report(size: int, runs: list[WorkflowRun], bares: list[BareRun], template: Template) -> dict[str, Any]:
    run = runs[0]  # every run makes the same requests; the first is the one counted
    h = read_histories(run.histories)
    enqueued = int(run.result["enqueued"])
    per = 1000 / enqueued
    req = run.requests
    sqs_sends = req.calls["sqs:SendMessageBatch"] + req.calls["sqs:SendMessage"]
    lambda_invokes = sum(v for k, v in h.scheduled.items() if k.startswith("lambda:"))
    gb_s = sum(seconds * memory_mb(template, name) / 1024 for name, seconds in h.task_seconds.items())
    gb_s_assumed = sum(req.calls.values()) * ASSUMED_AWS_CALL_SECONDS * memory_mb(template, "ReplayPageFunction") / 1024
    batches = math.ceil(enqueued / 10)
    naive_transitions = h.transitions + 5 * batches
    dollars = {  # (evreplay, naive): the naive shape reads the same pages, sends one message per call
        "Step Functions transitions": (h.transitions * PRICE_TRANSITION, naive_transitions * PRICE_TRANSITION),
        "SQS requests": (req.sqs_chunks * PRICE_SQS_REQUEST, enqueued * PRICE_SQS_REQUEST),
        "DynamoDB reads": (req.rru * PRICE_RRU, req.rru * PRICE_RRU),
        "DynamoDB writes": (req.wru * PRICE_WRU, req.wru * PRICE_WRU),
        "Lambda requests": (lambda_invokes * PRICE_LAMBDA_REQUEST, 0.0),
        "Lambda GB-s (task time measured here)": (gb_s * PRICE_LAMBDA_GB_S, 0.0),
    }
    scale = 1_000_000 / enqueued
    wf_wall, wf_cpu = statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs)
    bare_wall, bare_cpu = statistics.median(b.wall for b in bares), statistics.median(b.cpu for b in bares)

    print(f"\n=== {size:,} events: {enqueued:,} enqueued in {run.result['pages']} pages, {h.executions} execution(s)")
    print("AWS requests per 1 000 events enqueued (task Lambdas: botocore hook; state machine: its history)")
    for name, count in sorted(req.calls.items()):
        print(f"  task Lambdas   {name:<36}{count * per:>9.1f}  ({count:,})")
    for name, count in sorted(h.scheduled.items()):
        print(f"  state machine  {name:<36}{count * per:>9.1f}  ({count:,})")
    print(f"  billed SQS requests (64 KiB chunks){'':<16}{req.sqs_chunks * per:>9.1f}")
    print(f"  DynamoDB read units (strongly consistent){'':<10}{req.rru * per:>9.1f}")
    print(f"  DynamoDB write units{'':<31}{req.wru * per:>9.2f}")
    print(f"  {'per 1 000 events enqueued':<44}{'evreplay':>10}{'naive':>10}{'target':>10}")
    for label, ours, theirs, target in (
        ("SQS send calls", sqs_sends * per, 1000.0, f"<= {TARGETS['sqs_send_calls']}"),
        ("state transitions", h.transitions * per, naive_transitions * per, f"<= {TARGETS['transitions']}"),
        ("history events", h.events * per, (h.events + 5 * batches) * per, ""),
    ):
        print(f"  {label:<44}{ours:>10.1f}{theirs:>10.1f}{target:>10}")
    print(
        f"  history events in the largest execution: {h.max_per_execution:,} "
        f"(naive, all in one execution: {h.events + 5 * batches:,}; quota {TARGETS['history_per_execution']:,})"
    )
    print(f"  largest state payload: {h.largest_payload:,} bytes (quota {TARGETS['payload_bytes']:,})")
    print(f"  {'dollars per million events enqueued':<44}{'evreplay':>10}{'naive':>10}")
    for name, (ours, theirs) in dollars.items():
        print(f"    {name:<42}{ours * scale:>10.4f}{theirs * scale:>10.4f}")
    total = sum(ours for ours, _ in dollars.values()) * scale
    naive_total = sum(theirs for _, theirs in dollars.values()) * scale
    print(f"    {'total':<42}{total:>10.4f}{naive_total:>10.4f}")
    print(
        f"    (Lambda: {sum(h.task_seconds.values()):.1f} s of task time in-process on moto; at "
        f"{ASSUMED_AWS_CALL_SECONDS * 1000:.0f} ms per AWS request instead: "
        f"${gb_s_assumed * PRICE_LAMBDA_GB_S * scale:.4f})"
    )
    print(
        f"  throughput, median of {len(runs)}:{'':<22}{'wall s':>10}{'events/s':>10}{'CPU s':>10}{'events/CPU-s':>14}"
    )
    for label, wall, cpu in (
        ("workflow (start to last stop)", wf_wall, wf_cpu),
        ("bare boto3 loop", bare_wall, bare_cpu),
    ):
        print(f"    {label:<42}{wall:>10.2f}{enqueued / wall:>10.0f}{cpu:>10.2f}{enqueued / cpu:>14.0f}")
    print(
        f"    ratio workflow/bare events/s: wall {bare_wall / wf_wall:.2f}, CPU {bare_cpu / wf_cpu:.2f} "
        f"(target >= 0.5); bare loop requests {dict(sorted(bares[0].requests.calls.items()))}"
    )
    return {
        "size": size,
        "enqueued": enqueued,
        "wf_wall": wf_wall,
        "wf_cpu": wf_cpu,
        "bare_wall": bare_wall,
        "bare_cpu": bare_cpu,
        "runs": len(runs),
    }


@contextlib.contextmanager
def one_call_at_a_time() -> Any:
    """The page's calls one after another, as before concurrent sends: run_batches held to one worker."""
    serial = functools.partial(concurrency.run_batches, max_workers=1)
    saved = replay_queue.run_batches, replay_workflow.run_batches
    replay_queue.run_batches = replay_workflow.run_batches = lambda batches, send, **kw: serial(batches, send)
    try:
        yield
    finally:
        replay_queue.run_batches, replay_workflow.run_batches = saved


def under_model(
    sfn: Any, state_machine_arn: str, size: int, request: dict[str, Any], scale: float, timeout: float
) -> dict[str, Any]:
    """The replay under the latency model, its calls one after another and then concurrent."""
    model = LatencyModel(scale)
    figures: dict[str, Any] = {}
    with model.installed():
        for label, shape in (
            ("before: the page's calls one after another", one_call_at_a_time),
            (f"concurrent, {concurrency.DEFAULT_WORKERS} workers", contextlib.nullcontext),
        ):
            model.reset()
            with shape():
                run = run_workflow(sfn, state_machine_arn, f"model-{size}-{len(figures)}", request, Requests(), timeout)
            enqueued = int(run.result["enqueued"])
            if enqueued != size:
                raise SystemExit(f"under the model: expected {size} messages, got {run.result}")
            seconds, pessimistic = model.scaled_back(run.wall), model.pessimistic(run.wall, run.cpu)
            # Lambda's billed duration: the tasks' time in the history, scaled back like the rest.
            task_seconds = read_histories(run.histories).task_seconds
            gb_s = sum(model.scaled_back(t) * memory_mb(TEMPLATE, name) / 1024 for name, t in task_seconds.items())
            figures[label] = (
                enqueued / seconds,
                enqueued / pessimistic,
                seconds,
                pessimistic,
                gb_s * PRICE_LAMBDA_GB_S,
            )
            print(
                f"[{size:,}] under the model x{scale:g} ({label}): {run.wall:.1f} s wall, {run.cpu:.1f} s CPU "
                f"({model.moto_cpu:.1f} s in moto's answers), modelled waits {sum(model.waited.values()):.2f} s",
                flush=True,
            )
    print(f"\n  under the latency model (x{scale:g}, scaled back; load {os.getloadavg()[0]:.1f}):")
    print(
        f"    {'':<44}{'events/s':>10}{'s/million':>11}{'pessimistic events/s':>22}{'s/million':>11}"
        f"{'Lambda GB-s $/million':>23}"
    )
    for label, (rate, low, seconds, pessimistic, lambda_dollars) in figures.items():
        per_million = 1_000_000 / size
        print(
            f"    {label:<44}{rate:>10.0f}{seconds * per_million:>11.0f}{low:>22.0f}{pessimistic * per_million:>11.0f}"
            f"{lambda_dollars * per_million:>23.4f}"
        )
    (before, *_), (after, *_) = figures.values()
    print(f"    ratio concurrent / one after another: {after / before:.1f}x")
    return figures


def one_size(size: int, template: Template, repeats: int, timeout: float, latency_scale: float = 0.0) -> dict[str, Any]:
    settings = get_settings()
    with local_aws() as aws:
        replay_tasks.reset()  # built from the previous moto's clients otherwise
        session = boto3.session.Session()
        arns = deploy_workflow(
            template,
            {"iam": session.client("iam"), "lambda": session.client("lambda"), "stepfunctions": aws["stepfunctions"]},
        )
        sfn, ddb, sqs = aws["stepfunctions"], aws["dynamodb"], aws["sqs"]
        table, url, bucket = (
            settings.require("index_table"),
            settings.require("replay_queue_url"),
            settings.require("raw_bucket"),
        )
        seeded = time.perf_counter()
        seed(ddb, table, bucket, size)
        print(f"[{size:,}] seeded {size:,} rows + registry items in {time.perf_counter() - seeded:.1f} s", flush=True)

        counted = Requests()
        for client in (clients.dynamodb(), clients.sqs()):  # the clients the task Lambdas use
            counted.install(client)
        # The bare loop's clients carry the same hooks: the same overhead on both sides, and proof that
        # it made the same requests.
        bare_counted = Requests()
        bare_ddb, bare_sqs = session.client("dynamodb"), session.client("sqs")
        for client in (bare_ddb, bare_sqs):
            bare_counted.install(client)
        request = {"entity_id": ENTITY, **WINDOW, "limit": settings.max_replay_limit}  # the whole window
        # Warm-up, not measured: the first invocation imports the task module and builds its clients
        # (a Lambda cold start, measured by bench_cold_start.py); throughput is the warm figure.
        run_workflow(sfn, arns["ReplayStateMachine"], f"warmup-{size}", {**request, "limit": 10}, Requests(), timeout)
        queued_before = queue_depth(sqs, url)
        runs: list[WorkflowRun] = []
        bares: list[BareRun] = []
        for k in range(repeats):  # alternated, so load from other processes hits both sides alike
            runs.append(run_workflow(sfn, arns["ReplayStateMachine"], f"bench-{size}-{k}", request, counted, timeout))
            queued = queue_depth(sqs, url) - queued_before
            if k == 0 and (runs[0].result["enqueued"] != size or queued != size):
                raise SystemExit(f"expected {size} messages, got {runs[0].result} and {queued} queued")
            bare_url = twin_queue(sqs, url, f"bare-{size}-{k}")
            bares.append(
                run_baseline(
                    bare_ddb, bare_sqs, table, bare_url, f"bare-{size}-{k}", settings.replay_page_size, bare_counted
                )
            )
            if bares[-1].enqueued != size:
                raise SystemExit(f"bare loop enqueued {bares[-1].enqueued}, expected {size}")
            print(
                f"[{size:,}] run {k + 1}/{repeats}: workflow {runs[-1].wall:.1f} s wall / {runs[-1].cpu:.1f} s CPU, "
                f"bare loop {bares[-1].wall:.1f} s / {bares[-1].cpu:.1f} s",
                flush=True,
            )
        figures = report(size, runs, bares, template)
        if latency_scale:
            figures["model"] = under_model(sfn, arns["ReplayStateMachine"], size, request, latency_scale, timeout)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument(
        "--repeats", type=int, help="runs per size, sides alternated (default: 3 to 1 000 events, 2 to 10 000, else 1)"
    )
    parser.add_argument("--pages-per-execution", type=int, help="template parameter ReplayPagesPerExecution")
    parser.add_argument("--page-size", type=int, help="template parameter ReplayPageSize (10-1000)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    add_arguments(parser, default_scale=0.0)
    args = parser.parse_args()
    overrides: dict[str, int] = {}
    if args.pages_per_execution:
        overrides["ReplayPagesPerExecution"] = args.pages_per_execution
    if args.page_size:
        overrides["ReplayPageSize"] = args.page_size
    template = Template(parameter_overrides=overrides) if overrides else TEMPLATE
    os.environ.update(template.merged_environment())
    reset_settings()
    moto_patches.apply(template)  # the same moto fidelity and speed patches as the local stack and the tests
    print(f"replay benchmark, in-process moto {moto_patches.MOTO_VERSION}; {machine()}")
    if args.latency_scale:
        print_model()
    if overrides:
        print(f"template overrides: {overrides}")
    results = []
    for size in args.events:
        repeats = args.repeats or (3 if size <= 1000 else 2 if size <= 10_000 else 1)
        results.append(one_size(size, template, repeats, args.timeout, args.latency_scale))
    if len(results) > 1:
        print("\ngrowth: seconds per 1 000 events enqueued (wall / CPU)")
        for r in results:
            per = 1000 / r["enqueued"]
            print(
                f"  {r['size']:>8,} events: workflow {r['wf_wall'] * per:.2f} / {r['wf_cpu'] * per:.2f}, "
                f"bare loop {r['bare_wall'] * per:.2f} / {r['bare_cpu'] * per:.2f}"
            )


if __name__ == "__main__":
    main()

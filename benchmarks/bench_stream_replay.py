"""Stream replays (docs/design.md §4.11 rule 9): one request over a whole source, the Distributed Map on moto's
interpreter (task Lambdas in-process), against the per-entity way (one one-entity replay per entity),
in one process, at several sizes.

    python benchmarks/bench_stream_replay.py                         # 200, 1 000 and 3 000 entities
    python benchmarks/bench_stream_replay.py --entities 10000 --per-entity 10
    python benchmarks/bench_stream_replay.py --entities 1000 3000 --sample 10 --latency-scale 20

With `--latency-scale K` each size also runs the stream replay under the latency model
(benchmarks/_latency.py), at max_concurrency 1 and at the template's default MaxConcurrency, and
reports events/s and seconds per million scaled back. The local stack runs each function one
invocation at a time (one execution environment: evreplay.local.runtime.function_lock); on AWS each
of the map's concurrent children gets an environment of its own, so under the model that lock is
lifted for the ReplayEntities function (its handler keeps no state between invocations that matters
here; what the replay sends is checked as always).

For each size: a fresh moto, the index filled with ENTITIES x PER_ENTITY events of one source (rows,
registry items and stream-index keys, as ingest writes them, put straight into moto's table as the local
stack's data directory loads; the pointer format reads no S3 object), one stream replay of the window, then
one-entity replays of a sample of the entities (`--sample`, default 100) the way a caller without
scopes would (one execution each), priced per event.

Counted, not estimated (as bench_replay.py counts them, and with its code): the AWS requests of the
task Lambdas (botocore hooks on the process-wide clients), state transitions and history events from
GetExecutionHistory of the parent and of every child execution of the map run, billed units from
DynamoDB's sizing rules. Lambda GB-s are priced at an assumed 20 ms per AWS request a task makes (moto's
timings say nothing about AWS), at each function's memory; S3 for the plan and the map's manifest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from _common import TEMPLATE, local_aws, machine
from _latency import LatencyModel, add_arguments, print_model
from bench_replay import (
    ASSUMED_AWS_CALL_SECONDS,
    PRICE_LAMBDA_GB_S,
    PRICE_LAMBDA_REQUEST,
    PRICE_RRU,
    PRICE_SQS_REQUEST,
    PRICE_TRANSITION,
    PRICE_WRU,
    Requests,
    history,
    memory_mb,
)
from evreplay.core import clients
from evreplay.core.settings import get_settings
from evreplay.ingest.service import new_arrival_id
from evreplay.local import moto_patches
from evreplay.local.template import ACCOUNT_ID
from evreplay.local.workflow import deploy_workflow
from evreplay.replay import fanout as replay_fanout
from evreplay.replay import tasks as replay_tasks
from evreplay.store.index import IndexRow, entity_pk, registry_sk
from moto.dynamodb.models import dynamodb_backends

SOURCE = "bench_stream"
WINDOW = {"start_time": "2025-06-01T00:00:00Z", "end_time": "2025-06-02T00:00:00Z"}
PRICE_S3_PUT = 0.005 / 1000
PRICE_S3_GET = 0.0004 / 1000
TARGET_DOLLARS_PER_MILLION = 0.50


def seed(table: str, bucket: str, entities: int, per_entity: int) -> list[str]:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    names = [f"ent-{n:07d}" for n in range(entities)]
    items: list[dict[str, Any]] = []
    start = datetime(2025, 6, 1, tzinfo=UTC)
    for entity in names:
        for k in range(per_entity):
            event_time = (start + timedelta(seconds=random.randrange(86_400))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            event_id = f"ev-{k:04d}"
            row = IndexRow(
                entity_id=entity,
                event_id=event_id,
                event_time=event_time,
                arrival_id=new_arrival_id(now),
                ingest_time=stamp,
                ingest_lag_ms=1234,
                status="ACCEPTED",
                s3_bucket=bucket,
                s3_key=f"raw/source={SOURCE}/event_type=tick/event_date=2025-06-01/{entity}/{event_id}-{uuid.uuid4().hex[:8]}.json",
                source=SOURCE,
                event_type="tick",
                payload_sha256=uuid.uuid4().hex * 2,
            )
            items.append(row.to_item())
            items.append(
                {
                    "pk": {"S": entity_pk(entity)},
                    "sk": {"S": registry_sk(event_id)},
                    "occurrences": {"N": "1"},
                    "first_sk": {"S": row.sk},
                    "event_id": {"S": event_id},
                }
            )
    # Straight into moto's table (what BatchWriteItem does after parsing the request), as the local
    # stack's data directory loads: botocore's and moto's request handling were most of a BatchWriteItem's
    # CPU, and seeding 30 000 events took minutes. The items are the ones ingest writes.
    moto_table = dynamodb_backends[ACCOUNT_ID][TEMPLATE.region].get_table(table)
    with moto_patches.DYNAMODB_LOCK:
        for item in items:
            moto_table.put_item(item)
    return names


def wait(sfn: Any, arn: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise SystemExit(f"{arn} still running after {timeout:.0f}s")
        time.sleep(0.5)
    if described["status"] != "SUCCEEDED":
        raise SystemExit(f"{arn} ended {described['status']}: {str(described.get('cause'))[:400]}")
    return described


def histories_of(sfn: Any, arn: str) -> tuple[list[list[dict[str, Any]]], int]:
    """The execution's history, and how many work items its map runs had. moto keeps no history of a
    Distributed Map's children (ListExecutions knows no mapRunArn): their transitions and history are
    computed from the ReplayEntities steps counted here and the ItemProcessor's shape."""
    items = 0
    for run in sfn.list_map_runs(executionArn=arn).get("mapRuns", []):
        items += int(sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]["total"])
    return [history(sfn, arn)], items


def costs(
    enqueued: int,
    histories: list[list[dict[str, Any]]],
    requests: Requests,
    lambda_calls: dict[str, int],
    child_transitions: int = 0,
) -> dict[str, float]:
    transitions = sum(1 for h in histories for e in h if e["type"].endswith("StateEntered")) + child_transitions
    # Lambda time: the AWS requests the tasks made, at an assumed round trip each, at the memory of the
    # function making nearly all of them (ReplayEntities / ReplayPage, 1 024 MB), plus the invocations.
    gb_s = (
        sum(requests.calls.values()) * ASSUMED_AWS_CALL_SECONDS * memory_mb(TEMPLATE, "ReplayEntitiesFunction") / 1024
    )
    s3_puts = requests.calls["s3:PutObject"] + 1  # the plan, and the map run's manifest (the state machine's)
    dollars = {
        "transitions": transitions * PRICE_TRANSITION,
        "lambda": sum(lambda_calls.values()) * PRICE_LAMBDA_REQUEST + gb_s * PRICE_LAMBDA_GB_S,
        "dynamodb_reads": requests.rru * PRICE_RRU,
        "dynamodb_writes": requests.wru * PRICE_WRU,
        "sqs": requests.sqs_chunks * PRICE_SQS_REQUEST,
        "s3": s3_puts * PRICE_S3_PUT + PRICE_S3_GET,
    }
    per_million = 1_000_000 / max(enqueued, 1)
    return {
        "transitions": transitions,
        "history_max": max(len(h) for h in histories),
        "executions": len(histories),
        **{f"$/M {name}": value * per_million for name, value in dollars.items()},
        "$/M total": sum(dollars.values()) * per_million,
    }


def lambda_invokes(histories: list[list[dict[str, Any]]]) -> dict[str, int]:
    calls: dict[str, int] = {}
    for events in histories:
        for e in events:
            if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "lambda":
                name = str(json.loads(e["taskScheduledEventDetails"]["parameters"])["FunctionName"]).rsplit(":", 1)[-1]
                calls[name] = calls.get(name, 0) + 1
    return calls


def under_model(
    sfn: Any,
    machine_arn: str,
    events: int,
    request: dict[str, Any],
    scale: float,
    timeout: float,
    concurrencies: list[int],
) -> dict[int, tuple[float, float]]:
    """The stream replay under the latency model at each max_concurrency: events/s scaled back, and the
    pessimistic figure."""
    model = LatencyModel(scale)
    rates: dict[int, tuple[float, float]] = {}
    one_environment = moto_patches.function_lock
    moto_patches.function_lock = lambda name: (  # type: ignore[assignment]
        contextlib.nullcontext() if name == "ReplayEntitiesFunction" else one_environment(name)
    )
    with model.installed(), contextlib.ExitStack() as restore:
        restore.callback(setattr, moto_patches, "function_lock", one_environment)
        for concurrency in concurrencies:
            model.reset()
            started, cpu = time.perf_counter(), time.process_time()
            name = f"model-{events}-{concurrency}"
            arn = sfn.start_execution(
                stateMachineArn=machine_arn,
                name=name,
                input=json.dumps({**request, "max_concurrency": concurrency}),
            )["executionArn"]
            done = wait(sfn, arn, timeout * scale)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            if json.loads(done["output"])["enqueued"] != events:
                raise SystemExit(f"{name}: enqueued {json.loads(done['output'])['enqueued']}, expected {events}")
            seconds = model.scaled_back((done["stopDate"] - done["startDate"]).total_seconds())
            rates[concurrency] = (events / seconds, events / model.pessimistic(wall, cpu))
            print(
                f"  under the model x{scale:g}, max_concurrency {concurrency}: {events / seconds:,.0f} events/s "
                f"({1_000_000 / (events / seconds):,.0f} s per million; pessimistic "
                f"{rates[concurrency][1]:,.0f} events/s); {wall:.0f} s wall, {cpu:.0f} s CPU "
                f"({model.moto_cpu:.0f} s in moto's answers); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            waited = ", ".join(f"{name} {seconds:.1f}" for name, seconds in model.waited.most_common(6))
            print(f"    modelled waits, all threads, s: {waited}", flush=True)
    return rates


def one_size(
    entities: int,
    per_entity: int,
    sample: int,
    timeout: float,
    scale: float = 0.0,
    concurrencies: list[int] | None = None,
) -> dict[str, Any]:
    settings = get_settings()
    with local_aws() as aws:
        replay_tasks.reset()
        session = boto3.session.Session()
        arns = deploy_workflow(
            TEMPLATE,
            {"iam": session.client("iam"), "lambda": session.client("lambda"), "stepfunctions": aws["stepfunctions"]},
        )
        sfn, machine_arn = aws["stepfunctions"], arns["ReplayStateMachine"]
        seeded = time.perf_counter()
        names = seed(settings.require("index_table"), settings.require("raw_bucket"), entities, per_entity)
        events = entities * per_entity
        print(
            f"[{entities:,} x {per_entity}] seeded {events:,} events in {time.perf_counter() - seeded:.1f} s",
            flush=True,
        )
        counted = Requests()
        for client in (clients.dynamodb(), clients.sqs(), clients.s3()):
            counted.install(client)
        # Warm-up (imports, clients): one small one-entity replay, not counted.
        warm = sfn.start_execution(
            stateMachineArn=machine_arn, name="warm", input=json.dumps({"entity_id": names[0], **WINDOW})
        )
        wait(sfn, warm["executionArn"], timeout)

        counted.reset()
        STEPS.clear()
        started, cpu = time.perf_counter(), time.process_time()
        request = {"source": SOURCE, **WINDOW, "limit": settings.max_scope_replay_limit}
        arn = sfn.start_execution(stateMachineArn=machine_arn, name=f"stream-{entities}", input=json.dumps(request))
        done = wait(sfn, arn["executionArn"], timeout)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        output = json.loads(done["output"])
        if output["enqueued"] != events:
            raise SystemExit(f"stream replay enqueued {output['enqueued']}, expected {events}")
        stream_requests = counted.snapshot()
        stream_histories, items = histories_of(sfn, arn["executionArn"])
        steps = len(STEPS)
        # A child execution per item (ItemProcessor of statemachines/replay.asl.json): per step ReplayItem
        # (Task) and ItemDone? (Choice), then ItemFinished (Pass); 7 history events per step (a Lambda
        # task's 5, the Choice's 2) and 4 more (ExecutionStarted, the Pass's 2, ExecutionSucceeded).
        child_transitions = 2 * steps + items
        invokes = {**lambda_invokes(stream_histories), "ReplayEntitiesFunction": steps}
        stream = costs(events, stream_histories, stream_requests, invokes, child_transitions)
        parent_only = len(stream_histories[0])
        per_child = (7 * steps + 4 * items) / max(items, 1)

        counted.reset()
        chosen = names[:sample]
        started_one, cpu_one = time.perf_counter(), time.process_time()
        one_arns = [
            sfn.start_execution(
                stateMachineArn=machine_arn, name=f"one-{n}", input=json.dumps({"entity_id": entity, **WINDOW})
            )["executionArn"]
            for n, entity in enumerate(chosen)
        ]
        one_outputs = [json.loads(wait(sfn, one, timeout)["output"]) for one in one_arns]
        wall_one, cpu_one = time.perf_counter() - started_one, time.process_time() - cpu_one
        one_events = sum(o["enqueued"] for o in one_outputs)
        one_histories = [history(sfn, one) for one in one_arns]
        per_entity_way = costs(one_events, one_histories, counted.snapshot(), lambda_invokes(one_histories))

        print(
            f"[{entities:,} x {per_entity}] stream replay: {wall:.1f} s wall / {cpu:.1f} s CPU "
            f"({wall * 1000 / events:.2f} s per 1 000 events); {items} work items, {stream['transitions']} "
            f"transitions ({stream['transitions'] * 1000 / events:.1f} per 1 000 events); history: parent "
            f"{parent_only} events of its own, {per_child:.1f} per work item (one child execution on AWS); "
            f"requests {dict(sorted(stream_requests.calls.items()))}",
            flush=True,
        )
        print(
            f"[{entities:,} x {per_entity}] per-entity way ({sample} entities): {wall_one:.1f} s wall "
            f"({wall_one * 1000 / max(one_events, 1):.2f} s per 1 000 events), "
            f"{per_entity_way['transitions'] * 1000 / max(one_events, 1):.1f} transitions per 1 000 events",
            flush=True,
        )
        names_shown = [key for key in stream if key.startswith("$/M")]
        print(f"  {'$ per million events':<24}{'stream':>10}{'per-entity':>12}")
        for key in names_shown:
            print(f"  {key[4:]:<24}{stream[key]:>10.4f}{per_entity_way[key]:>12.4f}")
        verdict = "OK" if stream["$/M total"] <= TARGET_DOLLARS_PER_MILLION else "OVER"
        print(
            f"  stream ${stream['$/M total']:.3f} per million events (target <= ${TARGET_DOLLARS_PER_MILLION}: "
            f"{verdict}); per-entity way ${per_entity_way['$/M total']:.3f} "
            f"({per_entity_way['$/M total'] / stream['$/M total']:.1f}x)",
            flush=True,
        )
        model = under_model(sfn, machine_arn, events, request, scale, timeout, concurrencies or []) if scale else {}
        return {
            "model": model,
            "entities": entities,
            "events": events,
            "wall": wall,
            "cpu": cpu,
            "items": items,
            "parent_history": parent_only,
            "child_history": per_child,
            **stream,
        }


STEPS: list[int] = []


def _count_steps() -> None:
    """Count ReplayEntities steps (moto keeps no history of a Distributed Map's children)."""
    original = replay_fanout.EntitiesWorker.run

    def run(self: Any, state: dict[str, Any]) -> dict[str, Any]:
        STEPS.append(1)
        return original(self, state)

    replay_fanout.EntitiesWorker.run = run  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, nargs="+", default=[200, 1000, 3000])
    parser.add_argument("--per-entity", type=int, default=10)
    parser.add_argument("--sample", type=int, default=100, help="entities replayed one by one, per size")
    parser.add_argument("--timeout", type=float, default=3600.0)
    add_arguments(parser, default_scale=0.0)
    parser.add_argument(
        "--model-concurrency",
        type=int,
        nargs="+",
        help="max_concurrency values run under the model (default: 1 and the template's ReplayMaxConcurrency)",
    )
    args = parser.parse_args()
    random.seed(7)
    moto_patches.apply(TEMPLATE)
    _count_steps()
    print(f"stream replay benchmark, in-process moto {moto_patches.MOTO_VERSION}; {machine()}")
    if args.latency_scale:
        print_model()
    results = [
        one_size(
            n,
            args.per_entity,
            min(args.sample, n),
            args.timeout,
            args.latency_scale,
            args.model_concurrency or list(dict.fromkeys((1, get_settings().replay_max_concurrency))),
        )
        for n in args.entities
    ]
    if len(results) > 1:
        print("\ngrowth (stream replay): per 1 000 events")
        for r in results:
            per = 1000 / r["events"]
            print(
                f"  {r['events']:>9,} events / {r['entities']:>7,} entities: {r['wall'] * per:.2f} s wall, "
                f"{r['cpu'] * per:.2f} s CPU, {r['transitions'] * per:.1f} transitions, ${r['$/M total']:.3f}/M, "
                f"{r['items']} items, history: parent {r['parent_history']}, per child {r['child_history']:.1f}"
            )
            for concurrency, (rate, low) in r["model"].items():
                print(f"      under the model, max_concurrency {concurrency}: {rate:,.0f} events/s ({low:,.0f})")


if __name__ == "__main__":
    main()

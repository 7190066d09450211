"""Processor throughput against the bare AWS calls it must make, measured side by side on moto.

    python benchmarks/bench_processor.py [--messages 200] [--latency-scale 10]

The handler path is the template's ProcessorFunction handler over SQS-shaped events of 10 records
(the trigger's BatchSize), as Lambda's SQS trigger would pass them (evreplay.local.queue_driver
builds the same records): Powertools' BatchProcessor, message parsing, the raw objects read from S3
(concurrently), the exactly-once fold into each aggregate version (AggregateStore.apply_all: one
TransactWriteItems per version per batch, versions concurrently) and the first/last event_time
widening (two conditional UpdateItems per version per batch).
Two mixes of messages: 20 entities interleaved (each batch of 10 touches 10 versions) and one entity
(each batch is one version: a single-entity replay).
The baseline does the two calls a fold cannot do without, per message, one message after another,
with the same clients: S3 GetObject of the raw event, then a one-message transaction (built by
AggregateStore, so the same expressions). A second baseline adds the message's first/last
event_time widening (its two conditional UpdateItems, concurrently), i.e. the per-message requests
the handler made before it folded batches. The last row replays the handler's batches (every message
already applied: the redelivery path).
AWS requests per message are counted at botocore, on the process-wide clients the handler uses.
Under the latency model (benchmarks/_latency.py) the handler (both mixes) and the widening baseline
run once more, scaled back: messages/s for one Lambda environment, and ms per batch of 10 (its
billed duration).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import TEMPLATE, local_aws, machine
from _latency import LatencyModel, add_arguments, latency, print_model
from evreplay.core import clients
from evreplay.core.settings import get_settings
from evreplay.core.times import format_utc
from evreplay.local import moto_patches
from evreplay.local.runtime import FakeLambdaContext
from evreplay.processor.keys import first_marker_sk
from evreplay.processor.messages import contribution_of, parse_message
from evreplay.processor.store import AggregateStore
from evreplay.store.raw import RawStore, raw_key

DAY = datetime(2025, 6, 1, 10, tzinfo=UTC)
FUNCTION = "ProcessorFunction"


def stored_events(s3: Any, bucket: str, count: int, entities: int) -> list[dict[str, Any]]:
    """`count` raw events of `entities` entities, interleaved, in S3, shaped as ingest stores them;
    returns what a message needs of each."""
    store = RawStore(s3, bucket)
    events = []
    for n in range(count):
        event_time = (DAY + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entity, event_id, arrival = (
            f"bench{entities}-{n % entities}",
            f"ev{entities}-{n:07d}",
            f"20250601T100000000000-{uuid.uuid4().hex[:16]}",
        )
        document = {
            "event_id": event_id,
            "event_id_derived": False,
            "source": "bench",
            "event_type": ("purchase", "view", "refund")[n % 3],
            "entity_id": entity,
            "event_time": event_time,
            "event_time_original": event_time,
            "payload": {"n": n, "text": "x" * 200},
            "ingest_time": event_time,
            "arrival_id": arrival,
            "request_id": "bench",
            "idempotency_key": None,
        }
        key = raw_key("bench", document["event_type"], entity, event_time, event_id, arrival)
        store.put_new(key, document)
        events.append({"event_id": event_id, "entity_id": entity, "event_time": event_time, "s3_key": key})
    return events


def bodies(events: list[dict[str, Any]], bucket: str, replay_id: str) -> list[str]:
    return [
        json.dumps(
            {
                "replay_id": replay_id,
                "seq": seq,
                **{k: e[k] for k in ("event_id", "entity_id", "event_time")},
                "s3_bucket": bucket,
                "s3_key": e["s3_key"],
            },
            separators=(",", ":"),
        )
        for seq, e in enumerate(events, start=1)
    ]


def sqs_event(chunk: list[str], source_arn: str) -> dict[str, Any]:
    """The SQS Lambda event for one batch (the records Lambda's poller builds)."""
    now = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now,
                    "SenderId": "AIDALOCAL",
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": source_arn,
                "awsRegion": TEMPLATE.region,
            }
            for body in chunk
        ]
    }


def timed(work: Any) -> tuple[float, float]:
    """Wall and CPU seconds of `work`; the EMF lines the handler prints go to /dev/null meanwhile."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        return time.perf_counter() - wall, time.process_time() - cpu


class Calls:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.counts[f"{service}:{operation}"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    add_arguments(parser)
    args = parser.parse_args()
    n = args.messages

    # Metrics on, as in Lambda: every invocation serializes its EMF document (printed to /dev/null here).
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    moto_patches.apply(TEMPLATE)  # the same moto fidelity and speed patches as the local stack
    with local_aws() as aws:
        from evreplay.handlers import processor

        settings = get_settings()
        bucket, table = settings.require("raw_bucket"), settings.require("aggregates_table")
        (trigger,) = [t for t in TEMPLATE.queue_triggers() if t.function == FUNCTION]
        source_arn = TEMPLATE.get_att(trigger.queue, "Arn")
        events = stored_events(aws["s3"], bucket, n, entities=20)
        one_entity = stored_events(aws["s3"], bucket, n, entities=1)
        s3, ddb = clients.s3(), clients.dynamodb()  # the handler's clients, for the baseline too
        calls = Calls()
        for client in (s3, ddb):
            client.meta.events.register_first("before-send", calls)
        batches: list[list[dict[str, Any]]] = []

        def handler_path(mix: list[dict[str, Any]] = events) -> None:
            chunks = bodies(mix, bucket, f"r-{uuid.uuid4().hex[:12]}")
            batches.clear()
            for start in range(0, n, trigger.batch_size):
                event = sqs_event(chunks[start : start + trigger.batch_size], source_arn)
                batches.append(event)
                response = processor.handler(event, FakeLambdaContext(FUNCTION))
                assert not response["batchItemFailures"], response

        def redelivery() -> None:
            for event in batches:
                response = processor.handler(event, FakeLambdaContext(FUNCTION))
                assert not response["batchItemFailures"], response

        store = AggregateStore(ddb, table)

        def bare(widen: bool) -> None:
            # The same transaction the fold writes, its items built by AggregateStore itself (so the
            # baseline cannot drift from the real write); no Powertools, no batch machinery.
            now = format_utc(datetime.now(UTC))
            for body in bodies(events, bucket, f"b-{uuid.uuid4().hex[:12]}"):
                message = parse_message(body)
                raw = json.loads(s3.get_object(Bucket=bucket, Key=message.s3_key)["Body"].read())
                c = contribution_of(message, raw)
                sk = first_marker_sk(c.day, c.replay_id, c.event_id)
                marker = store._put_marker(c, sk, now, return_existing=True)
                ddb.transact_write_items(TransactItems=[marker, store._add_to_version([c], now, [True])])
                if widen:
                    store.widen_times([c])

        calls.counts.clear()
        timed(handler_path)
        per_message_handler = {k: v / n for k, v in sorted(calls.counts.items())}
        calls.counts.clear()
        timed(lambda: handler_path(one_entity))
        per_message_one_entity = {k: v / n for k, v in sorted(calls.counts.items())}
        calls.counts.clear()
        timed(redelivery)
        per_message_redelivery = {k: v / n for k, v in sorted(calls.counts.items())}
        calls.counts.clear()
        timed(lambda: bare(False))
        per_message_base = {k: v / n for k, v in sorted(calls.counts.items())}

        # Alternate the sides so load from other processes on the machine hits them alike.
        results: dict[str, list[tuple[float, float]]] = {"base": [], "widen": [], "handler": [], "redelivery": []}
        for _ in range(args.repeats):
            results["base"].append(timed(lambda: bare(False)))
            results["widen"].append(timed(lambda: bare(True)))
            results["handler"].append(timed(handler_path))
            results["redelivery"].append(timed(redelivery))
        modelled: dict[str, tuple[float, float]] = {}
        if args.latency_scale:
            model = LatencyModel(args.latency_scale)
            with model.installed():
                for key, work in (
                    ("widen", lambda: bare(True)),
                    ("handler", handler_path),
                    ("one entity", lambda: handler_path(one_entity)),
                ):
                    model.reset()
                    seconds, cpu_seconds = timed(work)
                    modelled[key] = (model.scaled_back(seconds), model.pessimistic(seconds, cpu_seconds))

    wall = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in results.items()}
    print(f"processor benchmark, {n} messages per run, median of {args.repeats}, in-process moto; {machine()}")
    print(f"{'path':<52}{'msgs/s':>9}{'ratio':>7}{'msgs/CPU-s':>12}{'ratio':>7}   (ratio: time vs baseline)")
    for label, key in (
        ("baseline: S3 GetObject + the fold's transaction", "base"),
        ("baseline + first/last time widening (2 UpdateItem)", "widen"),
        ("processor handler, SQS batches of 10", "handler"),
        ("processor handler, redelivered (already applied)", "redelivery"),
    ):
        print(
            f"{label:<52}{n / wall[key]:>9.0f}{wall[key] / wall['base']:>7.2f}"
            f"{n / cpu[key]:>12.0f}{cpu[key] / cpu['base']:>7.2f}"
        )
    if modelled:
        print_model()
        print(f"under the latency model (x{args.latency_scale:g}, scaled back; pessimistic in brackets):")
        for label, key in (
            ("baseline + widening, one message after another", "widen"),
            ("processor handler, 20 entities (10 versions a batch)", "handler"),
            ("processor handler, one entity (1 version a batch)", "one entity"),
        ):
            seconds, pessimistic = modelled[key]
            print(
                f"  {label:<50}{n / seconds:>7.0f} msgs/s ({n / pessimistic:.0f}), "
                f"{seconds / n * trigger.batch_size * 1000:.0f} ms per batch of {trigger.batch_size}"
            )
        floor = sum(
            latency(*name.split(".")).ms
            for name in ("s3.GetObject", "dynamodb.TransactWriteItems", "dynamodb.UpdateItem")
        )
        print(
            f"  a batch's floor under the model: one round trip per wave (read, transaction, widening) = {floor:.0f} ms"
        )
    print(f"AWS requests per message, handler, 20 entities:  {per_message_handler}")
    print(f"AWS requests per message, handler, one entity:   {per_message_one_entity}")
    print(f"AWS requests per message, handler, redelivered:  {per_message_redelivery}")
    print(f"AWS requests per message, baseline: {per_message_base}")


if __name__ == "__main__":
    main()

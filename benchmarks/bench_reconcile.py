"""Reconcile cost and speed: requests and $ per million objects, objects/s, at three sizes.

For each size: objects spread over 4 days x 2 streams x 50 entities, written as ingest writes them
(raw object, then the index transaction). Then three runs of the reconcile core
(evreplay.reconcile.reconciler, what each Distributed Map child runs) over those days, in-process on moto as
the local stack runs it:
- check: every row present (the steady state);
- repair after a quarter of the rows were removed (objects whose index write failed);
- rebuild: the index emptied, then repaired.
Requests are counted at botocore (one per API call; no retries happen here); $ at list prices
(us-east-1): S3 LIST $0.005 and
GET/HEAD $0.0004 per 1 000; DynamoDB on demand $0.125 per million read units (a consistent read of
an item under 4 KB is 1 unit; Query units from the bytes read) and $0.625 per million write units (a
transactional write is 2 units per item); Step Functions $25 per million transitions (2 per
partition step, 1 per partition end, 3 for the parent; counted from the steps taken); Lambda
$0.20 per million requests (duration not priced: moto's speed says nothing about Lambda's).

    .venv/bin/python benchmarks/bench_reconcile.py [--sizes 500,1500,4500]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from _common import TEMPLATE, local_aws, machine
from evreplay.core import clients
from evreplay.core.event_ids import payload_sha256
from evreplay.local import moto_patches
from evreplay.reconcile.reconciler import (
    PartitionReconciler,
    ReconcileRequest,
    add_counts,
    empty_counts,
    list_partitions,
)
from evreplay.store.index import EventIndex, IndexRow
from evreplay.store.raw import RawStore, raw_key

DAYS = ["2025-12-25", "2025-12-26", "2025-12-27", "2025-12-28"]
STREAMS = [("ios_app", "purchase"), ("web", "click")]
PRICES = {
    "s3_list": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "rru": 0.125e-6,
    "wru": 0.625e-6,
    "transition": 25e-6,
    "lambda": 0.2e-6,
}


class Calls:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.read_units = 0.0
        self.write_units = 0.0

    def before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = model.name
        self.counts[name] += 1
        if name == "BatchGetItem":
            self.read_units += sum(len(v["Keys"]) for v in params["RequestItems"].values())
        elif name == "GetItem":
            self.read_units += 1
        elif name == "TransactWriteItems":
            self.write_units += 2 * len(params["TransactItems"])
        elif name in ("UpdateItem", "PutItem"):
            self.write_units += 1

    def after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name == "Query":
            # ~150 bytes per projected lag-index row; a read unit covers 4 KB (eventually consistent: half).
            self.read_units += max(1.0, int(parsed.get("ScannedCount", parsed.get("Count", 0))) * 150 / 8192)


def seed(handles: dict[str, Any], size: int) -> None:
    raw = RawStore(handles["s3"], TEMPLATE.merged_environment()["RAW_BUCKET"])
    index = EventIndex(handles["dynamodb"], TEMPLATE.merged_environment()["INDEX_TABLE"])
    for n in range(size):
        source, event_type = STREAMS[n % 2]
        day = DAYS[n // 2 % 4]
        entity, event_time = f"user_{n % 50}", f"{day}T{n // 8 % 24:02d}:{n % 60:02d}:00.000000Z"
        ingest_time = f"2025-12-29T00:00:{n % 60:02d}.{n:06d}Z"
        arrival = f"20251229T0000{n % 60:02d}{n:06d}-{n:016x}"
        event_id, payload = f"e{n // 3}", {"n": n}  # every third arrival repeats an event_id
        key = raw_key(source, event_type, entity, event_time, event_id, arrival)
        document = {
            "event_id": event_id, "event_id_derived": False, "source": source, "event_type": event_type,
            "entity_id": entity, "event_time": event_time, "event_time_original": event_time,
            "payload": payload, "ingest_time": ingest_time, "arrival_id": arrival,
            "request_id": "", "idempotency_key": None,
        }  # fmt: skip
        raw.put_new(key, document)
        lag = 0
        index.record(
            IndexRow(
                entity,
                event_id,
                event_time,
                arrival,
                ingest_time,
                lag,
                "",
                raw.bucket,
                key,
                source,
                event_type,
                payload_sha256(payload),
            )
        )


def reconcile(repair: bool) -> tuple[dict[str, int], Calls, float, int, int]:
    calls = Calls()
    for client in (clients.s3(), clients.dynamodb()):
        client.meta.events.register("before-parameter-build.*.*", calls.before)
        client.meta.events.register("after-call.*.*", calls.after)
    env = TEMPLATE.merged_environment()
    reconciler = PartitionReconciler(
        clients.s3(),
        RawStore(clients.s3(), env["RAW_BUCKET"]),
        EventIndex(clients.dynamodb(), env["INDEX_TABLE"]),
        1000,
        20,
    )
    began = time.perf_counter()
    total, steps = empty_counts(), 0
    partitions = list_partitions(clients.s3(), env["RAW_BUCKET"], ReconcileRequest(DAYS[0], DAYS[-1], repair))
    for partition in partitions:
        state: dict[str, Any] = {"partition": partition.as_dict(), "repair": repair}
        while not state.get("done"):
            state = reconciler.run(state)
            steps += 1
        add_counts(total, state["counts"])
    elapsed = time.perf_counter() - began
    for client in (clients.s3(), clients.dynamodb()):
        client.meta.events.unregister("before-parameter-build.*.*", calls.before)
        client.meta.events.unregister("after-call.*.*", calls.after)
    transitions = 2 * steps + len(partitions) + 3
    return total, calls, elapsed, transitions, steps + 2


def dollars(calls: Calls, transitions: int, steps_lambda: int) -> float:
    c = calls.counts
    return (
        c["ListObjectsV2"] * PRICES["s3_list"]
        + (c["GetObject"] + c["HeadObject"]) * PRICES["s3_get"]
        + calls.read_units * PRICES["rru"]
        + calls.write_units * PRICES["wru"]
        + transitions * PRICES["transition"]
        + steps_lambda * PRICES["lambda"]
    )


def remove_rows(handles: dict[str, Any], every: int) -> None:
    table = TEMPLATE.merged_environment()["INDEX_TABLE"]
    items = [
        item for page in handles["dynamodb"].get_paginator("scan").paginate(TableName=table) for item in page["Items"]
    ]
    for n, item in enumerate(item for item in items if every == 1 or item["sk"]["S"].startswith("T#")):
        if n % every == 0:
            handles["dynamodb"].delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,1500,4500")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    moto_patches.apply(TEMPLATE)  # the same moto fidelity and speed patches as the local stack
    print(f"reconcile benchmark, {machine()}, moto in-process (patched as the local stack runs it)\n")
    print(
        f"{'objects':>8} {'run':<8} {'objects/s':>10} {'LIST':>6} {'GET':>6} {'BatchGet':>9} {'Txn':>6} "
        f"{'RRU':>8} {'WRU':>8} {'$/M objects':>12}  found"
    )
    for size in sizes:
        with local_aws() as handles:
            seed(handles, size)
            for run, prepare, repair in (
                ("check", None, False),
                ("repair", lambda: remove_rows(handles, 4), True),
                ("rebuild", lambda: remove_rows(handles, 1), True),
            ):
                if prepare:
                    prepare()
                found, calls, elapsed, transitions, invocations = reconcile(repair)
                cost = dollars(calls, transitions, invocations) / size * 1e6
                c = calls.counts
                print(
                    f"{size:>8} {run:<8} {size / elapsed:>10.0f} {c['ListObjectsV2']:>6} {c['GetObject']:>6} "
                    f"{c['BatchGetItem']:>9} "
                    f"{c['TransactWriteItems']:>6} {calls.read_units:>8.0f} {calls.write_units:>8.0f} {cost:>12.2f}  "
                    f"missing {found['missing_rows']}, indexed {found['indexed']}, fixed {found['statuses_fixed']}"
                )


if __name__ == "__main__":
    main()

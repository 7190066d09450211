"""Ingest throughput against the bare AWS calls it must make, measured side by side on moto; and
what a million ingested events cost, by path.

    python benchmarks/bench_ingest.py [--events 300] [--latency-scale 10]

The baseline does exactly the writes one ingest needs (a conditional S3 put, then a two-item
DynamoDB transaction) with the same clients; the handler path adds validation, id derivation,
the API Gateway event, Powertools and, with a key, the receipt reads and the idempotency record
(a put: the key's lock; the receipt keeps the answer).
Target (issue 6): handler / baseline time <= 1.5 for single events without an idempotency key.

Cost per million events, by path (POST /events without and with an Idempotency-Key, POST
/events/batch of 100 and of 500): every request the handler makes is counted at botocore on the
process-wide clients, and priced at list prices: API Gateway (REST API) per request, Lambda per
invocation and per GB-s, S3 PUT, DynamoDB write units by what was written: 1 WRU per KiB per item,
2 inside a transaction, plus 1 per KiB of each global secondary index the item lands in (an item
with the index's key attributes), consistent reads at 1 RRU per 4 KiB. Lambda duration is the
handler's time under the latency model (benchmarks/_latency.py), scaled back: moto's CPU is not a
cost on AWS, the waits are.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _common import TEMPLATE, local_aws, machine, rate
from _latency import LatencyModel, add_arguments, print_model
from bench_replay import PRICE_LAMBDA_GB_S, PRICE_LAMBDA_REQUEST, PRICE_RRU, PRICE_WRU, item_size
from evreplay.core import clients
from evreplay.local import moto_patches
from evreplay.local.gateway import proxy_event
from evreplay.local.runtime import FakeLambdaContext

_counter = itertools.count()

PRICE_API_REQUEST = 3.50 / 1_000_000  # API Gateway REST API, first 333 million a month
PRICE_S3_PUT = 0.005 / 1_000  # S3 Standard PUT
MEMORY_GB = int(TEMPLATE.resolve(TEMPLATE.properties("IngestFunction").get("MemorySize", 512))) / 1024


def _index_keys(table_logical_id: str) -> list[tuple[str, ...]]:
    """Each global secondary index's key attributes, from the template."""
    indexes = TEMPLATE.properties(table_logical_id).get("GlobalSecondaryIndexes", [])
    return [tuple(k["AttributeName"] for k in index["KeySchema"]) for index in indexes]


GSI_KEYS = {TEMPLATE.merged_environment()["INDEX_TABLE"]: _index_keys("EventIndexTable")}


@dataclass
class Writes:
    """What the handler asked of AWS, in billed units (botocore hooks on its clients)."""

    calls: Counter[str] = field(default_factory=Counter)
    wru: Counter[str] = field(default_factory=Counter)  # by line: transaction, plain writes, each GSI
    rru: float = 0.0
    s3_puts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _item(self, table: str, item: dict[str, Any], line: str, factor: int) -> None:
        size = item_size(item)
        self.wru[line] += factor * max(1, math.ceil(size / 1024))
        for keys in GSI_KEYS.get(table, []):
            if all(name in item for name in keys):
                self.wru[f"GSI {'/'.join(keys)}"] += max(1, math.ceil(size / 1024))

    def before_parameters(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        with self.lock:
            self.calls[name] += 1
            if name == "PutObject":
                self.s3_puts += 1
            elif name == "PutItem":
                self._item(params["TableName"], params["Item"], f"PutItem {_table(params['TableName'])}", 1)
            elif name in ("UpdateItem", "DeleteItem"):  # small items here: 1 KiB at most
                self.wru[f"{name} {_table(params['TableName'])}"] += 1
            elif name == "TransactWriteItems":
                for entry in params["TransactItems"]:
                    if "Put" in entry:
                        put = entry["Put"]
                        self._item(put["TableName"], put["Item"], f"transaction {_table(put['TableName'])}", 2)
                    elif "Update" in entry or "Delete" in entry:
                        (_, op), *_ = entry.items()
                        self.wru[f"transaction {_table(op['TableName'])}"] += 2
                    # a ConditionCheck costs a read, priced below as such
                    elif "ConditionCheck" in entry:
                        self.rru += 1

    def after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetItem" and "Item" in parsed:
            with self.lock:
                self.rru += max(1, math.ceil(item_size(parsed["Item"]) / 4096))
        elif model.name == "GetItem":
            with self.lock:
                self.rru += 1

    def install(self) -> None:
        for client in (clients.s3(), clients.dynamodb()):
            client.meta.events.register("before-parameter-build", self.before_parameters)
            client.meta.events.register("after-call", self.after_call)

    def uninstall(self) -> None:
        for client in (clients.s3(), clients.dynamodb()):
            client.meta.events.unregister("before-parameter-build", self.before_parameters)
            client.meta.events.unregister("after-call", self.after_call)


def _table(name: str) -> str:
    environment = TEMPLATE.merged_environment()
    return (
        "index"
        if name == environment["INDEX_TABLE"]
        else "idempotency"
        if name == environment["IDEMPOTENCY_TABLE"]
        else name
    )


def dollars(writes: Writes, events: int, invocations: int, lambda_seconds: float) -> dict[str, float]:
    """Per million events."""
    per = 1_000_000 / events
    lines = {
        "API Gateway requests": invocations * PRICE_API_REQUEST * per,
        "Lambda requests": invocations * PRICE_LAMBDA_REQUEST * per,
        "Lambda GB-s (modelled duration)": lambda_seconds * MEMORY_GB * PRICE_LAMBDA_GB_S * per,
        "S3 PUT": writes.s3_puts * PRICE_S3_PUT * per,
        "DynamoDB reads": writes.rru * PRICE_RRU * per,
    }
    for line, units in sorted(writes.wru.items()):
        lines[f"DynamoDB writes: {line}"] = units * PRICE_WRU * per
    return lines


def service_lines(lines: dict[str, float]) -> dict[str, float]:
    """The lines summed by service: "DynamoDB writes: ..." together, Lambda's two together."""
    grouped: dict[str, float] = {}
    for line, amount in lines.items():
        if line.startswith("DynamoDB writes"):
            service = "DynamoDB writes"
        else:
            service = line.split(" GB-s")[0].split(" requests")[0]
        grouped[service] = grouped.get(service, 0.0) + amount
    return grouped


def _event(entity: str = "bench") -> dict:
    n = next(_counter)
    return {
        "source": "bench",
        "event_type": "tick",
        "entity_id": f"{entity}-{n % 50}",
        "event_time": f"2025-06-01T00:{(n // 60) % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
        "payload": {"n": n, "text": "x" * 200},
    }


@dataclass
class PathCost:
    label: str
    events: int
    invocations: int
    writes: Writes
    moto_seconds: float  # wall, moto only
    model_seconds: float  # wall under the latency model, scaled back (the Lambda's billed duration)
    pessimistic_seconds: float

    def dollars(self) -> dict[str, float]:
        return dollars(self.writes, self.events, self.invocations, self.model_seconds)


def cost_paths(handler: Callable[[dict[str, Any], Any], dict[str, Any]], context: Any, scale: float) -> list[PathCost]:
    """Each path's billed units (counted once, moto only) and its duration under the latency model."""

    def single(with_key: bool) -> Callable[[int], int]:
        def run(count: int) -> int:
            for _ in range(count):
                headers = {"Content-Type": "application/json"}
                if with_key:
                    headers["Idempotency-Key"] = uuid.uuid4().hex
                response = handler(proxy_event("POST", "/events", "/events", json.dumps(_event()), headers), context)
                assert response["statusCode"] == 201, response
            return count

        return run

    def batch(size: int) -> Callable[[int], int]:
        def run(count: int) -> int:
            for _ in range(count // size):
                body = json.dumps({"events": [_event() for _ in range(size)]})
                response = handler(proxy_event("POST", "/events/batch", "/events/batch", body), context)
                assert response["statusCode"] == 200 and '"error"' not in response["body"], response["body"][:300]
            return count // size

        return run

    paths = [
        ("POST /events, no key", 200, single(False)),
        ("POST /events, Idempotency-Key", 200, single(True)),
        ("POST /events/batch of 100", 1000, batch(100)),
        ("POST /events/batch of 500", 1000, batch(500)),
    ]
    results = []
    for label, events, run in paths:
        writes = Writes()
        writes.install()
        started = time.perf_counter()
        invocations = run(events)
        moto_seconds = time.perf_counter() - started
        writes.uninstall()
        model = LatencyModel(scale)
        with model.installed():
            started, cpu = time.perf_counter(), time.process_time()
            run(events)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        results.append(
            PathCost(
                label, events, invocations, writes, moto_seconds, model.scaled_back(wall), model.pessimistic(wall, cpu)
            )
        )
        print(
            f"  cost run: {label}: {events} events, {invocations} invocations, calls {dict(writes.calls)}", flush=True
        )
    return results


def _handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    from evreplay.handlers import ingest

    return ingest.handler


def print_costs(costs: list[PathCost], scale: float) -> None:
    print(f"\ncost per million events ingested, list prices (us-east-1); load {os.getloadavg()[0]:.1f}")
    lines = sorted({line for cost in costs for line in cost.dollars()})
    print(f"  {'line':<44}" + "".join(f"{cost.label[:26]:>28}" for cost in costs))
    for line in lines:
        print(f"  {line:<44}" + "".join(f"{cost.dollars().get(line, 0.0):>28.3f}" for cost in costs))
    print(f"  {'total':<44}" + "".join(f"{sum(cost.dollars().values()):>28.3f}" for cost in costs))
    print(
        f"  {'biggest line':<44}"
        + "".join(f"{max(cost.dollars().items(), key=lambda kv: kv[1])[0][:26]:>28}" for cost in costs)
    )
    # The lines: one per service, DynamoDB writes together (transaction, registry, GSIs, idempotency).
    services = [service_lines(cost.dollars()) for cost in costs]
    for service in sorted({name for lines in services for name in lines}):
        print(f"  {'  ' + service:<44}" + "".join(f"{lines.get(service, 0.0):>28.3f}" for lines in services))
    print(
        f"  {'biggest service line':<44}"
        + "".join(f"{max(lines.items(), key=lambda kv: kv[1])[0][:26]:>28}" for lines in services)
    )
    print(
        f"  {'Lambda ms per invocation (model x' + format(scale, 'g') + ')':<44}"
        + "".join(f"{cost.model_seconds / cost.invocations * 1000:>28.1f}" for cost in costs)
    )
    print(
        f"  {'events/s, one caller, under the model':<44}"
        + "".join(
            f"{cost.events / cost.model_seconds:>20.0f} ({cost.events / cost.pessimistic_seconds:.0f})"
            for cost in costs
        )
    )
    print(
        f"  {'events/s, one caller, moto only':<44}"
        + "".join(f"{cost.events / cost.moto_seconds:>28.0f}" for cost in costs)
    )
    print("  (under the model: scaled back; in brackets the pessimistic figure, see benchmarks/_latency.py)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--cost-only", action="store_true", help="skip the throughput comparison")
    add_arguments(parser)
    args = parser.parse_args()
    n = args.events

    moto_patches.apply(TEMPLATE)  # the same moto fidelity and speed patches as the local stack
    with local_aws() as aws:
        s3, ddb = aws["s3"], aws["dynamodb"]
        bucket, table = TEMPLATE.merged_environment()["RAW_BUCKET"], TEMPLATE.merged_environment()["INDEX_TABLE"]
        context = FakeLambdaContext("IngestFunction")

        def baseline() -> None:
            for _ in range(n):
                body = json.dumps(_event()).encode()
                key = f"raw/bench/{uuid.uuid4().hex}.json"
                s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
                pk = {"S": f"E#bench-{uuid.uuid4().hex}"}
                ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": table,
                                "Item": {"pk": pk, "sk": {"S": "I#x"}, "n": {"N": "1"}},
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Put": {
                                "TableName": table,
                                "Item": {"pk": pk, "sk": {"S": f"T#{key}"}, "k": {"S": key}},
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )

        def single(with_key: bool) -> None:
            for _ in range(n):
                headers = {"Content-Type": "application/json"}
                if with_key:
                    headers["Idempotency-Key"] = uuid.uuid4().hex
                request = proxy_event("POST", "/events", "/events", json.dumps(_event()), headers)
                response = _handler()(request, context)
                assert response["statusCode"] == 201, response

        def batch() -> None:
            for start in range(0, n, 100):
                events = [_event() for _ in range(min(100, n - start))]
                request = proxy_event("POST", "/events/batch", "/events/batch", json.dumps({"events": events}))
                response = _handler()(request, context)
                assert response["statusCode"] == 200, response["body"][:500]

        costs = cost_paths(lambda event, ctx: _handler()(event, ctx), context, args.latency_scale)
        if args.cost_only:
            print(f"ingest cost benchmark, in-process moto; {machine()}")
            print_model()
            print_costs(costs, args.latency_scale)
            return
        base, _ = rate(n, baseline)
        plain, _ = rate(n, lambda: single(False))
        keyed, _ = rate(n, lambda: single(True))
        batched, _ = rate(n, batch)

    print(f"ingest benchmark, {n} events per run, median of 3, in-process moto; {machine()}")
    print_model()
    print_costs(costs, args.latency_scale)
    print(f"{'path':<44}{'events/s':>10}{'time ratio vs baseline':>26}")
    rows = [
        ("baseline: S3 put + 2-item transaction", base),
        ("POST /events (no idempotency key)", plain),
        ("POST /events (Idempotency-Key)", keyed),
        ("POST /events/batch (100 per request)", batched),
    ]
    for label, value in rows:
        print(f"{label:<44}{value:>10.0f}{base / value:>26.2f}")
    verdict = "meets" if base / plain <= 1.5 else "MISSES"
    print(f"single events without a key: {base / plain:.2f}x the baseline's time ({verdict} the 1.5x target)")
    print(f"extra cost of an idempotency key: {plain / keyed:.2f}x the time of a keyless ingest")


if __name__ == "__main__":
    main()

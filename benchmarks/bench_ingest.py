"""Ingest throughput against the bare AWS calls it must make, measured side by side on moto.

    python benchmarks/bench_ingest.py [--events 300]

The baseline does exactly the writes one ingest needs (a conditional S3 put, then a two-item
DynamoDB transaction) with the same clients; the handler path adds validation, id derivation,
the API Gateway event, Powertools and, with a key, the idempotency record (a put and an update).
Target (issue 6): handler / baseline time <= 1.5 for single events without an idempotency key.
"""

from __future__ import annotations

import argparse
import itertools
import json
import uuid

from _common import TEMPLATE, local_aws, machine, rate
from evreplay.local import moto_patches
from evreplay.local.gateway import proxy_event
from evreplay.local.runtime import FakeLambdaContext

_counter = itertools.count()


def _event(entity: str = "bench") -> dict:
    n = next(_counter)
    return {
        "source": "bench",
        "event_type": "tick",
        "entity_id": f"{entity}-{n % 50}",
        "event_time": f"2025-06-01T00:{(n // 60) % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
        "payload": {"n": n, "text": "x" * 200},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    n = args.events

    moto_patches.apply(TEMPLATE)  # the same moto fidelity and speed patches as the local stack
    with local_aws() as aws:
        from evreplay.handlers import ingest

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
                response = ingest.handler(request, context)
                assert response["statusCode"] == 201, response

        def batch() -> None:
            for start in range(0, n, 100):
                events = [_event() for _ in range(min(100, n - start))]
                request = proxy_event("POST", "/events/batch", "/events/batch", json.dumps({"events": events}))
                response = ingest.handler(request, context)
                assert response["statusCode"] == 200, response["body"][:500]

        base, _ = rate(n, baseline)
        plain, _ = rate(n, lambda: single(False))
        keyed, _ = rate(n, lambda: single(True))
        batched, _ = rate(n, batch)

    print(f"ingest benchmark, {n} events per run, median of 3, in-process moto; {machine()}")
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

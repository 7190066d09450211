"""Replay destinations and pacing (docs/design.md §4.12–4.13), on moto with the real state machine.

    python benchmarks/bench_destinations.py                    # rates 5, 20 and 50 a second; 1 000 events per type
    python benchmarks/bench_destinations.py --rates 10 100 --events 2000

1. Pacing: one entity of `rate x --seconds` events replayed with max_events_per_second = rate to a standard
   queue; the achieved rate from the queue's own receive times (SentTimestamp: messages over the span from
   the first to the last), the busiest 10-second window against the 1.1x bound, and what the result reports.
2. Cost per destination type: `--events` events replayed to the built-in queue (the baseline), a standard
   queue, a FIFO queue and an EventBridge bus, as pointers and as inline events. Requests counted at botocore
   (every attempt) and billed as AWS does: SQS per 64 KiB chunk of a request ($0.40 per million standard,
   $0.50 FIFO), EventBridge per 64 KiB chunk of each entry ($1.00 per million), S3 GETs of the event format
   ($0.40 per million), state transitions from the execution history ($25 per million). The part of a replay's
   cost the destination changes; DynamoDB and Lambda are the same for every type (bench_replay.py has them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import Counter
from typing import Any

from _common import local_aws, machine
from bench_replay import PRICE_TRANSITION, history
from evreplay.core import clients
from evreplay.core.settings import reset_settings
from evreplay.local import moto_patches
from evreplay.local.gateway import LocalGateway
from evreplay.local.template import ACCOUNT_ID, Template
from evreplay.local.workflow import deploy_workflow
from evreplay.replay import tasks as replay_tasks

PRICE = {"sqs": 0.40 / 1e6, "sqs-fifo": 0.50 / 1e6, "eventbridge": 1.00 / 1e6, "s3_get": 0.40 / 1e6}
WINDOW = {"start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}
QUEUES = {"std": "bench-std", "fifo": "bench-fifo.fifo"}


class Billed:
    """Destination requests and their billed chunks, S3 GETs, at botocore before each request leaves."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.chunks: Counter[str] = Counter()

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}:{operation}"] += 1
        if operation == "SendMessageBatch":
            size = sum(len(e["MessageBody"].encode()) for e in json.loads(request.body)["Entries"])
            self.chunks["sqs"] += max(1, math.ceil(size / 65536))
        elif operation == "PutEvents":
            self.chunks["eventbridge"] += sum(
                max(1, math.ceil(len(e["Detail"].encode()) / 65536)) for e in json.loads(request.body)["Entries"]
            )


def deploy(aws: dict[str, Any]) -> tuple[Template, str, LocalGateway]:
    sqs, events = aws["sqs"], clients.events()
    sqs.create_queue(QueueName=QUEUES["std"])
    sqs.create_queue(QueueName=QUEUES["fifo"], Attributes={"FifoQueue": "true"})
    events.create_event_bus(Name="bench-bus")
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:"
    bus = f"arn:aws:events:us-east-1:{ACCOUNT_ID}:event-bus/bench-bus"
    declared = f"std={arn}{QUEUES['std']},fifo={arn}{QUEUES['fifo']},bus={bus}"
    template = Template(parameter_overrides={"ReplayDestinations": declared})
    os.environ.update(template.merged_environment())
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    reset_settings()
    replay_tasks.reset()
    moto_patches.apply(template)
    session_clients = {name: clients.client(name) for name in ("iam", "lambda", "stepfunctions")}
    arns = deploy_workflow(template, session_clients)
    return template, arns["ReplayStateMachine"], LocalGateway(template)


def ingest(gateway: LocalGateway, entity: str, count: int, payload_bytes: int = 200) -> None:
    for start in range(0, count, 500):
        batch = [
            {"source": "bench", "event_type": "purchase", "entity_id": entity, "event_id": f"e{n}",
             "event_time": f"2025-12-28T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
             "payload": {"n": n, "pad": "x" * payload_bytes}}
            for n in range(start, min(count, start + 500))
        ]  # fmt: skip
        assert gateway.request("POST", "/events/batch", {"events": batch}).status == 200


def run(sfn: Any, machine_arn: str, name: str, request: dict[str, Any]) -> tuple[dict[str, Any], int]:
    arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(request))["executionArn"]
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        time.sleep(0.5)
    assert described["status"] == "SUCCEEDED", described
    transitions = sum(1 for e in history(sfn, arn) if e["type"].endswith("StateEntered"))
    return json.loads(described["output"]), transitions


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages"):
        out += batch
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return out


def busiest(times: list[float], window: float = 10.0) -> int:
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--seconds", type=int, default=15, help="seconds of sending per rate")
    parser.add_argument("--events", type=int, default=1000, help="events per destination type")
    args = parser.parse_args()
    print(f"bench_destinations on {machine()}")
    with local_aws() as aws:
        _, machine_arn, gateway = deploy(aws)
        sqs, sfn = aws["sqs"], clients.client("stepfunctions")
        std_url = sqs.get_queue_url(QueueName=QUEUES["std"])["QueueUrl"]

        print("\n1. pacing (a standard queue; achieved from the receive times)")
        print(
            f"{'requested/s':>12} {'events':>7} {'achieved/s':>11} {'ratio':>6} {'busiest 10 s':>13} {'bound':>6} "
            f"{'sustained/s':>12} {'result says':>12}"
        )
        for rate in args.rates:
            entity = f"paced-{rate}"
            ingest(gateway, entity, rate * args.seconds)
            output, _ = run(sfn, machine_arn, entity, {"entity_id": entity, **WINDOW, "destination": "std",
                                                       "max_events_per_second": rate, "limit": 100000})  # fmt: skip
            times = sorted(int(m["Attributes"]["SentTimestamp"]) / 1000 for m in drain(sqs, std_url))
            achieved = len(times) / (times[-1] - times[0])
            # sustained: the busiest 10-second window over 10 s (what the bound is about)
            print(
                f"{rate:>12} {len(times):>7} {achieved:>11.2f} {achieved / rate:>6.2f} {busiest(times):>13} "
                f"{int(11 * rate):>6} {busiest(times) / 10:>12.1f} {output['achieved_events_per_second']:>12}"
            )

        print(f"\n2. cost per destination type ({args.events} events, 200-byte payloads; $ per million events)")
        ingest(gateway, "costed", args.events)
        billed = Billed()
        for service in ("sqs", "events", "s3"):  # event names use the service id: sqs, eventbridge, s3
            clients.client(service).meta.events.register_first("before-send", billed)
        rows = []
        for label, destination, kind in (
            ("built-in queue (baseline)", "default", "sqs"),
            ("standard queue", "std", "sqs"),
            ("FIFO queue", "fifo", "sqs-fifo"),
            ("EventBridge bus", "bus", "eventbridge"),
        ):
            for fmt in ("pointer", "event"):
                billed.calls.clear()
                billed.chunks.clear()
                _, transitions = run(sfn, machine_arn, f"cost-{destination}-{fmt}",
                                     {"entity_id": "costed", **WINDOW, "destination": destination, "format": fmt,
                                      "limit": 100000})  # fmt: skip
                sends = billed.calls["sqs:SendMessageBatch"] + billed.calls["eventbridge:PutEvents"]
                chunks = billed.chunks["sqs"] + billed.chunks["eventbridge"]
                gets = billed.calls["s3:GetObject"]
                dollars = chunks * PRICE[kind] + gets * PRICE["s3_get"] + transitions * PRICE_TRANSITION
                rows.append((label, fmt, sends, chunks, gets, transitions, dollars * 1e6 / args.events))
        base = rows[0][-1]
        print(
            f"{'destination':<26} {'format':<8} {'send calls':>10} {'billed':>7} {'S3 GETs':>8} {'transitions':>11} "
            f"{'$/M':>7} {'x base':>7}"
        )
        for label, fmt, sends, chunks, gets, transitions, per_million in rows:
            print(
                f"{label:<26} {fmt:<8} {sends:>10} {chunks:>7} {gets:>8} {transitions:>11} "
                f"{per_million:>7.2f} {per_million / base:>7.2f}"
            )


if __name__ == "__main__":
    main()

"""A latency model for in-process moto: every AWS request first waits what it would take on AWS.

On moto an AWS call costs CPU and no latency; on AWS it costs latency and little CPU. With the model
installed, each request that reaches moto (from any client in the process: the handlers', the
benchmark's, moto's Step Functions interpreter's own) first sleeps its operation's typical in-Region
latency from `MODEL`, times `scale`. The sleep releases the GIL, so concurrent requests overlap their
waits as they would on AWS.

`--latency-scale K` dilates the modelled waits K times so moto's own CPU (which AWS does not spend on
our behalf) becomes small beside them; figures are reported scaled back (wall / K). That also divides
our own code's CPU by K, so next to each scaled figure the benchmarks print a pessimistic one that adds
back, unscaled and as if never overlapped, every CPU second this process spent outside moto's request
handling (our code, botocore's parsing, and moto's Step Functions interpreter, which on AWS is the
service's): the truth on AWS lies between the two.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core.botocore_stubber import BotocoreStubber


@dataclass(frozen=True)
class Latency:
    ms: float
    source: str


_DDB_KC = "AWS knowledge center 'DynamoDB high latency': GetItem/PutItem average single-digit ms"
# One table: "<botocore service id>.<operation>" -> typical in-Region latency, Lambda caller to service.
MODEL: dict[str, Latency] = {
    "dynamodb.Query": Latency(
        15, f"{_DDB_KC}; Query depends on result size: 15 ms for a 1 000-row page is an assumption"
    ),
    "dynamodb.BatchGetItem": Latency(8, f"{_DDB_KC}; 100 keys read in parallel inside DynamoDB: assumption 8 ms"),
    "dynamodb.GetItem": Latency(5, _DDB_KC),
    "dynamodb.PutItem": Latency(6, _DDB_KC),
    "dynamodb.UpdateItem": Latency(6, _DDB_KC),
    "dynamodb.DeleteItem": Latency(6, _DDB_KC),
    "dynamodb.BatchWriteItem": Latency(10, f"{_DDB_KC}; 25 items: assumption 10 ms"),
    "dynamodb.TransactWriteItems": Latency(12, f"{_DDB_KC}; two-phase, 2-4 items: assumption 12 ms"),
    "sqs.SendMessageBatch": Latency(10, "SQS standard queue publish latency quoted as < 10 ms; assumption 10 ms"),
    "sqs.SendMessage": Latency(8, "SQS standard queue publish latency quoted as < 10 ms; assumption 8 ms"),
    "s3.PutObject": Latency(25, "assumption: small object PUT, 25 ms (S3 first-byte latencies are tens of ms)"),
    "s3.GetObject": Latency(15, "assumption: small object GET, 15 ms"),
    "lambda.Invoke": Latency(20, "assumption: synchronous invoke of a warm function, 20 ms of overhead"),
    "sfn.StartExecution": Latency(25, "assumption: 25 ms"),
}
DEFAULT = Latency(10, "assumption: any other request, 10 ms")


def latency(service: str, operation: str) -> Latency:
    return MODEL.get(f"{service}.{operation}", DEFAULT)


@dataclass
class LatencyModel:
    """Installed, it delays every request moto answers; it counts what it waited and moto's CPU."""

    scale: float
    waited: Counter[str] = field(default_factory=Counter)  # modelled seconds (unscaled) per operation
    moto_cpu: float = 0.0  # CPU seconds spent inside moto answering requests (all threads)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.waited, self.moto_cpu = Counter(), 0.0

    @contextmanager
    def installed(self) -> Iterator[LatencyModel]:
        original = BotocoreStubber.__call__
        model = self

        def delayed(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
            if not stubber.enabled:
                return original(stubber, event_name, request, **kwargs)
            _, service, operation = event_name.split(".", 2)
            seconds = latency(service, operation).ms / 1000
            if model.scale:
                time.sleep(seconds * model.scale)
            cpu = time.thread_time()
            try:
                return original(stubber, event_name, request, **kwargs)
            finally:
                # A Lambda invoke's answer runs the function in-process: our code, not moto's (its own
                # requests are counted as they happen).
                spent = 0.0 if service == "lambda" else time.thread_time() - cpu
                with model._lock:
                    model.waited[f"{service}.{operation}"] += seconds
                    model.moto_cpu += spent

        BotocoreStubber.__call__ = delayed  # type: ignore[method-assign]
        try:
            yield self
        finally:
            BotocoreStubber.__call__ = original  # type: ignore[method-assign]

    def scaled_back(self, wall: float) -> float:
        return wall / self.scale if self.scale else wall

    def pessimistic(self, wall: float, cpu: float) -> float:
        """Scaled back, plus every CPU second outside moto's answers added back as if serial."""
        own = max(0.0, cpu - self.moto_cpu)
        return self.scaled_back(wall) + own * (1 - 1 / self.scale if self.scale else 0.0)


def add_arguments(parser: argparse.ArgumentParser, default_scale: float = 10.0) -> None:
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=default_scale,
        help=f"dilate the modelled AWS latencies this many times, figures scaled back (default {default_scale:g}; "
        "0 runs moto only)",
    )


def print_model() -> None:
    print("latency model (ms per request, in-Region; the source or the assumption):")
    for name, entry in MODEL.items():
        print(f"  {name:<30}{entry.ms:>5.0f}  {entry.source}")
    print(f"  {'(any other)':<30}{DEFAULT.ms:>5.0f}  {DEFAULT.source}")

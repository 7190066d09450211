"""Fault injection at the botocore layer, shared by the fault tests.

Every AWS call of every client in this process (the handlers' module-level clients, the page
function's clients, moto's own Step Functions interpreter) goes through moto's botocore stubber as
a `before-send` handler. The `faults` fixture wraps that stubber: a request that matches an injected
`Fault` gets the service's real error answer (HTTP status, error code and body in the service's
protocol) or a transport error instead of reaching moto, so botocore's retry logic, our adapters and
the state machine's Retry see exactly what AWS would send them.

Two shapes of failure:
- refused: the service never applied the request (throttling, 500/503 answers, a connect timeout);
- lost: the service applied it and the answer never came back (a read timeout after moto ran it).
  Then botocore retries a request the service already applied; for TransactWriteItems, AWS makes
  that retry harmless through the ClientRequestToken botocore sends (same token on every attempt of
  one call, honoured for 10 minutes), which moto does not implement: the fixture does, so the tests
  see what AWS does.

`fast_retries` shortens the waits (botocore's backoff and the interpreter's Retry intervals really
sleep) without changing how many attempts are made.
"""

from __future__ import annotations

import json
import random
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

import botocore.retries.quota
import botocore.retries.standard
import moto.stepfunctions.parser.asl.component.common.retry.retrier_decl as retrier_decl
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from evreplay.core import clients
from evreplay.processor import store as aggregate_store
from evreplay.replay import senders as replay_senders
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

# evreplay.core.clients: standard retry mode, max_attempts=8 retries, so 9 attempts per call.
CLIENT_ATTEMPTS = 9
ALWAYS = 10**9


@dataclass(frozen=True)
class Kind:
    """One kind of failure. `codes` maps a botocore service id to (HTTP status, error code)."""

    name: str
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    transport: type[Exception] | None = None
    lost: bool = False  # the service applied the request before the failure
    cancellation: str | None = None  # TransactWriteItems cancelled with this reason on its first item

    def __str__(self) -> str:
        return self.name


THROTTLED = Kind(
    "throttled",
    {
        "dynamodb": (400, "ProvisionedThroughputExceededException"),
        "s3": (503, "SlowDown"),
        "sqs": (400, "RequestThrottled"),
        "sfn": (400, "ThrottlingException"),
        "lambda": (429, "TooManyRequestsException"),
    },
)
THROTTLING_EXCEPTION = Kind("ThrottlingException", {"dynamodb": (400, "ThrottlingException")})
INTERNAL = Kind(
    "internal",
    {
        "dynamodb": (500, "InternalServerError"),
        "s3": (500, "InternalError"),
        "sqs": (500, "InternalError"),
        "sfn": (500, "InternalFailure"),
        "lambda": (500, "ServiceException"),
    },
)
UNAVAILABLE = Kind(
    "unavailable", {service: (503, "ServiceUnavailable") for service in ("dynamodb", "s3", "sqs", "sfn", "lambda")}
)
CONNECT_TIMEOUT = Kind("connect-timeout", transport=ConnectTimeoutError)
READ_TIMEOUT = Kind("read-timeout", transport=ReadTimeoutError, lost=True)
# Applied, then answered with an error: "the request may or may not have succeeded" (DynamoDB's
# InternalServerError), or a Lambda function that ran and whose invocation is reported failed.
APPLIED_THEN_INTERNAL = Kind("applied-then-internal", INTERNAL.codes, lost=True)
TRANSACTION_CONFLICT = Kind("TransactionConflict", cancellation="TransactionConflict")
TRANSACTION_THROTTLED = Kind("cancelled-ThrottlingError", cancellation="ThrottlingError")

# What any call may meet; each component's matrix adds the kinds specific to an operation.
COMMON_KINDS = (THROTTLED, INTERNAL, UNAVAILABLE, CONNECT_TIMEOUT, READ_TIMEOUT)


def kinds_for(service: str, operation: str) -> list[Kind]:
    """The faults worth injecting into one operation: the common ones, DynamoDB's other throttling
    code, and the cancellations only a transaction can report."""
    kinds = list(COMMON_KINDS)
    if service == "dynamodb":
        kinds.append(THROTTLING_EXCEPTION)
    if operation == "TransactWriteItems":
        kinds += [TRANSACTION_CONFLICT, TRANSACTION_THROTTLED]
    return kinds


@dataclass
class RandomFaults:
    """Every request fails with `probability`: half refused, half applied with the answer lost."""

    probability: float
    seed: int
    refused: tuple[Kind, ...] = (THROTTLED, INTERNAL, UNAVAILABLE, CONNECT_TIMEOUT)
    lost: tuple[Kind, ...] = (READ_TIMEOUT, APPLIED_THEN_INTERNAL)
    services: tuple[str, ...] = ("dynamodb", "s3", "sqs", "sfn")  # the storage calls
    requests: int = 0
    fired: dict[str, int] = field(default_factory=dict)  # kind name -> times

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self, service: str) -> Kind | None:
        if service not in self.services:
            return None
        self.requests += 1
        if self._random.random() >= self.probability:
            return None
        kinds = self.lost if self._random.random() < 0.5 else self.refused
        kind = self._random.choice(kinds)
        self.fired[kind.name] = self.fired.get(kind.name, 0) + 1
        return kind


@dataclass
class Fault:
    """Fail matching requests number `skip + 1` .. `skip + times` (counting attempts, retries included)."""

    service: str  # botocore service id as in event names: s3, dynamodb, sqs, sfn, lambda
    operation: str
    kind: Kind
    times: int = 1
    skip: int = 0
    when: Callable[[AWSPreparedRequest], bool] | None = None
    meanwhile: Callable[[], None] | None = None  # runs while a lost answer is on its way (lost kinds)
    seen: int = 0
    fired: int = 0

    def matches(self, service: str, operation: str, request: AWSPreparedRequest) -> bool:
        if (service, operation) != (self.service, self.operation):
            return False
        return self.when is None or self.when(request)

    def take(self) -> bool:
        self.seen += 1
        if self.skip < self.seen <= self.skip + self.times:
            self.fired += 1
            return True
        return False


def request_json(request: AWSPreparedRequest) -> dict[str, Any]:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        parsed = json.loads(body or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def body_has(text: str) -> Callable[[AWSPreparedRequest], bool]:
    """A `when` for requests whose body contains `text` (a table name, an entity id, ...)."""

    def check(request: AWSPreparedRequest) -> bool:
        body = request.body or b""
        return text.encode() in (body if isinstance(body, bytes) else body.encode())

    return check


def url_has(text: str) -> Callable[[AWSPreparedRequest], bool]:
    return lambda request: text in request.url


def _error_answer(service: str, kind: Kind, request: AWSPreparedRequest) -> AWSResponse:
    headers = {"x-amzn-RequestId": "injected-fault"}
    if kind.cancellation is not None:
        items = request_json(request).get("TransactItems") or [{}]
        reasons = [{"Code": kind.cancellation, "Message": "injected"}] + [{"Code": "None"}] * (len(items) - 1)
        message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{', '.join(r['Code'] for r in reasons)}]"
        status, body = 400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                             "Message": message, "CancellationReasons": reasons}  # fmt: skip
        return _json_answer(request, status, headers, body)
    status, code = kind.codes[service]
    if service == "s3":
        xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>injected {kind}</Message><RequestId>injected</RequestId></Error>"
        headers["Content-Type"] = "application/xml"
        return AWSResponse(request.url, status, headers, MockRawResponse(xml.encode()))  # type: ignore[arg-type]
    if service == "lambda":
        headers["x-amzn-ErrorType"] = code
        return _json_answer(request, status, headers, {"message": f"injected {kind}", "Type": "Service"})
    prefix = {"dynamodb": "com.amazonaws.dynamodb.v20120810#", "sqs": "com.amazonaws.sqs#"}.get(service, "")
    return _json_answer(request, status, headers, {"__type": prefix + code, "message": f"injected {kind}"})


def _json_answer(request: AWSPreparedRequest, status: int, headers: dict[str, str], body: Any) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.0", **headers}
    return AWSResponse(request.url, status, headers, MockRawResponse(json.dumps(body).encode()))  # type: ignore[arg-type]


class Faults:
    """The injected faults, consulted by the wrapped moto stubber for every request."""

    def __init__(self, original: Callable[..., AWSResponse | None]) -> None:
        self._original = original
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        self.random: RandomFaults | None = None
        self.fired: list[tuple[str, str, str]] = []  # (service, operation, kind) of every injected failure
        self._tokens: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def inject(
        self,
        service: str,
        operation: str,
        kind: Kind,
        times: int = 1,
        skip: int = 0,
        when: Callable[[AWSPreparedRequest], bool] | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> Fault:
        fault = Fault(service, operation, kind, times, skip, when, meanwhile)
        with self._lock:
            self.faults.append(fault)
        return fault

    def inject_random(self, probability: float, seed: int) -> RandomFaults:
        """Besides the injected faults, fail every storage request at random (RandomFaults)."""
        with self._lock:
            self.random = RandomFaults(probability, seed)
        return self.random

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.random = None

    def _due(self, service: str, operation: str, request: AWSPreparedRequest) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(service, operation, request) and fault.take():
                    self.fired.append((service, operation, fault.kind.name))
                    return fault
            kind = self.random.draw(service) if self.random is not None else None
            if kind is not None:
                self.fired.append((service, operation, kind.name))
                return Fault(service, operation, kind, fired=1)
        return None

    def __call__(self, stubber: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        if not stubber.enabled:
            return None
        _, service, operation = event_name.split(".", 2)
        fault = self._due(service, operation, request)
        if fault is not None and not fault.kind.lost:
            if fault.kind.transport is not None:
                raise fault.kind.transport(endpoint_url=request.url)
            return _error_answer(service, fault.kind, request)
        token = request_json(request).get("ClientRequestToken") if operation == "TransactWriteItems" else None
        if token and token in self._tokens:  # AWS: the same token within 10 minutes applies nothing again
            status, headers, body = self._tokens[token]
            response = AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]
        else:
            response = self._original(stubber, event_name, request, **kwargs)
            if token and response is not None and response.status_code == 200:
                self._tokens[token] = (response.status_code, dict(response.headers), response.content)
        if fault is not None:  # applied, and the answer is lost on the way back
            if fault.meanwhile is not None:
                fault.meanwhile()
            if fault.kind.transport is None:
                return _error_answer(service, fault.kind, request)
            raise fault.kind.transport(endpoint_url=request.url)
        return response


def _full_retry_quotas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client's retry quota full again when this test first draws on it.

    botocore's standard mode spends a per-client quota on retries (5 units, 10 for a timeout, out of
    500) and stops retrying once it is spent, as it should in a long-lived Lambda container. The
    handlers' clients live as long as the test process, so without this, faults injected by earlier
    tests would decide whether this test's request is retried."""
    refilled: weakref.WeakSet[botocore.retries.quota.RetryQuota] = weakref.WeakSet()
    acquire = botocore.retries.quota.RetryQuota.acquire

    def refill_then_acquire(self: botocore.retries.quota.RetryQuota, capacity_amount: int) -> bool:
        if self not in refilled:
            refilled.add(self)
            self._available_capacity = self._max_capacity
        return bool(acquire(self, capacity_amount))

    monkeypatch.setattr(botocore.retries.quota.RetryQuota, "acquire", refill_then_acquire)


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    """Inject faults into every AWS call made while the test runs (undone afterwards)."""
    injector = Faults(BotocoreStubber.__call__)

    def stub(self: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        return injector(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", stub)
    _full_retry_quotas(monkeypatch)
    yield injector
    injector.clear()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry waits shortened (the waits are real in moto and botocore); the retry logic is untouched."""
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.001)
    monkeypatch.setattr(replay_senders, "FAILED_ENTRY_BACKOFF_SECONDS", 0.001)
    # the processor's jittered wait between attempts of a cancelled aggregates transaction
    monkeypatch.setattr(aggregate_store, "random", SimpleNamespace(uniform=lambda low, high: 0.0))


E = TypeVar("E")  # how a call's failing entries are named: Ids (SQS), positions (EventBridge)


class _FailSomeEntries(Generic[E]):
    """What FailEntries and FailPutEvents share: which entries to fail (`should_fail(seq, attempt)`),
    each seq's attempts, and what the current call chose to fail, kept per thread (a page sends its
    batches on several threads, and a call's hooks all run in its own thread)."""

    def __init__(self, should_fail: Callable[[int, int], bool]) -> None:
        self.should_fail = should_fail  # (seq, attempt for that seq) -> bool
        self.attempts: dict[int, int] = {}
        self._call = threading.local()
        self._lock = threading.Lock()
        self.reported = 0

    @property
    def failing(self) -> list[E]:
        """The current call's entries it fails."""
        failing: list[E] = getattr(self._call, "failing", [])
        return failing

    @failing.setter
    def failing(self, entries: list[E]) -> None:
        self._call.failing = entries

    def _fails(self, seq: int) -> bool:
        """Counts an attempt of `seq`; whether this one fails."""
        with self._lock:
            self.attempts[seq] = attempt = self.attempts.get(seq, 0) + 1
        return self.should_fail(seq, attempt)

    def _count(self, entries: int) -> None:
        with self._lock:
            self.reported += entries


class FailEntries(_FailSomeEntries[str]):
    """Makes SQS answer some SendMessageBatch entries as `Failed` (and not enqueue them), as SQS may.
    `failing` holds the current call's entry Ids."""

    def __init__(self, should_fail: Callable[[int, int], bool]) -> None:
        super().__init__(should_fail)
        self.sink_url = ""

    def _failure(self, entry_id: str) -> dict[str, Any]:
        return {"Id": entry_id, "SenderFault": False, "Code": "InternalError", "Message": "injected"}

    def choose(self, params: dict[str, Any], **_: Any) -> None:
        self.failing = [entry["Id"] for entry in params["Entries"] if self._fails(int(entry["Id"]))]
        kept = [entry for entry in params["Entries"] if entry["Id"] not in self.failing]
        if kept:  # SQS refuses an empty batch; an all-failed batch is answered without reaching moto
            params["Entries"] = kept

    def answer_all_failed(self, request: Any, **_: Any) -> AWSResponse | None:
        sent = json.loads(request.body)
        if not self.failing or len(self.failing) < len(sent["Entries"]):
            return None
        # botocore takes the first answer but still calls every before-send handler, moto's too:
        # point the request at a sink queue so that none of these entries reaches the replay queue.
        request.body = json.dumps({**sent, "QueueUrl": self.sink_url}).encode()
        body = json.dumps({"Successful": [], "Failed": [self._failure(i) for i in self.failing]}).encode()
        self._count(len(self.failing))
        self.failing = []
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, MockRawResponse(body))  # type: ignore[arg-type]

    def report(self, parsed: dict[str, Any], **_: Any) -> None:
        self._count(len(self.failing))
        parsed.setdefault("Failed", []).extend(self._failure(i) for i in self.failing)
        self.failing = []

    def install(self) -> None:
        """On the page function's SQS client (evreplay.core.clients, fresh for each test)."""
        self.sink_url = clients.sqs().create_queue(QueueName="injected-failure-sink")["QueueUrl"]
        events = clients.sqs().meta.events
        events.register("before-parameter-build.sqs.SendMessageBatch", self.choose)
        events.register_first("before-send.sqs.SendMessageBatch", self.answer_all_failed)
        events.register("after-call.sqs.SendMessageBatch", self.report)


class FailPutEvents(_FailSomeEntries[int]):
    """Makes EventBridge answer some PutEvents entries with an ErrorCode (and not deliver them), as it
    may. A call whose every entry fails is answered without reaching moto (PutEvents refuses no entries).
    `failing` holds the positions, in the current call's entries, of those it fails."""

    def choose(self, params: dict[str, Any], **_: Any) -> None:
        self.failing = []
        for position, entry in enumerate(params["Entries"]):
            seq = int(json.loads(entry["Detail"]).get("seq") or json.loads(entry["Detail"])["replay"]["seq"])
            if self._fails(seq):
                self.failing.append(position)
        if len(self.failing) < len(params["Entries"]):
            params["Entries"] = [e for i, e in enumerate(params["Entries"]) if i not in self.failing]

    def answer_all_failed(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if not self.failing or len(self.failing) < len(json.loads(params["body"])["Entries"]):
            return None
        failed = [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"} for _ in self.failing]
        self._count(len(self.failing))
        self.failing = []
        return SimpleNamespace(status_code=200, headers={}), {"FailedEntryCount": len(failed), "Entries": failed}

    def report(self, parsed: dict[str, Any], **_: Any) -> None:
        entries = list(parsed.get("Entries") or [])
        for position in self.failing:  # ascending: each lands where its entry was
            entries.insert(position, {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"})
        parsed["Entries"] = entries
        parsed["FailedEntryCount"] = int(parsed.get("FailedEntryCount") or 0) + len(self.failing)
        self._count(len(self.failing))
        self.failing = []

    def install(self) -> None:
        """On the sending functions' EventBridge client (evreplay.core.clients, fresh for each test)."""
        events = clients.events().meta.events
        events.register("before-parameter-build.events.PutEvents", self.choose)
        events.register_first("before-call.events.PutEvents", self.answer_all_failed)
        events.register("after-call.events.PutEvents", self.report)

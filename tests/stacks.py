"""The stacks tests run on and the helpers that drive or read them: a fresh moto deployment of the
template's storage (`deployed_stack`, the `stack` fixture), the replay workflow on moto's Step Functions
interpreter, the local stack as a child process (tests/e2e), and what each tier reads back (index rows,
raw objects, aggregates, the DynamoDB requests a route sent). Fixtures stay in the conftest files.

Importing it sets the process's environment first (the root conftest imports it before anything else):
never a real AWS account, and every function's variables from template.yaml resolved for the local
account, in place before a module that reads them at import (Powertools' Metrics) is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from unittest import mock

from evreplay.local import offline
from evreplay.local.template import ACCOUNT_ID, Template

offline.isolate("us-east-1")
os.environ.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
TEMPLATE = Template()
os.environ.update(TEMPLATE.merged_environment())
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"

import boto3  # noqa: E402
from evreplay.cli.client import ApiClient  # noqa: E402
from evreplay.cli.local_process import LocalStackProcess  # noqa: E402
from evreplay.core import clients  # noqa: E402
from evreplay.core.settings import reset_settings  # noqa: E402
from evreplay.local import moto_patches  # noqa: E402
from evreplay.local.deploy import deploy_storage  # noqa: E402
from evreplay.local.gateway import GatewayResponse, LocalGateway  # noqa: E402
from evreplay.local.runtime import invoke  # noqa: E402
from evreplay.local.stack import MOTO_CONFIG  # noqa: E402
from evreplay.processor.hashing import inputs_hash  # noqa: E402
from evreplay.replay.workflow import continuation_name  # noqa: E402
from evreplay.store.dynamo import deserialize  # noqa: E402
from evreplay.store.index import EventIndex, IndexRow  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.stepfunctions.parser.models import stepfunctions_parser_backends  # noqa: E402

from tests.builders import DAY, END_NORMALIZED, START_NORMALIZED, sqs_event  # noqa: E402
from tests.faults import ALWAYS, INTERNAL, Faults  # noqa: E402

# ---------------------------------------------------------------- the moto deployment every functional test runs on
# One session for the tests' own clients: a new session re-parses botocore's data files (~0.4 s).
SESSION = boto3.session.Session()


@dataclass
class Stack:
    """A fresh local deployment of the template's storage, and handles to look inside it."""

    template: Template
    s3: Any
    dynamodb: Any
    sqs: Any
    env: dict[str, str]
    gateway: LocalGateway

    @property
    def bucket(self) -> str:
        return self.env["RAW_BUCKET"]

    @property
    def index_table(self) -> str:
        return self.env["INDEX_TABLE"]

    def raw_keys(self) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def table_items(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
            items.extend(page["Items"])
        return items


@contextmanager
def deployed_stack() -> Iterator[Stack]:
    """A fresh moto with the template's storage deployed, for as long as the block runs."""
    # The same moto the local stack runs: atomic DynamoDB requests, per-item transaction rollback,
    # in-process Lambda (evreplay.local.moto_patches, pinned to its moto version).
    moto_patches.apply(TEMPLATE)
    with mock_aws(config=MOTO_CONFIG):
        clients.reset_clients()
        handles = {name: SESSION.client(name) for name in ("s3", "dynamodb", "sqs")}
        deploy_storage(TEMPLATE, handles)
        yield Stack(
            template=TEMPLATE,
            s3=handles["s3"],
            dynamodb=handles["dynamodb"],
            sqs=handles["sqs"],
            env=TEMPLATE.merged_environment(),
            gateway=LocalGateway(TEMPLATE),
        )


# ---------------------------------------------------------------- the local stack as a child process (tests/e2e)
MAX_RECEIVE_COUNT = 2


CLI_TIMEOUT = 120.0


@dataclass
class RunningStack:
    process: LocalStackProcess
    api: ApiClient
    aws_endpoint: str  # as printed by `evreplay local`

    @property
    def api_url(self) -> str:
        return self.process.api_url

    def aws(self, service: str) -> Any:
        """A boto3 client at the printed endpoint, as a developer would make one."""
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client(service, endpoint_url=self.aws_endpoint)  # type: ignore[call-overload]

    def cli(
        self, *args: str, stdin: str = "", timeout: float = CLI_TIMEOUT, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run `evreplay ARGS --api-url <this stack>` and return what it printed."""
        command = [sys.executable, "-m", "evreplay.cli.main", *args, "--api-url", self.api_url]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result


def printed_aws_endpoint(process: LocalStackProcess, timeout: float = 30.0) -> str:
    """The AWS endpoint the banner names. The banner is printed just after /health turns 200, so on a
    loaded machine it can lag the health check that ended `start()`: wait for it."""
    pattern = re.compile(r"AWS endpoint:\s+(http://\S+)")
    deadline = time.monotonic() + timeout
    while not (found := pattern.search(process.output())):
        assert time.monotonic() < deadline, f"`evreplay local` did not print its AWS endpoint:\n{process.output()}"
        time.sleep(0.1)
    return found.group(1)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll until predicate() is truthy; fail after `timeout` seconds (tests never hang)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- the replay workflow on moto's Step Functions interpreter
FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class SqsCalls:
    """SendMessageBatch requests sent by the page function's client, each attempt counted (SQS bills
    every request), at the botocore layer just before the request leaves."""

    send_message_batch: int = 0
    entries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # a page sends on several threads

    def __call__(self, request: Any, **_: Any) -> None:
        with self.lock:
            self.send_message_batch += 1
            self.entries += len(json.loads(request.body)["Entries"])


@dataclass
class Replay:
    """One finished replay: its executions (the chain), result and the messages it enqueued."""

    replay_id: str
    executions: list[dict[str, Any]]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        return self.executions[-1]

    @property
    def status(self) -> str:
        return str(self.last["status"])

    @property
    def output(self) -> dict[str, Any]:
        return dict(json.loads(self.last["output"]))

    @property
    def result(self) -> dict[str, Any]:
        output = self.output
        return {name: output[name] for name in ("scanned", "duplicates_skipped", "enqueued", "truncated", "pages")}


@dataclass
class Workflow:
    stack: Stack
    template: Template
    sfn: Any
    state_machine_arn: str
    sqs_calls: SqsCalls

    def configure(self, **parameters: Any) -> None:
        """The functions' environment for these template parameters (the defaults when none)."""
        self.template = configure(self.stack, parameters)

    # ------------------------------------------------------------------ ingest (the real API)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.stack.gateway.request("POST", "/events", body)
        assert response.status == 201, response.body
        return dict(response.json())

    def ingest(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST /events/batch in chunks of 500; every event must be stored."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(bodies), 500):
            response = self.stack.gateway.request("POST", "/events/batch", {"events": bodies[start : start + 500]})
            assert response.status == 200, response.body
            chunk = response.json()["results"]
            assert all(r["status"] in ("ACCEPTED", "DUPLICATE") for r in chunk), chunk
            results.extend(chunk)
        return results

    def index_rows(self) -> list[dict[str, Any]]:
        rows = [deserialize(item) for item in self.stack.table_items(self.stack.index_table)]
        return [row for row in rows if row["sk"].startswith("T#")]

    # ------------------------------------------------------------------ executions
    def start(self, execution_input: Any, name: str) -> str:
        text = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
        started = self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=text)
        return str(started["executionArn"])

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name

    def wait(self, name: str, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Wait until the replay's chain of executions has ended, and its record says so (the status
        change event lands right after the status changes); DescribeExecution of each."""
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            chain = self._chain(name)
            if chain[-1]["status"] in FINAL and not self._exists(continuation_name(name, len(chain))):
                self._wait_recorded(name, chain[-1]["status"])
                return chain
            if time.monotonic() > deadline:
                raise AssertionError(f"replay {name} still {chain[-1]['status']} after {timeout}s")
            # Back off: each DescribeExecution costs moto ~20 ms of CPU, taken from the interpreter's thread.
            time.sleep(pause)
            pause = min(pause * 1.5, 0.5)

    def recorded_status(self, replay_id: str) -> str | None:
        """The status the replay's record holds (evreplay.replay.state), None without a record."""
        item = self.stack.dynamodb.get_item(
            TableName=self.stack.env["REPLAY_STATE_TABLE"],
            Key={"pk": {"S": f"REPLAY#{replay_id}"}, "sk": {"S": "RECORD"}},
            ConsistentRead=True,
        ).get("Item")
        return str(item["status"]["S"]) if item else None

    def _wait_recorded(self, replay_id: str, status: str, timeout: float = 5.0) -> None:
        # Some fault tests keep DynamoDB from recording anything: they do not read the record.
        deadline = time.monotonic() + timeout
        while self.recorded_status(replay_id) != status and time.monotonic() < deadline:
            time.sleep(0.02)

    def _exists(self, name: str) -> bool:
        try:
            self.sfn.describe_execution(executionArn=self.execution_arn(name))
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return False
        return True

    def _chain(self, name: str) -> list[dict[str, Any]]:
        chain = [self.sfn.describe_execution(executionArn=self.execution_arn(name))]
        while self._exists(following := continuation_name(name, len(chain))):
            chain.append(self.sfn.describe_execution(executionArn=self.execution_arn(following)))
        return chain

    def replay(self, name: str, drain: bool = True, **request: Any) -> Replay:
        """Start an execution (as the console would), wait for it, read its messages off the queue."""
        self.start(request, name)
        replay = Replay(name, self.wait(name))
        if drain:
            replay.messages = self.drain()
        return replay

    def expire(self, name: str) -> None:
        """Forget an ended execution, as Step Functions does ~90 days after it closed."""
        backend = stepfunctions_parser_backends[ACCOUNT_ID][self.template.region]
        arn = self.execution_arn(name)
        for machine in backend.state_machines:
            machine.executions[:] = [e for e in machine.executions if e.execution_arn != arn]

    def history(self, name: str) -> list[dict[str, Any]]:
        events = self.sfn.get_execution_history(executionArn=self.execution_arn(name))["events"]
        return list(events)

    # ------------------------------------------------------------------ the queue
    def drain(self) -> list[dict[str, Any]]:
        """Every message on the replay queue (received once, then removed), bodies parsed."""
        sqs, url = self.stack.sqs, self.stack.env["REPLAY_QUEUE_URL"]
        received: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get(
            "Messages", []
        ):
            received.extend(messages)
        # moto's DeleteMessage scans the whole queue (twice) per message: for thousands of messages the
        # deletes cost more than the replay. When the queue holds exactly what was just received, one
        # PurgeQueue removes it; anything else there (another's in-flight or delayed message) keeps its
        # place, and only ours are deleted. A test drains several times a minute, more often than SQS
        # allows a purge: moto is told not to hold the test to that (no code under test purges).
        names = [f"ApproximateNumberOfMessages{state}" for state in ("", "Delayed", "NotVisible")]
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        visible, delayed, in_flight = (int(counts[name]) for name in names)
        if (visible, delayed, in_flight) == (0, 0, len(received)):
            if received:
                with mock.patch.dict(os.environ, {"MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"}):
                    sqs.purge_queue(QueueUrl=url)
        else:
            for start in range(0, len(received), 10):
                chunk = received[start : start + 10]
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
                )
        return [json.loads(message["Body"]) for message in received]


def configure(stack: Stack, parameters: dict[str, Any]) -> Template:
    """Set the one process-wide function environment from the template with these parameters."""
    # Imported here, not at the top: the root conftest imports this module before it sets the
    # environment the handler modules are built from.
    from evreplay.handlers import reconcile_tasks
    from evreplay.replay import tasks as replay_tasks

    template = Template(parameter_overrides=parameters) if parameters else stack.template
    os.environ.update(template.merged_environment())
    reset_settings()
    replay_tasks.reset()
    reconcile_tasks.reset()
    return template


@cache
def workflow_clients() -> dict[str, Any]:
    """Created once: a botocore client costs ~0.2 s to build, and moto intercepts any client."""
    session = boto3.session.Session()
    return {name: session.client(name) for name in ("iam", "lambda", "stepfunctions")}


# ---------------------------------------------------------------- reconcile: objects with and without index rows
Reconcile = Callable[..., dict[str, Any]]


def post(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.gateway.request("POST", "/events", body)
    assert response.status == 201, response.body
    return dict(response.json())


def post_unindexed(stack: Stack, injector: Faults, body: dict[str, Any]) -> str:
    """POST an event whose index write fails on every attempt: the raw object stays, no row (503).
    Returns the key of the object it left."""
    before = set(stack.raw_keys())
    injector.inject("dynamodb", "TransactWriteItems", INTERNAL, times=ALWAYS)
    try:
        response = stack.gateway.request("POST", "/events", body)
    finally:
        injector.clear()
    assert response.status == 503, response.body
    (left,) = set(stack.raw_keys()) - before
    return left


def index_items(stack: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of the index table (rows and registry), plain values, by (pk, sk)."""
    return {(item["pk"], item["sk"]): item for item in map(deserialize, stack.table_items(stack.index_table))}


def rows(stack: Stack) -> dict[str, dict[str, Any]]:
    """Occurrence rows by s3_key."""
    return {item["s3_key"]: item for item in index_items(stack).values() if item["sk"].startswith("T#")}


def empty_index(stack: Stack) -> None:
    for item in stack.table_items(stack.index_table):
        stack.dynamodb.delete_item(TableName=stack.index_table, Key={"pk": item["pk"], "sk": item["sk"]})


# ---------------------------------------------------------------- ingest: what POST /events stored
def index_rows(stack: Stack) -> list[dict[str, Any]]:
    """Occurrence rows of the index, plain values, in key order per entity."""
    from evreplay.store.dynamo import deserialize

    rows = [deserialize(item) for item in stack.table_items(stack.index_table)]
    return sorted((row for row in rows if row["sk"].startswith("T#")), key=lambda row: (row["pk"], row["sk"]))


def raw_object(stack: Stack, key: str) -> dict[str, Any]:
    return json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())


# ---------------------------------------------------------------- the processor: replay messages from the real index, its batches, GET /aggregates
PROCESSOR = "ProcessorFunction"


def ingest(stack: Stack, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST /events one at a time. (Not /events/batch: its concurrent items race inside moto's
    TransactWriteItems, which deep-copies tables without a lock.)"""
    results: list[dict[str, Any]] = []
    for body in events:
        response = stack.gateway.request("POST", "/events", body)
        assert response.status == 201, response.body
        results.append(response.json())
    return results


def _window_rows(stack: Stack, entity: str, start: str = START_NORMALIZED, end: str = END_NORMALIZED) -> list[IndexRow]:
    index = EventIndex(stack.dynamodb, stack.index_table)
    rows: list[IndexRow] = []
    key = None
    while True:
        page, key = index.query_window(entity, start, end, limit=100, exclusive_start_key=key)
        rows.extend(page)
        if not key:
            return rows


def replay_messages(
    stack: Stack,
    entity: str,
    replay_id: str | None = None,
    include_duplicates: bool = False,
    start: str = START_NORMALIZED,
    end: str = END_NORMALIZED,
) -> list[str]:
    """Message bodies of a replay of [start, end), in replay order with 1-based seq (docs/design.md §4)."""
    replay_id = replay_id or f"r-{uuid.uuid4().hex[:12]}"
    seen: set[str] = set()
    bodies: list[str] = []
    for row in _window_rows(stack, entity, start, end):
        if not include_duplicates and row.event_id in seen:
            continue
        seen.add(row.event_id)
        bodies.append(
            json.dumps(
                {
                    "replay_id": replay_id,
                    "seq": len(bodies) + 1,
                    "event_id": row.event_id,
                    "entity_id": row.entity_id,
                    "event_time": row.event_time,
                    "s3_bucket": row.s3_bucket,
                    "s3_key": row.s3_key,
                }
            )
        )
    return bodies


def expected_hash(stack: Stack, entity: str, include_duplicates: bool = False) -> str:
    """inputs_hash of the window computed in one go from the index rows."""
    rows = _window_rows(stack, entity)
    if not include_duplicates:
        rows = list({row.event_id: row for row in reversed(rows)}.values())
    return inputs_hash((row.event_id, row.payload_sha256) for row in rows)


def process(stack: Stack, bodies: list[str]) -> list[str]:
    """Run the template's processor on one batch; return the failed message ids."""
    event = sqs_event(bodies)
    response = invoke(stack.template.function_handler(PROCESSOR), event, PROCESSOR)
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def aggregates(stack: Stack, entity: str, day: str | None = DAY) -> list[dict[str, Any]]:
    """Every version through GET /aggregates, following cursors."""
    items: list[dict[str, Any]] = []
    query: dict[str, str | list[str]] = {"entity_id": entity, **({"day": day} if day else {})}
    while True:
        response = stack.gateway.request("GET", "/aggregates", query=query)
        assert response.status == 200, response.body
        page = response.json()
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items
        query["cursor"] = page["next_cursor"]


def version(stack: Stack, entity: str, replay_id: str, day: str = DAY) -> dict[str, Any]:
    (found,) = [item for item in aggregates(stack, entity, day) if item["replay_id"] == replay_id]
    return found


def aggregate_items(stack: Stack) -> list[dict[str, Any]]:
    """The whole aggregates table, in key order: a snapshot to compare before/after."""
    items = stack.table_items(stack.env["AGGREGATES_TABLE"])
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def send(stack: Stack, bodies: list[str]) -> None:
    url = stack.template.ref("ReplayQueue")
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = stack.sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        assert not response.get("Failed"), response


# ---------------------------------------------------------------- fault tests: the index and the raw store after a fault, a producer's retries
def _partition(stack: Stack, entity_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    paginator = stack.dynamodb.get_paginator("query")
    for page in paginator.paginate(
        TableName=stack.index_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"E#{entity_id}"}},
        ConsistentRead=True,
    ):
        items.extend(deserialize(item) for item in page["Items"])
    return items


def occurrence_rows(stack: Stack, entity_id: str) -> list[dict[str, Any]]:
    """The entity's occurrence rows in the index, in key (replay) order."""
    return [row for row in _partition(stack, entity_id) if row["sk"].startswith("T#")]


def registry(stack: Stack, entity_id: str) -> dict[str, int]:
    """event_id -> occurrences, from the index's registry items."""
    return {
        row["event_id"]: int(row["occurrences"]) for row in _partition(stack, entity_id) if row["sk"].startswith("I#")
    }


def raw_keys_of(stack: Stack, entity_id: str) -> list[str]:
    return sorted(key for key in stack.raw_keys() if f"/entity={entity_id}/" in key)


def error_shape(body: Any) -> dict[str, Any]:
    """The contract's error body (docs/design.md §2), and nothing else."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return dict(body["error"])


def expire_in_progress(stack: Stack, idempotency_key: str) -> int:
    """Move the in-progress expiry of the key's INPROGRESS idempotency record into the past: what its
    window (evreplay.core.idempotency.IN_PROGRESS_SECONDS) does, given time; test_keyed_retries.py waits
    for it in real time instead. Returns how many there were."""
    table = stack.env["IDEMPOTENCY_TABLE"]
    # Powertools' record id: "<key prefix>#<md5 of the JSON of the key>"
    suffix = "#" + hashlib.md5(json.dumps(idempotency_key).encode()).hexdigest()
    items = [
        item
        for item in stack.table_items(table)
        if item.get("status", {}).get("S") == "INPROGRESS" and item["id"]["S"].endswith(suffix)
    ]
    for item in items:
        stack.dynamodb.update_item(
            TableName=table,
            Key={"id": item["id"]},
            UpdateExpression="SET in_progress_expiration = :past",
            ExpressionAttributeValues={":past": {"N": "1"}},
        )
    return len(items)


# The README's advice to producers: retry 409 and 503 with the same key, waiting 0.2 s and doubling
# up to 1 s, for 10 s.
RETRIED = {409, 503}


RETRY_BUDGET_SECONDS = 10.0


FIRST_WAIT, LONGEST_WAIT = 0.2, 1.0


@dataclass
class Retried:
    """A producer's retries of one request: every answer it saw, how long until its last one."""

    answers: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> Any:
        return self.answers[-1]

    @property
    def statuses(self) -> list[int]:
        return [answer.status for answer in self.answers]


def retry_as_advised(send: Callable[[], Any], first: Any = None) -> Retried:
    """Send until the answer is neither 409 nor 503 or the budget is spent, waiting as the README
    says; `first` is an answer already seen (the clock starts at it)."""
    retried = Retried([first] if first is not None else [])
    started, wait = time.monotonic(), FIRST_WAIT
    while not retried.answers or retried.final.status in RETRIED:
        if retried.answers:
            if time.monotonic() - started + wait > RETRY_BUDGET_SECONDS:
                break
            time.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT)
        retried.answers.append(send())
    retried.seconds = time.monotonic() - started
    return retried


# ---------------------------------------------------------------- investigation: GET routes with the DynamoDB requests they sent
# ---------------------------------------------------------------- request accounting
@dataclass
class Request:
    operation: str
    params: dict[str, Any]
    items_read: int = 0  # ScannedCount: items DynamoDB read, before any filter


@contextmanager
def dynamodb_requests(*clients: Any) -> Iterator[list[Request]]:
    """Every DynamoDB request the given clients send inside the block, with the items it read."""
    requests: list[Request] = []

    def parameters(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["investigation_test_params"] = dict(params)  # the API parameters, before serialization

    def before(model: Any, context: dict[str, Any], **_: Any) -> None:
        # The request context travels from parameter building to after-call: requests sent from
        # several threads (the gaps skip-scan's segments) still get their own counts.
        request = Request(model.name, context.get("investigation_test_params", {}))
        context["investigation_test_request"] = request
        requests.append(request)

    def after(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        request = context["investigation_test_request"]
        request.items_read = int(parsed.get("ScannedCount", len(parsed.get("Items", []))))

    handlers: list[tuple[str, Callable[..., None]]] = [
        ("before-parameter-build.dynamodb.*", parameters),
        ("before-call.dynamodb.*", before),
        ("after-call.dynamodb.*", after),
    ]
    unique = list({id(client): client for client in clients}.values())  # functions may share one client
    for client in unique:
        for name, handler in handlers:
            client.meta.events.register(name, handler)
    try:
        yield requests
    finally:
        for client in unique:
            for name, handler in handlers:
                client.meta.events.unregister(name, handler)


def get(stack: Stack, path: str, **query: str) -> tuple[GatewayResponse, list[Request]]:
    """GET one route through the local API Gateway, recording the DynamoDB requests its function
    sends (on the function's own client from `evreplay.core.clients`)."""
    from evreplay.handlers import aggregates_api, investigation_api

    with dynamodb_requests(investigation_api.dynamodb, aggregates_api.dynamodb) as requests:
        response = stack.gateway.request("GET", path, query=dict(query))
    return response, requests


def partitions(requests: list[Request]) -> set[tuple[str, str]]:
    """(index or "table", partition key value) of every request: which partitions a call read."""
    return {
        (request.params.get("IndexName", "table"), request.params["ExpressionAttributeValues"][":pk"]["S"])
        for request in requests
    }


class Destinations:
    """A standard queue, a FIFO queue and a bus with a rule on evreplay.replay feeding a queue, in moto."""

    def __init__(self, stack: Stack) -> None:
        self.sqs = stack.sqs
        self.events = SESSION.client("events")
        self.orders = self._queue("orders")
        self.ordered = self._queue("ordered.fifo", FifoQueue="true")
        self.rule_target = self._queue("bus-target")
        self.events.create_event_bus(Name="team-bus")
        self.events.put_rule(
            Name="replays", EventBusName="team-bus", EventPattern=json.dumps({"source": ["evreplay.replay"]})
        )
        self.events.put_targets(
            Rule="replays", EventBusName="team-bus", Targets=[{"Id": "q", "Arn": self._arn("bus-target")}]
        )

    @staticmethod
    def _arn(queue: str) -> str:
        return f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{queue}"

    def _queue(self, name: str, **attributes: str) -> str:
        return str(self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    @property
    def parameter(self) -> str:
        return ",".join(
            [
                f"orders={self._arn('orders')}",
                f"ordered={self._arn('ordered.fifo')}",
                f"bus=arn:aws:events:us-east-1:{ACCOUNT_ID}:event-bus/team-bus",
            ]
        )

    def receive(self, url: str) -> list[dict[str, Any]]:
        """Every message on a queue in the order SQS hands them out (received once and deleted)."""
        out: list[dict[str, Any]] = []
        while True:
            received = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=600,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                return out
            out.extend(received)
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)],
            )


def deploy(workflow: Any, destinations: Destinations, **parameters: Any) -> Workflow:
    """The workflow with the three destinations declared (ReplayDestinations)."""
    return workflow(ReplayDestinations=destinations.parameter, **parameters)  # type: ignore[no-any-return]

"""The replay workflow for real: statemachines/replay.asl.json run by moto's Step Functions
interpreter, its Lambda tasks invoked in-process (evreplay.local.moto_patches), against moto
DynamoDB and SQS filled through the real ingest API (POST /events via the local gateway). Messages
are read back off the replay queue.

`workflow(**parameters)` deploys the template's functions and state machine, with template parameter
overrides (e.g. ReplayPageSize=10) applied to the functions' environment.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypedDict

import boto3
import pytest
from evreplay.core import clients
from evreplay.core.settings import reset_settings
from evreplay.handlers import reconcile_tasks
from evreplay.local import moto_patches
from evreplay.local.template import ACCOUNT_ID, Template
from evreplay.local.workflow import deploy_workflow
from evreplay.replay import tasks as replay_tasks
from evreplay.replay.workflow import continuation_name
from evreplay.store.dynamo import deserialize
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from tests.conftest import SESSION, Stack
from tests.faults import fast_retries, faults  # noqa: F401  (fixtures for the fault tests here)

ACCOUNT = ACCOUNT_ID
FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class Window(TypedDict):
    start_time: str
    end_time: str


WINDOW: Window = {"start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}


def event(entity_id: str, event_time: str, event_id: str | None = None, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "ios_app",
        "event_type": "purchase",
        "entity_id": entity_id,
        "event_time": event_time,
        "payload": payload or {"amount": 1},
    }
    if event_id is not None:
        body["event_id"] = event_id
    return body


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
        """Every message on the replay queue (received once and deleted), bodies parsed."""
        sqs, url = self.stack.sqs, self.stack.env["REPLAY_QUEUE_URL"]
        bodies: list[dict[str, Any]] = []
        while True:
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)
            messages = received.get("Messages", [])
            if not messages:
                return bodies
            bodies.extend(json.loads(message["Body"]) for message in messages)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


def configure(stack: Stack, parameters: dict[str, Any]) -> Template:
    """Set the one process-wide function environment from the template with these parameters."""
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


@pytest.fixture
def workflow(stack: Stack) -> Iterator[Callable[..., Workflow]]:
    saved = dict(os.environ)
    deployed: list[Workflow] = []

    def deploy(**parameters: Any) -> Workflow:
        template = configure(stack, parameters)
        moto_patches.apply(template)
        handles = workflow_clients()
        arns = deploy_workflow(template, handles)
        calls = SqsCalls()
        # The client the page function will use: clients are per process and were reset for this test.
        clients.sqs().meta.events.register_first("before-send.sqs.SendMessageBatch", calls)
        flow = Workflow(stack, template, handles["stepfunctions"], arns["ReplayStateMachine"], calls)
        deployed.append(flow)
        return flow

    yield deploy
    for flow in deployed:  # nothing may keep running into the next test's moto
        deadline = time.monotonic() + 10
        while running := flow.sfn.list_executions(stateMachineArn=flow.state_machine_arn, statusFilter="RUNNING")[
            "executions"
        ]:
            if time.monotonic() > deadline:
                for execution in running:
                    flow.sfn.stop_execution(executionArn=execution["executionArn"])
                break
            time.sleep(0.05)
    # An ended execution's status event may still be on its way to the recorder: let it land here.
    assert moto_patches.wait_for_execution_ends(10), "an execution end was still being published after 10 s"
    os.environ.clear()
    os.environ.update(saved)
    reset_settings()
    replay_tasks.reset()
    reconcile_tasks.reset()


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
        return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"

    def _queue(self, name: str, **attributes: str) -> str:
        return str(self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    @property
    def parameter(self) -> str:
        return ",".join(
            [
                f"orders={self._arn('orders')}",
                f"ordered={self._arn('ordered.fifo')}",
                f"bus=arn:aws:events:us-east-1:{ACCOUNT}:event-bus/team-bus",
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


@pytest.fixture
def destinations(stack: Stack) -> Destinations:
    return Destinations(stack)


def deploy(workflow: Any, destinations: Destinations, **parameters: Any) -> Workflow:
    return workflow(ReplayDestinations=destinations.parameter, **parameters)  # type: ignore[no-any-return]

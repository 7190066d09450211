"""Fixtures shared by the functional folders: `workflow(**parameters)` deploys the template's
functions and state machines on moto (its Lambda tasks invoked in-process by
evreplay.local.moto_patches), with template parameter overrides (e.g. ReplayPageSize=10) applied to
the functions' environment; the replay and reconcile tests both run on it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from evreplay.core import clients
from evreplay.core.settings import reset_settings
from evreplay.handlers import reconcile_tasks
from evreplay.local import moto_patches
from evreplay.local.workflow import deploy_workflow
from evreplay.replay import tasks as replay_tasks

from tests.stacks import SqsCalls, Stack, Workflow, configure, workflow_clients


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

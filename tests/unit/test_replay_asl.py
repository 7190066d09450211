"""The replay state machine's definition, as written in statemachines/ (docs/design.md §4, STYLE)."""

from __future__ import annotations

import json
import re

from evreplay.local.template import Template

TRANSIENT_LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                           "Lambda.TooManyRequestsException"}  # fmt: skip


def definition() -> dict:
    template = Template()
    props = template.state_machines()["ReplayStateMachine"]["Properties"]
    return json.loads((template.root / props["DefinitionUri"]).read_text())


def test_no_arn_or_name_is_written_in_the_asl():
    text = json.dumps(definition())

    assert not re.search(r"arn:aws:(lambda|states):[a-z0-9-]+:\d{12}", text)
    assert set(re.findall(r"\$\{(\w+)\}", text)) == {
        "ValidateReplayFunctionArn",
        "ReplayPageFunctionArn",
        "ReplayStateMachineArn",
    }


def test_every_task_retries_transient_errors_and_never_a_bad_request():
    for name, state in definition()["States"].items():
        if state["Type"] != "Task":
            continue
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        assert "InvalidReplayRequest" not in retried, name
        if state["Resource"] == "arn:aws:states:::lambda:invoke":
            assert retried >= TRANSIENT_LAMBDA_ERRORS, name
        assert all(r["MaxAttempts"] <= 5 and r["IntervalSeconds"] == 1 for r in state["Retry"]), name
        caught = {error for catcher in state.get("Catch", []) for error in catcher["ErrorEquals"]}
        # The one exception: the continuation this execution names already exists (its own earlier,
        # unanswered attempt started it), which is success, not a failure to hide.
        allowed = {"StepFunctions.ExecutionAlreadyExistsException"} if name == "ContinueAsNew" else set()
        assert caught <= allowed, f"{name}: a failure must fail the execution visibly"


def test_the_page_task_retries_storage_and_send_failures():
    retried = {error for retrier in definition()["States"]["ReplayPage"]["Retry"] for error in retrier["ErrorEquals"]}

    assert {"StorageUnavailable", "SqsSendFailed"} <= retried


def test_the_loop_is_one_task_and_one_choice_per_page():
    states = definition()["States"]

    assert states["ReplayPage"]["Next"] == "MorePages?"
    assert states["MorePages?"]["Default"] == "ReplayPage"
    assert {choice["Next"] for choice in states["MorePages?"]["Choices"]} == {"ReplayFinished", "ContinueAsNew"}
    assert not any(state["Type"] in ("Map", "Parallel") for state in states.values())

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
        "PlanReplayFunctionArn",
        "ReplayEntitiesFunctionArn",
        "SummarizeReplayFunctionArn",
        "ReplayPlanBucketName",
    }


def all_states() -> dict:
    """The top-level states and those of the Distributed Map's item processor."""
    states = dict(definition()["States"])
    for state in list(states.values()):
        if state["Type"] == "Map":
            states.update(state["ItemProcessor"]["States"])
    return states


def test_every_task_retries_transient_errors_and_never_a_bad_request():
    for name, state in all_states().items():
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
    assert {choice["Next"] for choice in states["MorePages?"]["Choices"]} == {
        "ReplayFinished",
        "ContinueAsNew",
        "PaceWait",
        "ReplayPaused",
    }
    # Paused (docs/design.md §4.13): checked first, the execution ends with `paused`.
    assert states["MorePages?"]["Choices"][0] == {
        "Variable": "$.progress.paused",
        "BooleanEquals": True,
        "Next": "ReplayPaused",
    }
    assert states["ReplayPaused"]["End"] is True and states["ReplayPaused"]["Parameters"]["paused"] is True
    # Pacing is a Wait the history shows, then the next page (docs/design.md §4.13).
    assert states["PaceWait"] == {**states["PaceWait"], "Type": "Wait", "Next": "ReplayPage"}
    assert states["PaceWait"]["SecondsPath"] == "$.progress.wait_seconds"
    one_entity = {"ValidateRequest", "Scope?", "ReplayPage", "MorePages?", "ContinueAsNew"}
    assert not any(states[name]["Type"] in ("Map", "Parallel") for name in one_entity)


def reachable(states: dict, start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        todo += [state["Next"]] if "Next" in state else []
        todo += [choice["Next"] for choice in state.get("Choices", [])]
        todo += [state["Default"]] if "Default" in state else []
        todo += [catcher["Next"] for catcher in state.get("Catch", [])]
    return seen


def test_entity_lists_and_streams_take_the_distributed_map_and_one_entity_never_does():
    states = definition()["States"]
    scope = states["Scope?"]

    assert scope["Choices"] == [
        {"Variable": "$.scope", "StringEquals": "entity", "Next": "ReplayPage"},
        # A resumed list or stream (docs/design.md §4.13) has its plan: no planning again.
        {"Variable": "$.plan", "IsPresent": True, "Next": "ReplayEntities"},
    ]
    assert "ReplayEntities" not in reachable(states, "ReplayPage")
    assert {"PlanReplay", "ReplayTooLarge", "ReplayEntities", "SummarizeReplay"} <= reachable(states, "PlanReplay")
    fanout = states["ReplayEntities"]
    assert fanout["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert fanout["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert fanout["MaxConcurrencyPath"] == "$.plan.max_concurrency"
    # Results go to S3: the parent's state does not grow with the number of work items.
    assert fanout["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert states["ReplayTooLarge"] == {
        "Type": "Fail",
        "Comment": states["ReplayTooLarge"]["Comment"],
        "Error": "ReplayTooLarge",
        "CausePath": "$.plan.cause",
    }

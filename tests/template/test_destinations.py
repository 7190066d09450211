"""docs/design.md §4.12, template side: the sending functions may reach exactly the destinations that
ReplayDestinations declares (and the built-in queue), with no wildcard, and nothing else may send."""

from __future__ import annotations

import re
from typing import Any

import pytest
from evreplay.local.template import Template
from evreplay.replay.destinations import parse_destinations

SEND_ACTIONS = {"sqs:SendMessage", "events:PutEvents"}
DECLARED = {
    "orders": "arn:aws:sqs:us-east-1:123456789012:orders",
    "ordered": "arn:aws:sqs:eu-west-1:210987654321:ordered.fifo",
    "bus": "arn:aws:events:us-east-1:123456789012:event-bus/team-bus",
}


def parameter(declared: dict[str, str]) -> str:
    return ",".join(f"{name}={arn}" for name, arn in declared.items())


def send_grants(template: Template) -> dict[str, set[str]]:
    """Every role (or policy's roles) -> the resources it may send to, resolved for the local account."""
    grants: dict[str, set[str]] = {}
    for logical_id, resource in template.resources.items():
        props = resource.get("Properties") or {}
        documents = [p["PolicyDocument"] for p in props.get("Policies") or []]
        documents += [props["PolicyDocument"]] if "PolicyDocument" in props else []
        holders = [r["Ref"] for r in props.get("Roles") or []] or [logical_id]
        for document in documents:
            for statement in document.get("Statement") or []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement.get("Effect") == "Allow" and SEND_ACTIONS & set(actions):
                    resources = template.resolve(statement["Resource"])
                    for holder in holders:
                        grants.setdefault(holder, set()).update(
                            resources if isinstance(resources, list) else [resources]
                        )
    return grants


def test_the_sending_roles_may_reach_exactly_the_declared_destinations_and_the_built_in_queue():
    template = Template(parameter_overrides={"ReplayDestinations": parameter(DECLARED)})
    built_in = template.get_att("ReplayQueue", "Arn")

    grants = send_grants(template)

    assert grants == {
        "ReplayPageFunctionRole": {built_in, *DECLARED.values()},
        "ReplayEntitiesFunctionRole": {built_in, *DECLARED.values()},
    }
    policy = template.properties("ReplayDestinationsPolicy")["PolicyDocument"]["Statement"]
    assert [set(statement["Action"]) for statement in policy] == [SEND_ACTIONS]  # named actions, no wildcard


def test_ten_destinations_fill_every_slot_and_none_is_a_policy_of_nothing():
    many = {f"d{n}": f"arn:aws:sqs:us-east-1:123456789012:q{n}" for n in range(10)}
    built_in = "arn:aws:sqs:us-east-1:123456789012:ReplayQueue"

    assert send_grants(Template(parameter_overrides={"ReplayDestinations": parameter(many)}))[
        "ReplayPageFunctionRole"
    ] == {built_in, *many.values()}
    without = Template()
    assert "ReplayDestinationsPolicy" not in without.resources
    assert send_grants(without)["ReplayPageFunctionRole"] == {built_in}


def allowed_pattern() -> re.Pattern[str]:
    return re.compile(Template().sam["Parameters"]["ReplayDestinations"]["AllowedPattern"])


@pytest.mark.parametrize(
    "value",
    [
        "orders=arn:aws:sqs:us-east-1:123456789012:*",  # a wildcard queue
        "orders=arn:aws:sqs:us-east-1:*:orders",
        "bus=arn:aws:events:us-east-1:123456789012:event-bus/*",
        "all=*",
        "orders=arn:aws:sns:us-east-1:123456789012:topic",  # not a type evreplay sends to
        ",".join(f"d{n}=arn:aws:sqs:us-east-1:123456789012:q{n}" for n in range(11)),  # more than the slots
        "orders arn:aws:sqs:us-east-1:123456789012:orders",
    ],
)
def test_the_parameter_refuses_wildcards_other_services_and_more_than_ten(value: str):
    assert not allowed_pattern().match(value)


def test_the_parameter_accepts_what_the_functions_parse():
    value = parameter(DECLARED)

    assert allowed_pattern().match(value)
    parsed: dict[str, Any] = {n: d.as_dict() for n, d in parse_destinations(value, None).items()}
    assert [(d["name"], d["type"]) for d in parsed.values()] == [
        ("orders", "sqs"),
        ("ordered", "sqs-fifo"),
        ("bus", "eventbridge"),
    ]

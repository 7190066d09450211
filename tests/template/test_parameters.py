"""The operations parameters deploy what they say: EnableProcessor, AlarmTopicArn, RawTransitionDays.

Each test reads the template as CloudFormation deploys it for a set of parameters
(`Template.deployed`: conditions evaluated, `Fn::If` resolved), the same view the local stack uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from evreplay.local.template import Template

TOPIC = "arn:aws:sns:us-east-1:123456789012:evreplay-alarms"
_PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::URLSuffix", "AWS::NoValue"}

DEFAULTS = Template()
WITHOUT_PROCESSOR = Template(parameter_overrides={"EnableProcessor": "false"})
WITH_TOPIC = Template(parameter_overrides={"AlarmTopicArn": TOPIC})
WITH_TOPIC_WITHOUT_PROCESSOR = Template(parameter_overrides={"AlarmTopicArn": TOPIC, "EnableProcessor": "false"})
WITH_TRANSITION = Template(parameter_overrides={"RawTransitionDays": 90})
EVERY_VARIANT = [DEFAULTS, WITHOUT_PROCESSOR, WITH_TOPIC, WITH_TOPIC_WITHOUT_PROCESSOR, WITH_TRANSITION]
VARIANT_IDS = ["defaults", "no processor", "alarm topic", "alarm topic, no processor", "raw transition"]


def references(value: Any) -> Iterator[str]:
    """Every logical id or parameter a value refers to (Ref, Fn::GetAtt, ${...} of Fn::Sub)."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                yield item
            elif key == "Fn::GetAtt":
                yield item[0] if isinstance(item, list) else item.split(".")[0]
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else item
                for name in _sub_names(text):
                    if name not in variables:
                        yield name.split(".")[0]
                yield from references(variables)
            else:
                yield from references(item)


def _sub_names(text: str) -> list[str]:
    return [name for name in re.findall(r"\$\{([^}]+)\}", text) if not name.startswith("!")]


def triggers_of(template: Template, queue: str) -> list[str]:
    return [trigger.function for trigger in template.queue_triggers() if trigger.queue == queue]


# ---------------------------------------------------------------------------- every variant
@pytest.mark.parametrize("template", EVERY_VARIANT, ids=VARIANT_IDS)
def test_nothing_refers_to_a_resource_the_parameters_leave_out(template: Template) -> None:
    known = set(template.resources) | set(template.parameters) | _PSEUDO
    deployed = template.deployed

    dangling = {
        f"{section}/{logical_id} -> {name}"
        for section in ("Resources", "Outputs")
        for logical_id, entry in deployed[section].items()
        for name in references(entry)
        if name not in known
    }

    assert dangling == set()


# ---------------------------------------------------------------------------- EnableProcessor
def test_by_default_the_processor_consumes_the_replay_queue() -> None:
    assert "ProcessorFunction" in DEFAULTS.functions()
    assert triggers_of(DEFAULTS, "ReplayQueue") == ["ProcessorFunction"]


def test_without_the_processor_nothing_consumes_the_queue_but_it_is_still_there() -> None:
    template = WITHOUT_PROCESSOR

    # THEN no processor, no trigger, none of its alarms or logs...
    assert "ProcessorFunction" not in template.functions()
    assert template.of_type("AWS::Lambda::EventSourceMapping") == {}
    assert template.queue_triggers() == []
    assert not [logical_id for logical_id in template.resources if logical_id.startswith("Processor")]
    # ...but the queue, its dead-letter queue and their redrive stay for the team's own consumer
    queue = template.properties("ReplayQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ReplayDeadLetterQueue", "Arn"]}
    assert "ReplayDeadLetterQueueAlarm" in template.resources
    # ...and the replay workflow still sends to that queue
    assert template.function_environment("ReplayPageFunction")["REPLAY_QUEUE_URL"] == template.ref("ReplayQueue")


def test_without_the_processor_the_outputs_name_the_queue() -> None:
    outputs = WITHOUT_PROCESSOR.outputs

    assert outputs["ReplayQueueUrl"]["Value"] == {"Ref": "ReplayQueue"}
    assert outputs["ReplayQueueArn"]["Value"] == {"Fn::GetAtt": ["ReplayQueue", "Arn"]}
    assert outputs["ReplayDeadLetterQueueUrl"]["Value"] == {"Ref": "ReplayDeadLetterQueue"}
    assert "ProcessorFunctionName" not in outputs
    assert "ProcessorFunctionName" in DEFAULTS.outputs


# ---------------------------------------------------------------------------- AlarmTopicArn
@pytest.mark.parametrize("template", [WITH_TOPIC, WITH_TOPIC_WITHOUT_PROCESSOR], ids=["processor", "no processor"])
def test_with_a_topic_every_alarm_notifies_it(template: Template) -> None:
    alarms = template.of_type("AWS::CloudWatch::Alarm")

    assert len(alarms) >= 2
    for logical_id, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopicArn"}], logical_id
        assert props["OKActions"] == [{"Ref": "AlarmTopicArn"}], logical_id
        assert template.resolve(props["AlarmActions"]) == [TOPIC]


@pytest.mark.parametrize("template", [DEFAULTS, WITHOUT_PROCESSOR], ids=["processor", "no processor"])
def test_without_a_topic_no_alarm_has_an_action(template: Template) -> None:
    alarms = template.of_type("AWS::CloudWatch::Alarm")

    assert alarms
    for logical_id, alarm in alarms.items():
        actions = {"AlarmActions", "OKActions", "InsufficientDataActions"} & set(alarm["Properties"])
        assert actions == set(), logical_id


def test_alarm_topic_must_be_an_sns_arn() -> None:
    pattern = DEFAULTS.sam["Parameters"]["AlarmTopicArn"]["AllowedPattern"]

    assert re.fullmatch(pattern, TOPIC) and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "arn:aws:sqs:us-east-1:123456789012:queue")


# ---------------------------------------------------------------------------- RawTransitionDays
def test_by_default_the_raw_bucket_has_no_lifecycle_rule() -> None:
    assert "LifecycleConfiguration" not in DEFAULTS.properties("RawBucket")


def test_raw_transition_moves_raw_objects_to_glacier_instant_retrieval_and_deletes_nothing() -> None:
    lifecycle = WITH_TRANSITION.properties("RawBucket")["LifecycleConfiguration"]

    (rule,) = lifecycle["Rules"]
    assert rule["Status"] == "Enabled" and rule["Prefix"] == "raw/"
    assert WITH_TRANSITION.resolve(rule["Transitions"]) == [{"StorageClass": "GLACIER_IR", "TransitionInDays": "90"}]
    # no expiration of any kind, current or noncurrent versions
    assert not [key for key in rule if "Expiration" in key or key == "ExpiredObjectDeleteMarker"]
    assert lifecycle["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"

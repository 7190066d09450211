"""The processor as the template deploys it: trigger, queue timing, redrive, least privilege, alarms.
(Translation and cfn-lint of the whole template are in tests/template.)"""

from __future__ import annotations

from typing import Any


def statements(template, function: str) -> list[dict[str, Any]]:
    role = template.properties(f"{function}Role")
    return [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else list(found)


def test_trigger_reports_batch_item_failures_in_batches_of_ten(template):
    (trigger,) = [t for t in template.queue_triggers() if t.function == "ProcessorFunction"]

    assert (trigger.queue, trigger.batch_size, trigger.report_batch_item_failures) == ("ReplayQueue", 10, True)
    assert template.function_handler("ProcessorFunction") == "evreplay.handlers.processor.handler"


def test_queue_visibility_is_at_least_six_times_the_function_timeout_and_redrives_after_five(template):
    queue = template.resolve(template.properties("ReplayQueue"))

    assert int(queue["VisibilityTimeout"]) >= 6 * template.function_timeout("ProcessorFunction")
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == template.get_att("ReplayDeadLetterQueue", "Arn")


def test_processor_reads_raw_objects_and_writes_only_the_aggregates_table(template):
    granted = {
        (action, str(template.resolve(s["Resource"])))
        for s in statements(template, "ProcessorFunction")
        for action in actions(s)
    }
    raw = template.get_att("RawBucket", "Arn") + "/raw/*"
    table = template.get_att("AggregatesTable", "Arn")
    queue = template.get_att("ReplayQueue", "Arn")  # its trigger's polling, on this queue only

    assert granted == {
        ("s3:GetObject", raw),
        ("dynamodb:PutItem", table),
        ("dynamodb:UpdateItem", table),
        ("dynamodb:ConditionCheckItem", table),
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:GetQueueAttributes", queue),
    }
    assert set(template.function_environment("ProcessorFunction")) >= {"RAW_BUCKET", "AGGREGATES_TABLE"}
    assert "INDEX_TABLE" not in template.function_environment("ProcessorFunction")


def test_aggregates_api_only_queries_the_aggregates_table(template):
    granted = {
        (action, str(template.resolve(s["Resource"])))
        for s in statements(template, "AggregatesApiFunction")
        for action in actions(s)
    }

    assert granted == {("dynamodb:Query", template.get_att("AggregatesTable", "Arn"))}
    assert any(route.path == "/aggregates" and route.method == "GET" for route in template.routes())


def test_each_new_function_has_its_log_group(template):
    groups = {
        str(props["Properties"]["LogGroupName"]["Fn::Sub"])
        for props in template.of_type("AWS::Logs::LogGroup").values()
    }

    assert {"/aws/lambda/${ProcessorFunction}", "/aws/lambda/${AggregatesApiFunction}"} <= groups


def test_alarms_watch_the_dlq_the_function_errors_and_the_error_metric(template):
    alarms = [template.resolve(props["Properties"]) for props in template.of_type("AWS::CloudWatch::Alarm").values()]
    watched = {
        (alarm["Namespace"], alarm["MetricName"], tuple((d["Name"], d["Value"]) for d in alarm.get("Dimensions", [])))
        for alarm in alarms
        if alarm["ComparisonOperator"] == "GreaterThanThreshold" and float(alarm["Threshold"]) == 0
    }
    env = template.function_environment("ProcessorFunction")

    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "ReplayDeadLetterQueue"),)) in watched
    assert ("AWS/Lambda", "Errors", (("FunctionName", "ProcessorFunction"),)) in watched
    # The EMF metric is alarmed under the namespace and service dimension Powertools emits it with.
    assert (
        env["POWERTOOLS_METRICS_NAMESPACE"],
        "ProcessorErrorCount",
        (("service", env["POWERTOOLS_SERVICE_NAME"]),),
    ) in watched

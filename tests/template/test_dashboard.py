"""The operations dashboard plots the metrics the code really emits, under the namespace and
dimension Powertools really uses, and the AWS metrics of resources the template really has."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import evreplay
from evreplay.local.template import Template

DASHBOARD = "OperationsDashboard"
_EMITTED = re.compile(r"add_metric\(\s*name=\"(\w+)\"")
_PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::URLSuffix"}


def emitted_metrics() -> set[str]:
    """Every metric name the package passes to Powertools' add_metric."""
    names: set[str] = set()
    for path in Path(evreplay.__file__).parent.rglob("*.py"):
        names.update(_EMITTED.findall(path.read_text(encoding="utf-8")))
    return names


def dashboard(template: Template) -> tuple[dict[str, Any], list[str]]:
    """The body as JSON (each ${...} left as written) and the names its !Sub refers to."""
    body = template.properties(DASHBOARD)["DashboardBody"]["Fn::Sub"]
    referenced = re.findall(r"\$\{([^!}][^}]*)\}", body)
    return json.loads(body), referenced


def metric_lines(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric, dimensions, options) for every line of every metric widget."""
    lines = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for line in widget["properties"]["metrics"]:
            options = line[-1] if isinstance(line[-1], dict) else {}
            fields = line[:-1] if options else line
            namespace, name, *dims = fields
            lines.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)), options))
    return lines


def test_dashboard_body_is_json_and_refers_to_real_resources(template: Template) -> None:
    body, referenced = dashboard(template)

    assert body["widgets"]
    resources, parameters = template.sam["Resources"], template.parameters
    for name in referenced:
        logical_id = name.split(".")[0]
        assert name in _PSEUDO or logical_id in resources or logical_id in parameters, name


def test_evreplay_metrics_are_the_ones_the_code_emits(template: Template) -> None:
    environment = template.sam["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = environment["POWERTOOLS_METRICS_NAMESPACE"], environment["POWERTOOLS_SERVICE_NAME"]
    emitted = emitted_metrics()
    assert {"IngestCount", "DuplicateCount", "IngestLagMs", "ProcessorErrorCount"} <= emitted  # the scan works

    ours = [line for line in metric_lines(dashboard(template)[0]) if line[0] == namespace]
    plotted = {name for _, name, _, _ in ours}

    assert plotted <= emitted, f"plotted but never emitted: {plotted - emitted}"
    assert emitted <= plotted, f"emitted but not on the dashboard: {emitted - plotted}"
    # Powertools adds exactly one dimension, service: a line with any other set would stay empty
    assert all(dims == {"service": service} for _, _, dims, _ in ours)


def test_the_questions_the_issue_asks_are_on_the_dashboard(template: Template) -> None:
    lines = metric_lines(dashboard(template)[0])
    index = {(namespace, name, tuple(sorted(dims.items()))): options for namespace, name, dims, options in lines}

    def has(namespace: str, name: str, **dims: str) -> dict[str, Any] | None:
        return index.get((namespace, name, tuple(sorted(dims.items()))))

    service = {"service": "evreplay"}
    assert has("EvReplay", "IngestCount", **service) is not None
    assert has("EvReplay", "DuplicateCount", **service) is not None
    assert any(name == "IngestLagMs" and options.get("stat") == "p99" for _, name, _, options in lines), (
        "lag p99 is not plotted"
    )
    machine = {"StateMachineArn": "${ReplayStateMachine}"}
    assert has("AWS/States", "ExecutionsStarted", **machine) is not None
    assert has("AWS/States", "ExecutionsFailed", **machine) is not None
    assert has("EvReplay", "ProcessorErrorCount", **service) is not None
    assert has("AWS/Lambda", "Errors", FunctionName="${ProcessorFunction}") is not None
    assert (
        has("AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName="${ReplayDeadLetterQueue.QueueName}") is not None
    )

"""The operations dashboard plots the metrics the code really emits, under the namespace and
dimension Powertools really uses, and the AWS metrics of resources the template really has."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import evreplay
import pytest
from evreplay.ingest.metrics import INVALID_DIMENSIONS, STREAM_DIMENSIONS
from evreplay.local.template import Template

DASHBOARD = "OperationsDashboard"
# Powertools' add_metric, and evreplay.ingest.metrics' own per-stream recorder.
_EMITTED = re.compile(r"(?:add_metric|_add)\((?:\s*\w+,)?\s*name=\"(\w+)\"")
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"")
_PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::URLSuffix"}


def emitted_metrics() -> set[str]:
    """Every metric name the package passes to Powertools' add_metric."""
    names: set[str] = set()
    for path in Path(evreplay.__file__).parent.rglob("*.py"):
        names.update(_EMITTED.findall(path.read_text(encoding="utf-8")))
    return names


def dashboard(template: Template) -> tuple[dict[str, Any], list[str]]:
    """The body as JSON (each ${...} left as written) and the names its !Sub refers to, for the
    template's parameters: the !Sub's own variables (the processor's parts) are put in place."""
    text, variables = template.properties(DASHBOARD)["DashboardBody"]["Fn::Sub"]
    for name, value in variables.items():
        text = text.replace(f"${{{name}}}", value["Fn::Sub"] if isinstance(value, dict) else value)
    referenced = re.findall(r"\$\{([^!}][^}]*)\}", text)
    return json.loads(text), referenced


def metric_lines(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric, dimensions, options) for every line of every metric widget."""
    lines = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for line in widget["properties"]["metrics"]:
            if "expression" in line[-1]:
                continue  # a SEARCH: see searches()
            options = line[-1] if isinstance(line[-1], dict) else {}
            fields = line[:-1] if options else line
            namespace, name, *dims = fields
            lines.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)), options))
    return lines


def searches(body: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str]]:
    """(namespace, dimension names, metric) of every SEARCH expression."""
    found = []
    for widget in body["widgets"]:
        for line in (widget.get("properties") or {}).get("metrics") or []:
            for schema, name in _SEARCH.findall(line[-1].get("expression", "")):
                namespace, *dimensions = schema.split(",")
                found.append((namespace, tuple(dimensions), name))
    return found


WITHOUT_PROCESSOR = Template(parameter_overrides={"EnableProcessor": "false"})


@pytest.mark.parametrize("template", [Template(), WITHOUT_PROCESSOR], ids=["with processor", "without processor"])
def test_dashboard_body_is_json_and_refers_to_real_resources(template: Template) -> None:
    body, referenced = dashboard(template)

    assert body["widgets"]
    # every reference names a resource that exists for these parameters
    resources, parameters = template.resources, template.parameters
    for name in referenced:
        logical_id = name.split(".")[0]
        assert name in _PSEUDO or logical_id in resources or logical_id in parameters, name


def test_without_the_processor_nothing_refers_to_it() -> None:
    _, referenced = dashboard(WITHOUT_PROCESSOR)
    _, with_processor = dashboard(Template())

    assert not [name for name in referenced if name.startswith("Processor")]
    assert {"ProcessorFunction", "ProcessorErrorsAlarm.Arn"} <= set(with_processor)


def test_evreplay_metrics_are_the_ones_the_code_emits(template: Template) -> None:
    environment = template.sam["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = environment["POWERTOOLS_METRICS_NAMESPACE"], environment["POWERTOOLS_SERVICE_NAME"]
    emitted = emitted_metrics()
    assert {"IngestCount", "DuplicateCount", "IngestLagMs", "ProcessorErrorCount"} <= emitted  # the scan works

    body = dashboard(template)[0]
    ours = [line for line in metric_lines(body) if line[0] == namespace]
    plotted = {name for _, name, _, _ in ours} | {name for ns, _, name in searches(body) if ns == namespace}

    assert plotted <= emitted, f"plotted but never emitted: {plotted - emitted}"
    assert emitted <= plotted, f"emitted but not on the dashboard: {emitted - plotted}"
    # Powertools adds exactly one dimension, service: a line with any other set would stay empty
    assert all(dims == {"service": service} for _, _, dims, _ in ours)


def test_per_stream_searches_use_the_dimensions_the_code_emits(template: Template) -> None:
    found = {(dimensions, name) for namespace, dimensions, name in searches(dashboard(template)[0])}

    assert found == {
        (("service", *STREAM_DIMENSIONS), "IngestCount"),
        (("service", *STREAM_DIMENSIONS), "IngestLagMs"),
        (("service", *INVALID_DIMENSIONS), "InvalidCount"),
    }


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

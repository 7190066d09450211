"""The response schema files (`core/schemas/<name>.response.schema.json`): well formed, their
references resolving, their enums the ones the code answers with, and the CLI tests' canned API
answers shaped as they say. Real answers of every route are checked against them in
tests/e2e/test_response_schemas.py."""

from __future__ import annotations

from typing import Any

import pytest
from evreplay.core import schemas
from evreplay.investigation import stats
from evreplay.reconcile import reconciler
from evreplay.replay import service
from evreplay.replay.outcomes import PAUSED, RESULT_FIELDS
from jsonschema import Draft202012Validator

from tests.unit import test_cli_investigate as investigate_cli
from tests.unit import test_cli_replays as replays_cli

NAMES = schemas.response_names()


def errors(name: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in schemas.response_validator(name).iter_errors(instance)
    ]


def test_every_route_answer_has_a_response_schema_file() -> None:
    assert {"replay.response", "error.response", "destination_list.response"} <= set(NAMES) and len(NAMES) == 26


@pytest.mark.parametrize("name", NAMES)
def test_response_schema_is_a_2020_12_schema_named_by_its_file_with_references_that_resolve(name: str) -> None:
    schema = schemas.load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://evreplay.dev/schemas/{name}.schema.json"
    assert schema["title"]
    resolver = schemas.registry().resolver(base_uri=schema["$id"])

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for value in node.values() for r in refs(value)]
        return [r for value in node for r in refs(value)] if isinstance(node, list) else []

    for reference in refs(schema):
        assert resolver.lookup(reference).contents["$id"].endswith("/" + reference)


def _enum(name: str, *path: str) -> list[Any]:
    node: Any = schemas.load(name)
    for part in path:
        node = node[part]
    return list(node["enum"])


def test_enums_and_field_lists_are_the_ones_the_code_answers_with() -> None:
    for name in ("replay.response", "replay_list_item.response", "replay_history.response"):
        assert _enum(name, "properties", "status") == list(service.STATUSES), name
    # A reconcile is one execution: Step Functions' statuses, never a replay's PAUSED.
    assert _enum("reconcile.response", "properties", "status") == [s for s in service.STATUSES if s != PAUSED]
    assert set(RESULT_FIELDS) <= set(schemas.load("replay_result.response")["properties"])
    assert set(reconciler.COUNTS) <= set(schemas.load("reconcile_result.response")["properties"])
    lag_ms = schemas.load("lag_stats.response")["properties"]["lag_ms"]["properties"]
    assert list(lag_ms) == [f"p{p}" for p in stats.PERCENTILES] + ["max"]
    flag = ("properties", "items", "items", "properties", "flag")
    assert _enum("volume_stats.response", *flag) == [stats.EMPTY, stats.LOW, None]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("lag_stats.response", investigate_cli.LAG),
        ("volume_stats.response", investigate_cli.VOLUME),
        ("gaps.response", investigate_cli.GAPS),
        ("duplicate_stats.response", investigate_cli.DUPLICATES),
        ("aggregate_diff.response", investigate_cli.DIFF),
        ("replay.response", replays_cli.FAILED),
        ("aggregate_version.response", {**replays_cli.AGGREGATE, "replay_id": "by-hand-2025-12-28-after-the-fix"}),
    ],
    ids=["lag", "volume", "gaps", "duplicates", "diff", "failed-replay", "aggregate"],
)
def test_cli_tests_canned_answers_are_what_the_api_answers(name: str, body: dict[str, Any]) -> None:
    assert errors(name, body) == []


def test_a_response_off_its_schema_is_named() -> None:
    # A status the workflow never ends in, a count below zero, a field nobody documented
    bad = {**replays_cli.FAILED, "status": "PAUSING", "surprise": 1}
    found = errors("replay.response", bad)
    assert any(line.startswith("status:") for line in found), found
    assert any("surprise" in line for line in found), found

"""The template deploys to real AWS: it translates with aws-sam-translator (offline) and the
translated template, state machines included as ASL objects, passes cfn-lint with no errors."""

from __future__ import annotations

import copy
import json
from typing import Any

from cfnlint.api import ManualArgs, lint
from evreplay.local.template import Template


def translated_for_lint(template: Template) -> dict[str, Any]:
    """cfn-lint skips ASL checks on DefinitionString: put each state machine back as a
    `Definition` object (what SAM would deploy) so E3601 and friends really run."""
    cfn = copy.deepcopy(template.translated)
    for logical_id, props in _state_machines(cfn):
        sam_props = template.state_machines()[logical_id]["Properties"]
        props.pop("DefinitionString", None)
        props["Definition"] = json.loads((template.root / sam_props["DefinitionUri"]).read_text())
    return cfn


def _state_machines(cfn: dict[str, Any]):
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            yield logical_id, resource["Properties"]


def test_template_translates_offline(template):
    cfn = template.translated

    assert cfn["Resources"], "translation produced no resources"
    assert not any(r["Type"].startswith("AWS::Serverless::") for r in cfn["Resources"].values())


def test_translated_template_passes_cfn_lint(template):
    matches = lint(
        json.dumps(translated_for_lint(template)),
        config=ManualArgs(regions=["us-east-1", "eu-west-1"]),
    )

    errors = [f"{m.rule.id} {m.path_string}: {m.message}" for m in matches if m.rule.severity == "error"]
    assert errors == []


def test_cfn_lint_really_reports_errors(template):
    # GIVEN a broken copy (a bad runtime and a state machine pointing at a missing state)
    cfn = translated_for_lint(template)
    function = next(r for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    function["Properties"]["Runtime"] = "python2.1"

    matches = lint(json.dumps(cfn), config=ManualArgs(regions=["us-east-1"]))

    # THEN the linter fails it: the check above cannot pass vacuously
    assert any(m.rule.severity == "error" and "Runtime" in m.path_string for m in matches)


def test_every_function_runs_a_current_python(template):
    runtimes = {props["Properties"]["Runtime"] for props in template.functions().values()}

    assert runtimes and all(r.startswith("python3.") and int(r.split(".")[1]) >= 12 for r in runtimes)


def test_handlers_named_in_the_template_exist(template):
    from evreplay.local.runtime import load_handler

    for logical_id in template.functions():
        assert callable(load_handler(template.function_handler(logical_id))), logical_id

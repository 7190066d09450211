"""Each function's init (its handler module imported in a fresh interpreter, with only the variables
the template gives that function): the clients it builds there, so its first invocation does not, and
whether it loads jsonschema, which only the functions whose requests validate need
(benchmarks/README.md, cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from evreplay.core import schemas
from evreplay.local import offline
from evreplay.local.template import Template

# What a function builds at init: the AWS services of its clients, and whether its requests validate
# (then every input schema's validator is built at init, jsonschema with them).
EXPECTED = {
    "IngestFunction": ({"s3", "dynamodb"}, True),
    "ReplayApiFunction": ({"dynamodb", "stepfunctions"}, True),
    "AggregatesApiFunction": ({"dynamodb"}, True),
    "InvestigationApiFunction": ({"dynamodb"}, True),
    "ReconcileApiFunction": ({"stepfunctions", "s3"}, True),
    "ProcessorFunction": ({"s3", "dynamodb"}, True),
    "ValidateReplayFunction": ({"dynamodb"}, True),
    "ReplayRecorderFunction": ({"dynamodb"}, True),
    "ReplayPageFunction": ({"dynamodb", "sqs"}, False),
    "ReplayEntitiesFunction": ({"dynamodb", "sqs"}, False),
    "PlanReplayFunction": ({"dynamodb", "s3"}, False),
    "SummarizeReplayFunction": ({"dynamodb"}, False),
    # One module for the three reconcile tasks: the list validates the request; only the partition
    # task is granted the index.
    "ReconcileListFunction": ({"s3"}, True),
    "ReconcilePartitionFunction": ({"s3", "dynamodb"}, True),
    "ReconcileSummaryFunction": ({"s3"}, True),
}

# The services asked of evreplay.core.clients (every client of ours is made there) while importing.
_PROBE = r"""
import importlib, json, sys
from evreplay.core import clients, schemas
asked = set()
process_wide = clients.client
clients.client = lambda service: asked.add(service) or process_wide(service)
module_name, _, attribute = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module_name), attribute)
print(json.dumps({
    "callable": callable(handler),
    "clients": sorted(asked),
    "jsonschema": "jsonschema" in sys.modules,
    "validators": schemas.validator.cache_info().currsize,
}))
"""

TEMPLATE = Template()


def init_of(logical_id: str) -> dict[str, object]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
        **offline.offline_environment(TEMPLATE.region),
        **TEMPLATE.function_environment(logical_id),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    handler = TEMPLATE.function_handler(logical_id)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, handler], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{logical_id} ({handler}):\n{result.stderr[-3000:]}"
    return dict(json.loads(result.stdout.splitlines()[-1]))


def test_every_function_of_the_template_is_expected() -> None:
    assert set(EXPECTED) == set(TEMPLATE.functions())


@pytest.mark.parametrize("logical_id", sorted(EXPECTED))
def test_function_init_builds_its_clients_and_loads_jsonschema_only_if_it_validates(logical_id: str) -> None:
    services, validates = EXPECTED[logical_id]

    init = init_of(logical_id)

    assert init["callable"] is True
    assert set(init["clients"]) == services  # type: ignore[call-overload]
    assert init["jsonschema"] is validates
    # Every input schema's validator already built, or none.
    assert init["validators"] == (len(schemas.input_names()) if validates else 0)

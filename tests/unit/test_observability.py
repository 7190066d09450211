"""evreplay.core.observability: the Tracer is X-Ray in Lambda (botocore patched, nothing else) and a no-op
without importing the X-Ray SDK when tracing is off (its import builds botocore clients: cold start)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from evreplay.core import observability

_REPORT = """
import json, sys
from evreplay.core.observability import tracer

@tracer.capture_method
def add(a, b):
    return a + b

@tracer.capture_lambda_handler
def handler(event, context):
    if event.get("fail"):
        raise ValueError("boom")
    return {"ok": add(1, 2)}

outcome = {"result": handler({}, None)}
try:
    handler({"fail": True}, None)
except ValueError as error:
    outcome["raised"] = str(error)
patcher = sys.modules.get("aws_xray_sdk.core.patcher")
print(json.dumps({
    **outcome,
    "disabled": bool(tracer.disabled),
    "provider": type(tracer.provider).__module__,
    "xray_core_imported": "aws_xray_sdk.core" in sys.modules,
    "patched": sorted(patcher._PATCHED_MODULES) if patcher else None,
}))
"""


def _run(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _REPORT], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _environment(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED")}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_tracing_off_records_nothing_and_never_imports_the_xray_sdk():
    # GIVEN tracing disabled, as in the local stack and the tests
    env = _environment(POWERTOOLS_TRACE_DISABLED="true")

    # WHEN a traced handler runs, once returning and once raising
    report = _run(env)

    # THEN it behaves as the undecorated function, and the X-Ray SDK's core was never loaded
    assert report["result"] == {"ok": 3}
    assert report["raised"] == "boom"
    assert report["disabled"] is True
    assert report["provider"] == "evreplay.core.observability"
    assert report["xray_core_imported"] is False


def test_tracing_off_outside_lambda_even_without_the_flag():
    report = _run(_environment())

    assert report["disabled"] is True
    assert report["xray_core_imported"] is False


def test_tracing_on_in_lambda_uses_xray_and_patches_botocore_only(tmp_path: Path):
    # GIVEN what Lambda sets for a function with Tracing: Active (the daemon address is loopback:
    # nothing is sent, there is no trace context outside an invocation)
    env = _environment(
        LAMBDA_TASK_ROOT=str(tmp_path),
        AWS_LAMBDA_FUNCTION_NAME="evreplay-test",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
    )

    report = _run(env)

    assert report["disabled"] is False
    assert str(report["provider"]).startswith("aws_xray_sdk")
    assert report["patched"] == ["botocore"]
    assert report["result"] == {"ok": 3}
    assert report["raised"] == "boom"


def test_no_tracing_provider_segments_accept_everything():
    provider = observability.NoTracing()

    with provider.in_subsegment("## sync") as segment:
        segment.put_annotation("k", 1)
        segment.put_metadata("k", {"v": 1})
        segment.add_exception(ValueError("x"), [])

    async def use_async() -> str:
        async with provider.in_subsegment_async("## async") as segment:
            segment.put_annotation("k", True)
        return "done"

    assert asyncio.run(use_async()) == "done"

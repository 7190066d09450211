"""The Lambda bundle never needs the CLI or the local stack: importing every handler the template
names pulls in neither evreplay.cli, evreplay.local, moto nor rich."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from evreplay.local.template import Template

_CHECK = """
import importlib, json, sys
for module in json.loads(sys.argv[1]):
    importlib.import_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("moto", "rich")
                        or m.split(".")[:2] in (["evreplay", "cli"], ["evreplay", "local"]))))
"""


def test_handlers_import_neither_the_cli_nor_the_local_stack() -> None:
    template = Template()
    modules = sorted({template.function_handler(f).rpartition(".")[0] for f in template.functions()})
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **template.merged_environment(),
        "AWS_DEFAULT_REGION": template.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, json.dumps(modules)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []

"""Cold start of the built bundle with and without bytecode: every function's handler module imported
from what `sam build` ships, with the Lambda's Python, as Lambda imports it.

    python benchmarks/bench_bytecode.py [--repeats 3] [--python /path/to/python3.12]

Lambda's /var/task (the function's code) and /opt (its layers) are read-only, so a bundle without
__pycache__ compiles every module it imports from source on every cold start; PYTHONDONTWRITEBYTECODE=1
stands for that here. The bundle is built once by functions/bundle.py for this machine's architecture
(the code and the layer, compiled with --python), and a copy without any __pycache__ is the baseline
(the bundle as it was built before). boto3 is installed alone by that Python's pip, with its bytecode,
as the runtime has it. Each import is a fresh `python -S` whose only packages are the function's code,
the layer and boto3, with the function's environment from the template and Lambda's variables
(Tracing Active). The runs are interleaved; the median of --repeats is shown, CPU time of the child.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from _common import TEMPLATE, machine

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
_PROBE = """
import importlib, json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
importlib.import_module(sys.argv[1])
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


def lambda_python(given: str | None) -> str:
    """A Python 3.12 (the Lambda runtime's): --python, EVREPLAY_PYTHON312, PATH or pyenv."""
    candidates = [
        given,
        os.environ.get("EVREPLAY_PYTHON312"),
        shutil.which("python3.12"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12"))),
    ]
    for candidate in filter(None, candidates):
        version = [candidate, "-c", "import sys; print(sys.version_info[:2])"]
        probe = subprocess.run(version, capture_output=True, text=True)
        if probe.stdout.strip() == "(3, 12)":
            return candidate
    raise SystemExit("no Python 3.12: pass --python or set EVREPLAY_PYTHON312")


def build(root: Path, python: str) -> dict[str, Path]:
    """The compiled bundle (code, layer, boto3) and its copy without bytecode; paths by variant."""
    bundle = [sys.executable, str(FUNCTIONS / "bundle.py")]
    arch = os.uname().machine
    compiled, plain = root / "compiled", root / "plain"
    subprocess.run([*bundle, "code", str(compiled / "code"), "--compile-with", python], check=True)
    layer = [*bundle, "dependencies", str(compiled / "layer"), "--architecture", arch, "--compile-with", python]
    subprocess.run(layer, check=True)
    shutil.copytree(compiled, plain, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(root / "boto3")]
    subprocess.run([*pip, f"boto3=={metadata.version('boto3')}"], check=True)
    return {"no bytecode (before)": plain, "bytecode (now)": compiled}


def environment(logical_id: str, variant: Path, boto3: Path) -> dict[str, str]:
    return {
        **TEMPLATE.function_environment(logical_id),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join([str(variant / "code"), str(variant / "layer"), str(boto3)]),
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task and /opt are read-only on Lambda
        "LAMBDA_TASK_ROOT": str(variant / "code"),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": TEMPLATE.region,
        "AWS_DEFAULT_REGION": TEMPLATE.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", help="the Lambda's Python (3.12)")
    args = parser.parse_args()
    python = lambda_python(args.python)
    functions = sorted(TEMPLATE.functions())
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        variants = build(Path(scratch), python)
        boto3 = Path(scratch) / "boto3"
        for _ in range(args.repeats):
            for logical_id in functions:
                module = TEMPLATE.function_handler(logical_id).rpartition(".")[0]
                for label, variant in variants.items():
                    env = environment(logical_id, variant, boto3)
                    command = [python, "-S", "-c", _PROBE, module]
                    out = subprocess.run(command, env=env, cwd=variant / "code", capture_output=True, text=True)
                    if out.returncode:
                        raise SystemExit(f"{logical_id} ({label}) failed:\n{out.stderr[-3000:]}")
                    samples.setdefault((logical_id, label), []).append(json.loads(out.stdout.splitlines()[-1])["cpu"])
    print(f"bundle cold start (handler import, CPU ms), {python}, median of {args.repeats}; {machine()}")
    labels = list(variants)
    print(f"{'function':<28}" + "".join(f"{label:>22}" for label in labels) + f"{'ratio':>8}")
    ratios = []
    for logical_id in functions:
        before, now = (statistics.median(samples[(logical_id, label)]) for label in labels)
        ratios.append(now / before)
        print(f"{logical_id:<28}{before * 1000:>22.0f}{now * 1000:>22.0f}{now / before:>8.2f}")
    print(f"\nratio: with bytecode / without, per function; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()

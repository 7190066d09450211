"""Cold start: each handler module's import time and peak memory in a fresh interpreter,
against `import boto3` measured the same way in the same run.

    python benchmarks/bench_cold_start.py [--repeats 5]

Handlers come from template.yaml (every function's Handler). Target (issue 6): import time
<= 2x `import boto3`. Each measurement is a new `python -c` process: the median of --repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from _common import TEMPLATE, machine

_PROBE = """
import json, resource, sys, time
started = time.perf_counter()
import importlib
importlib.import_module(sys.argv[1])
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def measure(module: str, repeats: int, env: dict[str, str]) -> tuple[float, int]:
    seconds, rss = [], []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, module], capture_output=True, text=True, env=env, check=True
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        seconds.append(result["seconds"])
        rss.append(result["max_rss_kib"])
    return statistics.median(seconds), int(statistics.median(rss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, **TEMPLATE.merged_environment(), "POWERTOOLS_TRACE_DISABLED": "true"}
    modules = sorted({TEMPLATE.function_handler(f).rpartition(".")[0] for f in TEMPLATE.functions()})

    base_s, base_rss = measure("boto3", args.repeats, env)
    print(f"cold start (module import in a fresh interpreter), median of {args.repeats}; {machine()}")
    print(f"{'module':<40}{'import ms':>10}{'ratio':>8}{'peak RSS MiB':>14}")
    print(f"{'boto3 (baseline)':<40}{base_s * 1000:>10.0f}{1.0:>8.2f}{base_rss / 1024:>14.1f}")
    for module in modules:
        seconds, rss = measure(module, args.repeats, env)
        print(f"{module:<40}{seconds * 1000:>10.0f}{seconds / base_s:>8.2f}{rss / 1024:>14.1f}")


if __name__ == "__main__":
    main()

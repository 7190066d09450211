"""Cold start: each handler module's import time and peak memory in a fresh interpreter,
against `import boto3` measured the same way in the same run.

    python benchmarks/bench_cold_start.py [--repeats 5] [--profile MODULE]

Handlers come from template.yaml (every function's Handler). Target (issue 6): import time
<= 2x `import boto3`. Each measurement is a new `python -c` process; the runs are interleaved
(every module once per round) and the median of --repeats is shown, as wall time and as the
process's CPU time (steadier on a shared machine). Importing a handler module is its whole init
phase: it builds its clients, resolver and stores at module scope, as Lambda runs them once per
execution environment. Each handler also gets its own floor (issue 18): boto3 plus exactly the
clients that handler creates at init (found by importing it once in a separate process with
botocore's client creation recorded), created with the same config as evreplay.core.clients, in
the same condition; target: every handler <= 1.15x its floor.

Two conditions, both with the template's environment:
- tracing off: POWERTOOLS_TRACE_DISABLED=true, outside Lambda (the local stack, the tests);
- Lambda: what the runtime sets for a function with `Tracing: Active` (LAMBDA_TASK_ROOT, the
  function name, an X-Ray daemon address; nothing is sent at import), so the X-Ray SDK loads.

`--profile MODULE` prints the slowest imports of one module (`python -X importtime`), in the
Lambda condition, instead of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

from _common import TEMPLATE, machine

# Peak memory is VmHWM, the high-water mark of this process's own address space: ru_maxrss would
# also carry the parent's size at fork into the child.
_PROBE = """
import json, sys, time
wall, cpu = time.perf_counter(), time.process_time()
exec(sys.argv[1])
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"wall": wall, "cpu": cpu, "max_rss_kib": peak}))
"""

BASELINE = "import boto3"
BASELINE_LABEL = "import boto3 (baseline)"
FLOOR = "import boto3; s = boto3.session.Session(); s.client('s3'); s.client('dynamodb')"
EMPTY = "pass"

# Which clients a module creates at import: botocore's create_client recorded, nothing else changed.
_DISCOVER = """
import json, sys, botocore.session
created = []
original = botocore.session.Session.create_client
def create_client(self, service_name, *args, **kwargs):
    created.append(service_name)
    return original(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = create_client
__import__(sys.argv[1])
print(json.dumps(created))
"""


def floor_code(services: list[str]) -> str:
    """boto3 and these clients, one session, the config evreplay.core.clients uses."""
    made = "; ".join(f"s.client({name!r}, config=c)" for name in services)
    return (
        "import boto3; from botocore.config import Config; s = boto3.session.Session(); "
        "c = Config(retries={'mode': 'standard', 'max_attempts': 8}, connect_timeout=5, read_timeout=30, "
        f"max_pool_connections=32); {made}"
    )


def clients_created(module: str, env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _DISCOVER, module], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"importing {module} failed:\n{out.stderr[-3000:]}")
    return list(dict.fromkeys(json.loads(out.stdout.strip().splitlines()[-1])))


def environments(task_root: str) -> dict[str, dict[str, str]]:
    base = {**os.environ, **TEMPLATE.merged_environment()}
    for name in (
        "LAMBDA_TASK_ROOT",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_XRAY_DAEMON_ADDRESS",
        "POWERTOOLS_TRACE_DISABLED",
    ):
        base.pop(name, None)
    return {
        "tracing off": {**base, "POWERTOOLS_TRACE_DISABLED": "true"},
        "Lambda": {
            **base,
            "LAMBDA_TASK_ROOT": task_root,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            # Loopback: the SDK only needs an address; it sends nothing while importing.
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        },
    }


def probe(code: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _PROBE, code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{code!r} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def profile(module: str, env: dict[str, str], top: int = 25) -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, env=env
    )
    rows = []
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, cumulative, name = line.removeprefix("import time:").split("|")
            rows.append((int(cumulative), int(own), name.rstrip()))
    print(f"python -X importtime -c 'import {module}': slowest {top} (ms, cumulative / self)")
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        print(f"{cumulative / 1000:9.1f}{own / 1000:9.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", metavar="MODULE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as task_root:
        envs = environments(task_root)
        if args.profile:
            profile(args.profile, envs["Lambda"])
            return
        modules = sorted({TEMPLATE.function_handler(f).rpartition(".")[0] for f in TEMPLATE.functions()})
        rows = [("python, nothing imported", EMPTY), (BASELINE_LABEL, BASELINE)]
        rows.append(("boto3 + S3 and DynamoDB clients", FLOOR))
        floors: dict[str, str] = {}
        for module in modules:
            services = clients_created(module, envs["Lambda"])
            floors[module] = label = f"  floor: boto3 + {', '.join(services) or 'no client'}"
            if label not in dict(rows):
                rows.append((label, floor_code(services)))
        rows += [(module, f"import {module}") for module in modules]
        samples: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
        for _ in range(args.repeats):
            for condition, env in envs.items():
                for label, code in rows:
                    samples[(condition, label)].append(probe(code, env))

    def median(condition: str, label: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[(condition, label)])

    print(f"cold start (init in a fresh interpreter), median of {args.repeats}; {machine()}")
    for condition in envs:
        base_wall, base_cpu = median(condition, BASELINE_LABEL, "wall"), median(condition, BASELINE_LABEL, "cpu")
        empty_rss = median(condition, rows[0][0], "max_rss_kib")
        print(f"\n{condition}")
        print(
            f"{'':<52}{'wall ms':>9}{'ratio':>7}{'CPU ms':>9}{'ratio':>7}{'peak RSS MiB':>14}{'above python':>14}"
            f"{'CPU vs own floor':>18}{'wall vs floor':>15}"
        )
        for label, _ in rows:
            wall, cpu = median(condition, label, "wall"), median(condition, label, "cpu")
            rss = median(condition, label, "max_rss_kib")
            own = ""
            if label in floors:
                floor_wall, floor_cpu = (
                    median(condition, floors[label], "wall"),
                    median(condition, floors[label], "cpu"),
                )
                verdict = "ok" if cpu / floor_cpu <= 1.15 else "OVER"
                own = f"{cpu / floor_cpu:>13.2f} {verdict:<4}{wall / floor_wall:>15.2f}"
            print(
                f"{label:<52}{wall * 1000:>9.0f}{wall / base_wall:>7.2f}{cpu * 1000:>9.0f}{cpu / base_cpu:>7.2f}"
                f"{rss / 1024:>14.1f}{(rss - empty_rss) / 1024:>14.1f}{own}"
            )
    print(
        "\nratio: time / `import boto3` in the same condition; vs own floor: the handler's time / boto3 plus "
        "the clients it creates (target <= 1.15); peak RSS: VmHWM of the process"
    )


if __name__ == "__main__":
    main()

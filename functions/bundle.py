"""Build the Lambda deployment bundle (run by functions/Makefile, which `sam build` runs).

    python bundle.py code DIR [--python-version 3.12] [--compile-with PYTHON]
        DIR/evreplay: the package as Lambda imports it, without the CLI (evreplay/cli) and the
        local stack (evreplay/local), which no function imports and which need moto and rich.
    python bundle.py dependencies DIR [--architecture aarch64|x86_64] [--python-version 3.12] [--compile-with PYTHON]
        DIR: requirements.txt resolved for the Lambda platform (wheels only, as Lambda cannot
        build anything), minus what the Lambda runtime already has (boto3 and its dependencies):
        aws-xray-sdk depends on botocore, and a bundled botocore would shadow the runtime's and
        no longer match the runtime's boto3.

Both compile what they copy to bytecode with the Lambda's Python (--python-version): /var/task and
/opt are read-only on Lambda, so a bundle without __pycache__ compiles every module it imports from
source on every cold start (benchmarks/README.md, cold start: 25-45 % of a handler's import). The
interpreter is --compile-with, or else `pythonX.Y` on PATH; without one the bundle is built without
bytecode and says so. Checked-hash .pyc files: valid whatever the file times become in the zip.

Standard library only, and valid on any Python 3.9+: it runs with the deployer's `python3`, which
need not be the Lambda's Python (pip picks the wheels for --python-version and --architecture).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "evreplay"
# Sub-packages no function imports (tests/build/test_bundle.py checks the import closure).
NOT_IN_LAMBDA = ("cli", "local")
# The Lambda Python runtime ships boto3 with its dependency closure; the bundle uses those.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"})
# Amazon Linux 2023 (the python3.12 runtime) has glibc 2.34: every manylinux tag up to it runs there.
MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34")


class BundleError(RuntimeError):
    """The bundle cannot be built as asked."""


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def build_code(target: Path) -> list[str]:
    """Copy the package without the parts Lambda never imports; return the copied files."""
    destination = target / PACKAGE
    if destination.exists():
        shutil.rmtree(destination)
    ignore_top = shutil.ignore_patterns(*NOT_IN_LAMBDA, "__pycache__", "*.pyc")
    ignore_below = shutil.ignore_patterns("__pycache__", "*.pyc")
    source = HERE / PACKAGE

    def ignore(directory: str, names: list[str]) -> set[str]:
        return set((ignore_top if Path(directory) == source else ignore_below)(directory, names))

    shutil.copytree(source, destination, ignore=ignore)
    return sorted(str(path.relative_to(target)) for path in destination.rglob("*") if path.is_file())


def compiler(python_version: str, explicit: str | None) -> str | None:
    """The interpreter that compiles the bundle: `explicit` (which must be that Python), else
    `python<version>` on PATH if it really is that Python, else None."""
    candidate = explicit or shutil.which(f"python{python_version}")
    if candidate is None:
        return None
    try:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        found = probe.stdout.strip() if probe.returncode == 0 else None
    except OSError:
        found = None
    if found == python_version:
        return candidate
    if explicit:
        reported = found or "an error"
        raise BundleError(f"--compile-with {explicit} is not a Python {python_version} (it reported {reported})")
    return None  # e.g. a pyenv shim for a version that is installed but not selected


def compile_tree(root: Path, python: str | None) -> str:
    """Compile every .py under root with `python`; a line saying what was done."""
    if python is None:
        return f"no Python to compile {root} with: no bytecode, every cold start compiles from source"
    command = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "checked-hash", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise BundleError(f"compileall failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return f"compiled {root} with {python}"


def platform_options(architecture: str, python_version: str) -> list[str]:
    if architecture not in ("aarch64", "x86_64"):
        raise BundleError(f"architecture must be aarch64 or x86_64, got {architecture!r}")
    if not re.fullmatch(r"3\.\d+", python_version):
        raise BundleError(f"python version must look like 3.12, got {python_version!r}")
    options = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    for tag in MANYLINUX:
        options += ["--platform", f"{tag}_{architecture}"]
    cp = "cp" + python_version.replace(".", "")
    return [*options, "--abi", cp, "--abi", "abi3", "--abi", "none"]


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    result = subprocess.run(command, check=False)
    if result.returncode:
        raise BundleError(f"pip failed ({result.returncode}): {' '.join(command)}")


def resolve(requirements: Path, options: list[str]) -> list[tuple[str, str]]:
    """(name, version) of every distribution requirements.txt needs on the Lambda platform."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        _pip(
            "install", "--dry-run", "--ignore-installed", "--report", str(report),
            "--target", str(Path(scratch) / "unused"), *options, "-r", str(requirements),
        )  # fmt: skip
        resolved = json.loads(report.read_text(encoding="utf-8"))
    return sorted((item["metadata"]["name"], item["metadata"]["version"]) for item in resolved["install"])


def build_dependencies(target: Path, architecture: str, python_version: str) -> tuple[list[str], list[str]]:
    """Install requirements.txt for the Lambda platform into `target`; return (installed, left out)."""
    options = platform_options(architecture, python_version)
    pins = resolve(HERE / "requirements.txt", options)
    installed = [f"{name}=={version}" for name, version in pins if normalized(name) not in RUNTIME_PROVIDED]
    left_out = [f"{name}=={version}" for name, version in pins if normalized(name) in RUNTIME_PROVIDED]
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    # --no-deps: the closure is already resolved above; --no-compile: .pyc files of the build
    # machine's Python would be dead weight for the Lambda's (compile_tree uses the Lambda's).
    _pip("install", "--no-deps", "--no-compile", "--target", str(target), *options, *installed)
    return installed, left_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    code = commands.add_parser("code", help="the evreplay package, without the CLI and the local stack")
    code.add_argument("target", type=Path)
    dependencies = commands.add_parser("dependencies", help="requirements.txt for the Lambda platform")
    dependencies.add_argument("target", type=Path)
    dependencies.add_argument("--architecture", default="aarch64")
    for command in (code, dependencies):
        command.add_argument("--python-version", default="3.12")
        command.add_argument("--compile-with", default=None, help="the Lambda's Python (default: pythonX.Y on PATH)")
    args = parser.parse_args(argv)
    try:
        python = compiler(args.python_version, args.compile_with or None)
        if args.command == "code":
            files = build_code(args.target)
            print(f"bundle.py: {len(files)} files of {PACKAGE} (without {', '.join(NOT_IN_LAMBDA)}) -> {args.target}")
            print(f"bundle.py: {compile_tree(args.target / PACKAGE, python)}")
        else:
            installed, left_out = build_dependencies(args.target, args.architecture, args.python_version)
            print(f"bundle.py: {' '.join(installed)} -> {args.target}")
            print(f"bundle.py: left to the Lambda runtime: {' '.join(left_out) or 'nothing'}")
            print(f"bundle.py: {compile_tree(args.target, python)}")
    except BundleError as exc:
        print(f"bundle.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

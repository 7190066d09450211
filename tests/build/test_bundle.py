"""What `sam build` ships imports and wires in Lambda.

A real `sam build` of template.yaml (the SAM CLI from .venv-sam, which scripts/test installs) runs
twice: for the template's platform (python3.12 on arm64: the bundle that deploys, checked file by
file) and for this machine's (x86_64: the same Makefile and requirements, so every handler can be
imported here). Each handler is then imported in a fresh Python 3.12 whose only packages are boto3
(the Lambda runtime's part) and the built function plus its layer, with that function's environment
from the template and Lambda's own variables (tracing on, so the X-Ray SDK loads too).

Python 3.12 is the Lambda runtime's: found on PATH, in pyenv, or at EVREPLAY_PYTHON312. The builds
compile their bytecode with it (LAMBDA_PYTHON_BIN). Without one these tests fail, saying how to get
one; they are never skipped.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from evreplay.local.template import Template, project_root
from packaging.requirements import Requirement

pytestmark = pytest.mark.xdist_group("bundle")

ROOT = project_root()
FUNCTIONS_DIR = ROOT / "functions"
REQUIREMENTS = FUNCTIONS_DIR / "requirements.txt"
LAYER = "DependenciesLayer"
# What the Lambda Python runtime provides: boto3 and its dependencies (functions/bundle.py leaves them out).
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
# What only the CLI, the local stack and the tests use.
NEVER_IN_LAMBDA = {"moto", "rich", "aws-sam-translator", "pyyaml", "cfn-lint", "pytest"}
ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def same_requirements(specs: list[str]) -> set[tuple[str, frozenset[str], str]]:
    parsed = (Requirement(spec) for spec in specs)
    return {(normalized(r.name), frozenset(r.extras), str(r.specifier)) for r in parsed}


# ---------------------------------------------------------------------------- the source of truth
def test_requirements_are_pyprojects_dependencies_without_boto3() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies = [d for d in pyproject["project"]["dependencies"] if normalized(Requirement(d).name) != "boto3"]

    assert same_requirements(requirement_lines(REQUIREMENTS)) == same_requirements(dependencies)


def test_requirements_name_nothing_the_runtime_has_or_lambda_never_imports() -> None:
    names = {normalized(Requirement(line).name) for line in requirement_lines(REQUIREMENTS)}

    assert not names & (RUNTIME_PROVIDED | NEVER_IN_LAMBDA)


def test_the_makefile_builds_every_function_and_layer_for_the_templates_platform(template: Template) -> None:
    makefile = (FUNCTIONS_DIR / "Makefile").read_text(encoding="utf-8")
    # FUNCTIONS := A B \ (continued) C
    listed = set(makefile.split("FUNCTIONS :=", 1)[1].split("\n\n", 1)[0].replace("\\", " ").split())
    sam_resources = template.sam["Resources"]
    functions = {i for i, r in sam_resources.items() if r["Type"] == "AWS::Serverless::Function"}
    layers = {i for i, r in sam_resources.items() if r["Type"] == "AWS::Serverless::LayerVersion"}
    globals_function = template.sam["Globals"]["Function"]
    (architecture,) = globals_function["Architectures"]
    default = dict(re.findall(r"^(LAMBDA_\w+) \?= (\S+)$", makefile, re.M))

    assert listed == functions
    assert all(sam_resources[i]["Metadata"] == {"BuildMethod": "makefile"} for i in functions)
    assert layers == {LAYER} and f"build-{LAYER}:" in makefile
    assert default == {"LAMBDA_ARCHITECTURE": ARCHITECTURES[architecture], "LAMBDA_PYTHON": "3.12"}
    assert globals_function["Runtime"] == "python3.12"
    assert sam_resources[LAYER]["Properties"]["CompatibleArchitectures"] == [architecture]
    assert sam_resources[LAYER]["Metadata"]["BuildArchitecture"] == architecture


# ---------------------------------------------------------------------------- the real build
def sam_cli() -> str:
    venv = Path(os.environ.get("EVREPLAY_VENV", ".venv"))
    sam = (venv if venv.is_absolute() else ROOT / venv).with_name(f"{venv.name}-sam") / "bin" / "sam"
    if not sam.is_file():
        pytest.fail(f"no SAM CLI at {sam}: scripts/test installs it (scripts/sam-requirements.txt)")
    return str(sam)


def lambda_python() -> str:
    """A Python 3.12, the Lambda runtime's, or a failure that says how to get one."""
    candidates = [
        os.environ.get("EVREPLAY_PYTHON312"),
        shutil.which("python3.12"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12"))),
        "/usr/local/bin/python3.12",
        "/usr/bin/python3.12",
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    pytest.fail(
        "no Python 3.12 (the Lambda runtime's) to import the bundle with: install one (e.g. `pyenv install 3.12`, "
        "or your system's python3.12 package) or set EVREPLAY_PYTHON312 to its path"
    )


@dataclass(frozen=True)
class Build:
    directory: Path
    output: str


def sam_build(directory: Path, architecture: str | None) -> Build:
    """`sam build` of the repository's template into `directory`; None = the Makefile's default."""
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "LAMBDA_PYTHON_BIN": lambda_python()}
    env.pop("LAMBDA_ARCHITECTURE", None)
    if architecture:
        env["LAMBDA_ARCHITECTURE"] = architecture
    result = subprocess.run(
        [sam_cli(), "build", "--template-file", str(ROOT / "template.yaml"), "--build-dir", str(directory / "build")],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return Build(directory / "build", output)


@pytest.fixture(scope="module")
def deployed_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return sam_build(tmp_path_factory.mktemp("sam-lambda-platform"), None)


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return sam_build(tmp_path_factory.mktemp("sam-host-platform"), "x86_64")


@pytest.fixture(scope="module")
def runtime_boto3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 as the Lambda runtime has it (the version the suite runs with), alone in a folder."""
    target = tmp_path_factory.mktemp("runtime-boto3")
    pip = [lambda_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target)]
    subprocess.run(
        [*pip, f"boto3=={metadata.version('boto3')}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def distributions(site: Path) -> set[str]:
    names = set()
    for info in site.glob("*.dist-info/METADATA"):
        name = next(line for line in info.read_text(encoding="utf-8").splitlines() if line.startswith("Name:"))
        names.add(normalized(name.split(":", 1)[1].strip()))
    return names


def test_sam_build_builds_everything_with_its_dependencies(deployed_build: Build, template: Template) -> None:
    # the warning a build without dependencies printed, and the build names every function
    assert "requirements.txt file not found" not in deployed_build.output
    assert "Build Succeeded" in deployed_build.output
    built = {path.name for path in deployed_build.directory.iterdir() if path.is_dir()}
    assert built == set(template.functions()) | {LAYER}


def bytecode_of(source: str) -> str:
    """`evreplay/core/x.py` -> `evreplay/core/__pycache__/x.cpython-312.pyc` (the Lambda Python's)."""
    path = Path(source)
    return str(path.parent / "__pycache__" / f"{path.stem}.cpython-312.pyc")


def test_each_function_holds_only_the_code_lambda_imports_with_its_bytecode(
    deployed_build: Build, template: Template
) -> None:
    package = FUNCTIONS_DIR / "evreplay"
    sources = {
        str(path.relative_to(FUNCTIONS_DIR))
        for path in package.rglob("*")
        if path.is_file()
        and path.parts[len(package.parts)] not in ("cli", "local")
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
    }
    # Lambda's /var/task is read-only: without these every cold start compiles every module.
    expected = sources | {bytecode_of(source) for source in sources if source.endswith(".py")}
    for logical_id in template.functions():
        root = deployed_build.directory / logical_id
        files = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}

        assert files == expected, logical_id
    # checked-hash .pyc (PEP 552 flags 0b11): valid whatever times the zip gives the files
    pyc = deployed_build.directory / next(iter(template.functions())) / bytecode_of("evreplay/core/schemas/__init__.py")
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b11


def test_the_layer_holds_the_requirements_for_arm64_without_the_runtimes_boto3(deployed_build: Build) -> None:
    site = deployed_build.directory / LAYER / "python"
    installed = distributions(site)
    compiled = sorted(path.name for path in site.rglob("*.so"))

    assert {normalized(Requirement(line).name) for line in requirement_lines(REQUIREMENTS)} <= installed
    assert {"aws-xray-sdk", "rpds-py"} <= installed  # the tracer extra and jsonschema's compiled part
    assert not installed & (RUNTIME_PROVIDED | NEVER_IN_LAMBDA)
    # rpds-py and wrapt ship compiled code: it must be the Lambda's (aarch64, CPython 3.12)
    assert compiled and all("cpython-312-aarch64-linux-gnu" in name or "abi3" in name for name in compiled), compiled
    # and every module its bytecode for CPython 3.12 (/opt is read-only on Lambda too)
    sources = [path.relative_to(site) for path in site.rglob("*.py")]
    missing = [str(s) for s in sources if not (site / bytecode_of(str(s))).is_file()]
    assert sources and not missing, missing[:10]


# What a handler module loads: every module must come from the standard library, the function's
# code, its layer or the runtime's boto3; none from the CLI, the local stack, moto or rich.
_PROBE = r"""
import importlib, json, sys, sysconfig
module_name, _, attribute = sys.argv[1].rpartition(".")
handler = getattr(importlib.import_module(module_name), attribute)
allowed = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"], *sys.argv[2:]]
files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
print(json.dumps({
    "callable": callable(handler),
    "elsewhere": sorted(f"{name}: {path}" for name, path in files.items()
                        if path and not any(path.startswith(root) for root in allowed)),
    "forbidden": sorted(name for name in files if name.split(".")[0] in ("moto", "rich")
                        or name.split(".")[:2] in (["evreplay", "cli"], ["evreplay", "local"])),
    "tracer": "aws_xray_sdk" in sys.modules,
}))
"""


def lambda_environment(
    template: Template, logical_id: str, task_root: Path, layer: Path, boto3: Path
) -> dict[str, str]:
    """The function's variables from the template, plus what Lambda sets (tracing active)."""
    return {
        **template.function_environment(logical_id),
        "PATH": "/usr/bin:/bin",
        # Lambda's order: the function's code, then its layers, then the runtime's packages.
        "PYTHONPATH": os.pathsep.join([str(task_root), str(layer), str(boto3)]),
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": template.region,
        "AWS_DEFAULT_REGION": template.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # Loopback: the X-Ray SDK only needs an address; nothing is sent while importing.
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def test_every_handler_imports_with_only_boto3_and_its_bundle(
    host_build: Build, runtime_boto3: Path, template: Template
) -> None:
    python = lambda_python()
    layer = host_build.directory / LAYER / "python"
    for logical_id in template.functions():
        task_root = host_build.directory / logical_id
        roots = [str(task_root), str(layer), str(runtime_boto3)]
        result = subprocess.run(
            # -S: no site-packages at all; only PYTHONPATH's three folders and the standard library.
            [python, "-S", "-c", _PROBE, template.function_handler(logical_id), *roots],
            cwd=task_root,
            env=lambda_environment(template, logical_id, task_root, layer, runtime_boto3),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"{logical_id} ({template.function_handler(logical_id)}):\n{result.stderr[-3000:]}"
        )
        probe = json.loads(result.stdout.splitlines()[-1])

        assert probe == {"callable": True, "elsewhere": [], "forbidden": [], "tracer": True}, logical_id

"""checkov on what deploys (the translated template): no failed check outside the reviewed skip
list in .checkov.yaml, every skip with its reason, no stale skip.

checkov runs from its own venv through scripts/checkov (it pins an older boto3 than evreplay
needs); scripts/test installs it, and scripts/checkov installs it on first use otherwise. The scan
runs WITHOUT the skip list (from a directory that has no .checkov.yaml), so the test sees exactly
which checks the list hides, together with a deliberately broken bucket that checkov must fail.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from evreplay.local.template import Template

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".checkov.yaml"
# Generous: the first run on a fresh machine may install checkov's venv (~1-3 min).
CHECKOV_TIMEOUT = 600


def skip_list() -> dict[str, str]:
    """check id -> the reason written after it in .checkov.yaml."""
    reasons = {}
    for line in CONFIG.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^\s*-\s*(CKV2?_[A-Z0-9_]+)\s*(?:#\s*(.*))?$", line)
        if found:
            reasons[found.group(1)] = (found.group(2) or "").strip()
    return reasons


def broken_bucket_template(cfn: dict[str, Any]) -> dict[str, Any]:
    """The real bucket without encryption and with public access allowed: checkov must fail it."""
    bucket_id, bucket = next((i, r) for i, r in cfn["Resources"].items() if r["Type"] == "AWS::S3::Bucket")
    broken = json.loads(json.dumps(bucket))
    broken["Properties"].pop("BucketEncryption")
    broken["Properties"]["PublicAccessBlockConfiguration"] = {
        flag: False for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {bucket_id: broken}}


def checkov(directory: Path, *files: Path) -> dict[str, Any]:
    command = [
        str(ROOT / "scripts" / "checkov"),
        "--framework",
        "cloudformation",
        "--skip-download",
        "--output",
        "json",
    ]
    for file in files:
        command += ["--file", str(file)]
    result = subprocess.run(
        command, cwd=directory, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT, check=False
    )
    assert result.returncode in (0, 1), f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert isinstance(report, dict) and report["check_type"] == "cloudformation", result.stdout[:500]
    return report


def failures_by_file(report: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for failed in report["results"]["failed_checks"]:
        found.setdefault(Path(failed["file_path"]).name, set()).add((failed["check_id"], failed["resource"]))
    return found


def test_skip_list_is_what_checkov_reads_and_each_entry_has_a_reason() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    reasons = skip_list()

    assert set(config["skip-check"]) == set(reasons)
    assert {check for check, reason in reasons.items() if len(reason) < 20} == set(), "a skip without a reason"


@pytest.mark.slow
def test_checkov_fails_nothing_outside_the_skip_list(tmp_path: Path) -> None:
    # GIVEN the translated template and a broken copy of its bucket, scanned in one run (no skips)
    cfn = Template().translated
    (tmp_path / "translated.json").write_text(json.dumps(cfn, indent=1), encoding="utf-8")
    (tmp_path / "broken.json").write_text(json.dumps(broken_bucket_template(cfn), indent=1), encoding="utf-8")

    report = checkov(tmp_path, tmp_path / "translated.json", tmp_path / "broken.json")

    failures = failures_by_file(report)
    skipped = skip_list()
    real = failures.get("translated.json", set())
    print(
        f"\ncheckov {report['summary']['checkov_version']}: {report['summary']['passed']} passed, "
        f"{len(real)} failed on the translated template, all under {len(skipped)} skipped check ids"
    )
    # THEN the real template fails only skipped checks, and every skip still matches something
    assert sorted(f"{check} {resource}" for check, resource in real if check not in skipped) == []
    assert set(skipped) - {check for check, _ in real} == set(), "stale skips: remove them from .checkov.yaml"
    # AND checkov really fails a bucket without encryption or a public access block (control)
    assert {check for check, _ in failures.get("broken.json", set())} - set(skipped), "checkov passed a broken bucket"

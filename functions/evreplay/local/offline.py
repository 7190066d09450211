"""Keep local runs (the local stack, the tests, the benchmarks) away from any real AWS account.

Imports nothing from boto3: call `isolate()` before any client exists."""

from __future__ import annotations

import os

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Whatever the developer's shell holds must not send a local run to a real account.
DROPPED_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def offline_environment(region: str) -> dict[str, str]:
    """Fake credentials, a region, and no config or credentials files to leak endpoints, roles or SSO."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def isolate(region: str = "us-east-1") -> None:
    """Drop the shell's AWS identity and endpoint and set the offline environment in this process."""
    for name in (*DROPPED_VARIABLES, "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(offline_environment(region))

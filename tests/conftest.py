"""Test wiring shared by every tier.

The environment comes from template.yaml (every function's variables, resolved for the local
account), set once before any handler module is imported; each test then gets a fresh moto
with the template's bucket, tables and queues created from their template properties.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from evreplay.local import offline

# Never reach a real AWS account, whatever the developer's shell holds.
offline.isolate("us-east-1")
os.environ.update({"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})

import boto3  # noqa: E402
import pytest  # noqa: E402
from evreplay.core import clients  # noqa: E402
from evreplay.core.settings import reset_settings  # noqa: E402
from evreplay.local import moto_patches  # noqa: E402
from evreplay.local.deploy import deploy_storage  # noqa: E402
from evreplay.local.gateway import LocalGateway  # noqa: E402
from evreplay.local.stack import MOTO_CONFIG  # noqa: E402
from evreplay.local.template import Template  # noqa: E402
from moto import mock_aws  # noqa: E402

TEMPLATE = Template()
os.environ.update(TEMPLATE.merged_environment())
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
reset_settings()

# One session for the tests' own clients: a new session re-parses botocore's data files (~0.4 s).
SESSION = boto3.session.Session()


@dataclass
class Stack:
    """A fresh local deployment of the template's storage, and handles to look inside it."""

    template: Template
    s3: Any
    dynamodb: Any
    sqs: Any
    env: dict[str, str]
    gateway: LocalGateway

    @property
    def bucket(self) -> str:
        return self.env["RAW_BUCKET"]

    @property
    def index_table(self) -> str:
        return self.env["INDEX_TABLE"]

    def raw_keys(self) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def table_items(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
            items.extend(page["Items"])
        return items


@pytest.fixture
def template() -> Template:
    return TEMPLATE


@contextmanager
def deployed_stack() -> Iterator[Stack]:
    """A fresh moto with the template's storage deployed, for as long as the block runs."""
    # The same moto the local stack runs: atomic DynamoDB requests, per-item transaction rollback,
    # in-process Lambda (evreplay.local.moto_patches, pinned to its moto version).
    moto_patches.apply(TEMPLATE)
    with mock_aws(config=MOTO_CONFIG):
        clients.reset_clients()
        handles = {name: SESSION.client(name) for name in ("s3", "dynamodb", "sqs")}
        deploy_storage(TEMPLATE, handles)
        yield Stack(
            template=TEMPLATE,
            s3=handles["s3"],
            dynamodb=handles["dynamodb"],
            sqs=handles["sqs"],
            env=TEMPLATE.merged_environment(),
            gateway=LocalGateway(TEMPLATE),
        )


@pytest.fixture
def stack() -> Iterator[Stack]:
    with deployed_stack() as fresh:
        yield fresh

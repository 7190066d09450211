"""Test wiring shared by every tier.

The environment comes from template.yaml (every function's variables, resolved for the local
account), set once before any handler module is imported (by tests.stacks); each test then gets a fresh moto
with the template's bucket, tables and queues created from their template properties.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from evreplay.core.settings import reset_settings
from evreplay.local.template import Template

# Importing tests.stacks isolates the process from any AWS account and sets that environment.
from tests.stacks import TEMPLATE, Stack, deployed_stack

reset_settings()


@pytest.fixture
def template() -> Template:
    return TEMPLATE


@pytest.fixture
def stack() -> Iterator[Stack]:
    with deployed_stack() as fresh:
        yield fresh

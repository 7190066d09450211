"""Fault-injection fixtures (tests/faults.py) and what every fault test checks afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults import fast_retries, faults  # noqa: F401  (fixtures)
from tests.stacks import Stack, deployed_stack


@pytest.fixture(scope="module")
def module_stack() -> Iterator[Stack]:
    """One deployment for a whole module of fault cells (deploying costs ~0.5 s, a cell ~0.05 s).
    Cells stay independent: each uses its own entity, idempotency key and replay id."""
    with deployed_stack() as stack:
        yield stack

"""The replay workflow for real: statemachines/replay.asl.json run by moto's Step Functions
interpreter, its Lambda tasks invoked in-process (evreplay.local.moto_patches), against moto
DynamoDB and SQS filled through the real ingest API (POST /events via the local gateway). Messages
are read back off the replay queue.

`workflow(**parameters)` (tests/functional/conftest.py) deploys the template's functions and state machine, with template parameter
overrides (e.g. ReplayPageSize=10) applied to the functions' environment.
"""

from __future__ import annotations

import pytest

from tests.faults import fast_retries, faults  # noqa: F401  (fixtures for the fault tests here)
from tests.stacks import Destinations, Stack


@pytest.fixture
def destinations(stack: Stack) -> Destinations:
    return Destinations(stack)

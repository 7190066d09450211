"""Helpers for the processor tests: real events ingested through the API, replay messages built
from the real index rows (as the replay workflow would build them, docs/design.md §4.6), and the
processor run either on SQS-shaped events or through the local queue driver."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from evreplay.local.queue_driver import QueueDriver

from tests.stacks import PROCESSOR, Stack


@pytest.fixture
def driver(stack: Stack) -> Callable[..., QueueDriver]:
    (trigger,) = [t for t in stack.template.queue_triggers() if t.function == PROCESSOR]

    def _driver(retry_visibility_timeout: int | None = 0) -> QueueDriver:
        return QueueDriver(stack.template, stack.sqs, trigger, retry_visibility_timeout=retry_visibility_timeout)

    return _driver

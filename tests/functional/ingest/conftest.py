from __future__ import annotations

from typing import Any

import pytest

from tests.stacks import Stack


@pytest.fixture
def post(stack: Stack):
    def _post(body: Any, headers: dict[str, str] | None = None, path: str = "/events"):
        return stack.gateway.request("POST", path, body, headers=headers)

    return _post

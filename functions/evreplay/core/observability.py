"""Logger, Tracer and Metrics, created once for every function. Service name and metrics
namespace come from the template's POWERTOOLS_* variables.

The Tracer is built for what the process will actually do (benchmarks/README.md, cold start):
- tracing on (in Lambda with `Tracing: Active`): X-Ray, patching botocore only, the one library
  whose calls we make (patching every supported library also imports sqlite3, requests, ...);
- tracing off (POWERTOOLS_TRACE_DISABLED, or outside Lambda: the local stack, tests, the CLI):
  a provider that records nothing, so the X-Ray SDK is never imported. Importing it costs
  0.2-0.4 s even when disabled, because its recorder builds two botocore clients at import.
"""

from __future__ import annotations

import numbers
import traceback
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

TRACED_MODULES = ("botocore",)


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(
        self, exception: BaseException, stack: list[traceback.StackSummary], remote: bool = False
    ) -> None:
        pass


class NoTracing(BaseProvider):
    """The Tracer's provider when tracing is off: every segment is a no-op."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncGenerator[BaseSegment, None]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


def build_tracer() -> Tracer:
    # Powertools' own rule for "off" (POWERTOOLS_TRACE_DISABLED, not in Lambda, SAM local), so the
    # choice here never disagrees with the Tracer's; aws-lambda-powertools is pinned in pyproject.
    if Tracer._is_tracer_disabled():
        return Tracer(disabled=True, provider=NoTracing())
    return Tracer(patch_modules=TRACED_MODULES)


logger = Logger()
tracer = build_tracer()
metrics = Metrics()

"""Lambda handlers run in-process: resolve a template Handler string, call it with a fake
LambdaContext, the way the Lambda runtime would (minus the sandbox)."""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evreplay.local.template import ACCOUNT_ID

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class FakeLambdaContext:
    """What Powertools and our handlers read from a LambdaContext."""

    function_name: str
    timeout_seconds: int = 30
    memory_limit_in_mb: int = 512
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FairLock:
    """A lock taken in the order it was asked for. A plain Lock lets whichever waiter the scheduler
    wakes first take it, so under many clients some requests waited many turns (p99 latency)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self) -> FairLock:
        with self._guard:
            if not self._held:
                self._held = True
                return self
            turn = threading.Event()
            self._waiting.append(turn)
        try:
            turn.wait()  # the holder handed the lock over: it is ours
        except BaseException:  # interrupted while waiting: give up the place, or the lock if handed over
            with self._guard:
                if not turn.is_set():
                    self._waiting.remove(turn)
                    raise
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._held = False


_locks: dict[str, FairLock] = {}
_locks_guard = threading.Lock()


def function_lock(function_name: str) -> FairLock:
    """One lock per function: a Lambda execution environment runs one invocation at a time, and
    handlers keep per-invocation state at module scope (the Powertools resolver's current event,
    logger keys, metrics). Callers that may invoke one function from several threads hold it."""
    with _locks_guard:
        return _locks.setdefault(function_name, FairLock())


def load_handler(handler: str) -> Handler:
    """`evreplay.handlers.ingest.handler` -> the function object (imports its module once)."""
    module_name, _, attribute = handler.rpartition(".")
    module = importlib.import_module(module_name)
    function: Handler = getattr(module, attribute)
    return function


def invoke(handler: str, event: dict[str, Any], function_name: str, timeout_seconds: int = 30) -> Any:
    context = FakeLambdaContext(function_name=function_name, timeout_seconds=timeout_seconds)
    return load_handler(handler)(event, context)

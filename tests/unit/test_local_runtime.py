"""The local stack's per-function lock: one invocation at a time, taken in the order asked."""

from __future__ import annotations

import threading
import time

import pytest
from evreplay.local import runtime
from evreplay.local.runtime import FairLock, function_lock


def _wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_waiters_get_the_lock_in_the_order_they_asked_for_it() -> None:
    # GIVEN a held lock and 20 threads queuing for it one after another
    lock, order, inside = FairLock(), [], []
    lock.__enter__()

    def take(number: int) -> None:
        with lock:
            inside.append(number)
            assert len(inside) == 1, "one holder at a time"
            order.append(number)
            inside.pop()

    threads = []
    for number in range(20):
        thread = threading.Thread(target=take, args=(number,))
        thread.start()
        threads.append(thread)
        _wait_until(lambda n=number: len(lock._waiting) == n + 1)
    # WHEN the holder lets go
    lock.__exit__()
    for thread in threads:
        thread.join(5)
    # THEN they took it first come, first served, one at a time
    assert order == list(range(20))
    assert not lock._held and not lock._waiting


@pytest.mark.parametrize("handed_over", [False, True], ids=["while-waiting", "as-it-was-handed-over"])
def test_a_waiter_interrupted_gives_up_its_place_or_passes_the_lock_on(
    monkeypatch: pytest.MonkeyPatch, handed_over: bool
) -> None:
    # GIVEN a held lock, and a waiter whose wait is interrupted (Ctrl-C), maybe just as the holder
    # handed the lock over
    lock = FairLock()
    lock.__enter__()

    class Interrupted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            if handed_over:
                lock.__exit__()  # the holder lets go: this waiter is next, the lock is its
            raise KeyboardInterrupt

    monkeypatch.setattr(runtime.threading, "Event", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        lock.__enter__()
    monkeypatch.undo()

    # THEN the waiter left no place in the queue and holds nothing
    assert not lock._waiting
    assert lock._held is (not handed_over)
    if not handed_over:
        lock.__exit__()
    with lock:  # and the lock still works
        assert lock._held
    assert not lock._held


def test_an_exception_inside_releases_the_lock() -> None:
    lock = FairLock()
    with pytest.raises(ValueError), lock:
        raise ValueError("handler failed")
    with lock:
        pass


def test_one_lock_per_function_name() -> None:
    assert function_lock("IngestFunction") is function_lock("IngestFunction")
    assert function_lock("IngestFunction") is not function_lock("ReplayApiFunction")

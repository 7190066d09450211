"""run_batches: bounded, concurrent across keys, in order within a key, failures surfaced after the
batches in flight have finished."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from evreplay.core.clients import MAX_POOL_CONNECTIONS
from evreplay.replay.concurrency import DEFAULT_WORKERS, run_batches


class Recorder:
    """A `send` that takes a little time and records what ran, and how many ran at once."""

    def __init__(self, seconds: float = 0.01, fail_on: int | None = None) -> None:
        self.seconds = seconds
        self.fail_on = fail_on
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.started: list[int] = []
        self.finished: list[int] = []

    def __call__(self, batch: tuple[str | None, int]) -> int:
        _, number = batch
        with self.lock:
            self.started.append(number)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.seconds)
            if number == self.fail_on:
                raise RuntimeError(f"batch {number} failed")
            return number * 10
        finally:
            with self.lock:
                self.running -= 1
                self.finished.append(number)


def test_run_batches_results_in_input_order_with_the_bound_respected():
    send = Recorder()
    batches = [(None, n) for n in range(40)]

    results = run_batches(batches, send, max_workers=4)

    assert results == [n * 10 for n in range(40)]
    assert send.most_at_once == 4  # concurrent, and never more than the bound
    assert sorted(send.finished) == list(range(40))


def test_run_batches_keeps_order_within_a_key_and_overlaps_keys():
    send = Recorder(seconds=0.005)
    batches = [(f"entity-{n % 3}", n) for n in range(30)]

    results = run_batches(batches, send, max_workers=8, key=lambda batch: batch[0])

    assert results == [n * 10 for n in range(30)]
    by_key: dict[int, list[int]] = defaultdict(list)
    for number in send.started:
        by_key[number % 3].append(number)
    assert by_key == {k: list(range(k, 30, 3)) for k in range(3)}  # each key's batches in order
    assert send.most_at_once == 3  # one at a time per key, the three keys at once


def test_run_batches_one_key_runs_strictly_one_after_another():
    send = Recorder(seconds=0.002)

    run_batches([("group", n) for n in range(10)], send, max_workers=8, key=lambda batch: batch[0])

    assert send.started == list(range(10)) and send.most_at_once == 1


def test_run_batches_failure_raised_after_in_flight_batches_finish_and_nothing_new_starts():
    send = Recorder(seconds=0.02, fail_on=5)
    batches = [(None, n) for n in range(50)]

    with pytest.raises(RuntimeError, match="batch 5 failed"):
        run_batches(batches, send, max_workers=4)

    assert send.running == 0  # nothing still sending when the error surfaced
    assert sorted(send.started) == sorted(send.finished)
    assert len(send.started) < 50  # batches queued behind the failure were never started


def test_run_batches_failure_stops_the_rest_of_its_key():
    send = Recorder(seconds=0.002, fail_on=2)

    with pytest.raises(RuntimeError):
        run_batches([("group", n) for n in range(6)], send, max_workers=4, key=lambda batch: batch[0])

    assert send.started == [0, 1, 2]  # a later batch of the group is never sent past a failed one


def test_run_batches_one_worker_runs_in_the_calling_thread():
    threads: list[str] = []

    run_batches([1, 2, 3], lambda _: threads.append(threading.current_thread().name), max_workers=1)

    assert threads == [threading.current_thread().name] * 3


def test_run_batches_rejects_a_bound_below_one():
    with pytest.raises(ValueError, match="max_workers"):
        run_batches([1], lambda batch: batch, max_workers=0)


def test_clients_pool_holds_a_connection_per_send_worker():
    assert DEFAULT_WORKERS <= MAX_POOL_CONNECTIONS

"""Pacing (docs/design.md §4.13): the token bucket a paced replay carries from step to step keeps any
10-second window of arrivals within 1.1x the rate, whatever each step's send takes, and shares a rate
among workers in whole messages a second."""

from __future__ import annotations

import random

from evreplay.replay.fanout import paced_workers
from evreplay.replay.workflow import Pace


def simulate(rate: int, messages: int, seed: int, full: bool = True) -> tuple[list[float], float]:
    """A paced loop on a simulated clock: each step sends its quota (or less: duplicates skipped, a short
    page) over a random send time (arrivals spread across it), then the workflow waits the whole seconds the
    step asked for, plus a random transition lag, sometimes long (tokens then pile up to the bucket's size)."""
    rng = random.Random(seed)
    now = [1000.0]
    arrivals: list[float] = []
    state = None
    while len(arrivals) < messages:
        pace = Pace(rate, state, clock=lambda: now[0], full=full)
        sending = min(pace.quota if rng.random() < 0.9 else pace.quota // 3, messages - len(arrivals))
        started = now[0]
        send_time = rng.uniform(0.0, 0.5)
        arrivals += [started + send_time * (i + 1) / max(sending, 1) for i in range(sending)]
        now[0] += send_time
        pace.spent(sending, started)
        wait = pace.wait_seconds(step=1000)
        state = pace.state
        now[0] += wait + (rng.uniform(0.0, 0.1) if rng.random() < 0.9 else rng.uniform(0.5, 3.0))
    return arrivals, arrivals[-1] - arrivals[0]


def busiest(arrivals: list[float], window: float = 10.0) -> int:
    """The most arrivals in any closed window [t, t + window]."""
    best, start = 0, 0
    for end, at in enumerate(arrivals):
        while at - arrivals[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_any_ten_seconds_hold_at_most_eleven_seconds_of_the_rate():
    for seed in range(20):
        for rate in (1, 7, 50, 400):
            arrivals, _ = simulate(rate, rate * 40, seed)
            assert busiest(arrivals) <= 11 * rate, (seed, rate)


def test_a_bucket_filled_by_an_idle_spell_is_one_seconds_worth_at_most():
    # GIVEN instant sends and no lag (the tightest schedule), an idle spell of 5 s halfway
    rate, now, arrivals, state = 10, [0.0], [], None
    for step in range(30):
        pace = Pace(rate, state, clock=lambda: now[0])
        arrivals += [now[0]] * pace.quota
        pace.spent(pace.quota, now[0])
        state = pace.state
        now[0] += pace.wait_seconds(step=1000) + (5.0 if step == 10 else 0.0)

    # THEN no closed 10-second window holds more than 11 s of the rate, and some hold exactly that
    assert busiest(arrivals) == 11 * rate


def test_the_achieved_rate_is_near_the_requested_one():
    arrivals, span = simulate(50, 2000, seed=1)

    assert 0.4 * 50 <= len(arrivals) / span <= 1.1 * 50


def test_a_work_item_starts_with_an_empty_bucket():
    now = 5.0
    pace = Pace(10, None, clock=lambda: now, full=False)

    assert pace.quota == 0 and pace.wait_seconds(step=1000) == 1


def test_a_rate_is_shared_in_whole_messages_a_second_never_above_it():
    for rate in range(1, 300):
        for cap in (1, 3, 40):
            workers, each = paced_workers(rate, cap)
            assert 1 <= workers <= cap and each >= 1 and workers * each <= rate
    assert paced_workers(100, 40) == (33, 3) and paced_workers(5, 40) == (5, 1)

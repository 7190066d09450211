"""Time normalization (docs/design.md §2): one instant, one stored form; string order is time order."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from evreplay.core.times import InvalidTimestamp, format_utc, normalize, parse_rfc3339
from hypothesis import given
from hypothesis import strategies as st


def test_same_instant_with_different_offsets_normalizes_identically():
    forms = ["2025-12-28T22:59:59.250Z", "2025-12-28T23:59:59.250+01:00", "2025-12-28T17:29:59.250-05:30"]

    assert {normalize(form) for form in forms} == {"2025-12-28T22:59:59.250000Z"}


def test_fractions_are_fixed_width_microseconds():
    assert normalize("2025-01-01T00:00:00Z") == "2025-01-01T00:00:00.000000Z"
    assert normalize("2025-01-01T00:00:00.123456789+00:00") == "2025-01-01T00:00:00.123456Z"
    assert normalize("2025-01-01 00:00:00.5z") == "2025-01-01T00:00:00.500000Z"


def test_offset_crossing_midnight_changes_the_date():
    assert normalize("2025-01-01T00:30:00+01:00") == "2024-12-31T23:30:00.000000Z"


@pytest.mark.parametrize(
    "value",
    ["2025-12-28T23:59:59", "2025-12-28", "28/12/2025 10:00Z", "2025-12-28T25:00:00Z", "", "2025-12-28T10:00:00+2:00"],
)
def test_invalid_or_naive_timestamps_are_rejected(value):
    with pytest.raises(InvalidTimestamp):
        normalize(value)


def test_string_order_equals_time_order_across_offsets():
    rng = random.Random(7)
    instants = []
    for _ in range(500):
        hour = rng.randrange(0, 24)
        minute = rng.randrange(0, 60)
        offset_h = rng.randrange(-12, 13)
        offset_m = rng.choice([0, 30, 45])
        sign = "+" if offset_h >= 0 else "-"
        frac = rng.randrange(0, 1000)
        instants.append(
            f"2025-06-{rng.randrange(1, 29):02d}T{hour:02d}:{minute:02d}:{rng.randrange(60):02d}.{frac:03d}{sign}{abs(offset_h):02d}:{offset_m:02d}"
        )
    from evreplay.core.times import parse_rfc3339

    by_time = sorted(instants, key=parse_rfc3339)
    by_string = sorted(instants, key=normalize)

    assert [parse_rfc3339(v) for v in by_string] == [parse_rfc3339(v) for v in by_time]


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:59:59.999+01:00",
        "9999-12-31T23:59:59-00:01",
        "0000-01-01T00:00:00Z",
    ],
)
def test_times_outside_what_utc_can_hold_are_invalid_not_a_crash(value):
    # Valid RFC 3339, but the UTC instant is before year 1 or after 9999 (it was an OverflowError).
    with pytest.raises(InvalidTimestamp):
        normalize(value)


def test_other_scripts_digits_are_rejected():
    with pytest.raises(InvalidTimestamp, match="not an RFC 3339"):
        normalize("\u0662\u0660\u0662\u0665-12-28T00:00:00Z")


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_stored_form_is_fixed_width_and_round_trips_for_every_year(moment):
    # strftime("%Y") wrote "99" for year 99, breaking both.
    stored = format_utc(moment)

    assert len(stored) == 27
    assert parse_rfc3339(stored) == moment


@given(st.lists(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), min_size=2, max_size=20))
def test_string_order_is_time_order_for_every_year(moments):
    stored = [format_utc(moment.replace(tzinfo=UTC)) for moment in moments]

    assert sorted(stored) == [format_utc(moment.replace(tzinfo=UTC)) for moment in sorted(moments)]

"""The demo's incident data (demo_data.incident): what the investigation must find is really in it,
whatever the time of day the demo runs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from evreplay.cli import demo_data
from evreplay.core.times import normalize

DAY = date(2025, 12, 28)


def _hours(events: list[dict], entity: str | None = None) -> Counter[int]:
    return Counter(
        int(normalize(e["event_time"])[11:13])
        for e in events
        if (entity is None or e["entity_id"] == entity) and normalize(e["event_time"])[:10] == DAY.isoformat()
    )


def test_store_sales_have_an_empty_hour_a_low_hour_and_a_silent_terminal() -> None:
    incident = demo_data.incident(DAY, datetime(2025, 12, 29, 12, 0, tzinfo=UTC))

    per_hour = _hours(incident.store_sales)
    assert per_hour[demo_data.OUTAGE_HOUR] == 0
    assert per_hour[demo_data.RECOVERY_HOUR] == 2  # below half of the usual 6
    assert {per_hour[h] for h in range(24) if h not in (demo_data.OUTAGE_HOUR, demo_data.RECOVERY_HOUR)} == {6}
    silent = [h for h in range(24) if _hours(incident.store_sales, demo_data.TERMINAL)[h] == 0]
    assert silent == [demo_data.OUTAGE_HOUR, demo_data.RECOVERY_HOUR]


def test_the_storm_resends_each_event_and_the_added_event_is_new() -> None:
    data, incident = demo_data.build(DAY), demo_data.incident(DAY)

    assert Counter(e["event_id"] for e in incident.storm) == {"kiosk3-pv-0": 13, "kiosk3-pv-1": 13}
    assert incident.storm_duplicates == 24
    earlier = {e.get("event_id") for e in data.on_time + data.late}
    assert incident.added["entity_id"] == demo_data.ALICE and incident.added["event_id"] not in earlier


@pytest.mark.parametrize(
    ("now", "separable"),
    [
        (datetime(2025, 12, 29, 12, 0, tzinfo=UTC), True),
        (datetime(2025, 12, 29, 1, 0, tzinfo=UTC), True),  # less than the 3 h the batch is late
        (datetime(2025, 12, 29, 0, 0, 5, tzinfo=UTC), False),  # seconds after midnight
    ],
)
def test_live_and_late_views_share_the_utc_day_of_now(now: datetime, separable: bool) -> None:
    incident = demo_data.incident(DAY, now)

    days = {normalize(e["event_time"])[:10] for e in incident.live + incident.late}
    assert days == {now.date().isoformat()}
    assert incident.lag_is_separable is separable
    newest_late = max(normalize(e["event_time"]) for e in incident.late)
    oldest_live = min(normalize(e["event_time"]) for e in incident.live)
    if separable:
        assert newest_late < oldest_live  # so the late batch is the latest-arriving
    assert all(normalize(e["event_time"]) <= normalize(now.isoformat()) for e in incident.live)

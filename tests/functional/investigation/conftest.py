"""The investigation data set: one small, purpose-built incident, ingested through the API with a
controlled ingest clock, and replayed through the processor for the diff.

Day D = 2025-06-01 (UTC), source "shop", event_type "purchase" unless said otherwise:

- three steady streams, one event per hour each: user_a at :10 (lag 300 + 200·h ms), user_c at
  :20 (lag 30 s + h s) and user_d at :40 (lag 120 s + h s);
- a missing hour: nobody sent anything for 05:00; user_c and user_d also skipped 14:00 (a LOW hour);
- a late batch: user_b's four events of D 10:00–10:03 arrive on D+1 at 12:00:0i (lag ~26 h), and
  b-1 arrives a second time on D+1 at 12:05 (a duplicate on D+1);
- a duplicate storm from one entity: user_s sends s-1 ten times (D 16:30:01–10) and the refund s-2
  three times (D 16:31:02–04); user_c resends c-08 once (lag 45.5 s); source "web" has one
  duplicate (user_w's w-1);
- an event added between two replays, on D2 = 2025-06-03 for user_x: x-1, x-2 (purchases), x-3
  (view); replays R-A and R-A2 of the whole day; then x-2 arrives again with a corrected payload
  and x-4 (refund) arrives; replay R-B (include_duplicates=true) of the whole day and R-C of its
  second half (12:00 on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.stacks import Stack, process, replay_messages

_D = datetime(2025, 6, 1, tzinfo=UTC)
_D2 = datetime(2025, 6, 3, tzinfo=UTC)


@dataclass(frozen=True)
class Arrival:
    """One POST /events at a chosen ingest time."""

    entity_id: str
    event_id: str
    event_time: datetime
    ingest_time: datetime
    event_type: str = "purchase"
    source: str = "shop"
    payload: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "event_type": self.event_type,
            "entity_id": self.entity_id,
            "event_id": self.event_id,
            "event_time": self.event_time.isoformat().replace("+00:00", "Z"),
            "payload": self.payload or {"event": self.event_id},
        }


def incident_arrivals() -> list[Arrival]:
    """Day D's arrivals (everything but the diff entity), in no particular order."""
    arrivals: list[Arrival] = []
    for hour in range(24):
        at = _D + timedelta(hours=hour)
        if hour != 5:
            time = at + timedelta(minutes=10)
            arrivals.append(Arrival("user_a", f"a-{hour:02d}", time, time + timedelta(milliseconds=300 + 200 * hour)))
        if hour not in (5, 14):
            time = at + timedelta(minutes=20)
            arrivals.append(Arrival("user_c", f"c-{hour:02d}", time, time + timedelta(seconds=30 + hour)))
            time = at + timedelta(minutes=40)
            arrivals.append(Arrival("user_d", f"d-{hour:02d}", time, time + timedelta(seconds=120 + hour)))
    late = _D + timedelta(days=1, hours=12)
    for i in range(1, 5):
        arrivals.append(
            Arrival("user_b", f"b-{i}", _D + timedelta(hours=10, minutes=i - 1), late + timedelta(seconds=i))
        )
    arrivals.append(Arrival("user_b", "b-1", _D + timedelta(hours=10), late + timedelta(minutes=5)))
    storm = _D + timedelta(hours=16, minutes=30)
    arrivals += [Arrival("user_s", "s-1", storm, storm + timedelta(seconds=1 + k)) for k in range(10)]
    refund = storm + timedelta(minutes=1)
    arrivals += [Arrival("user_s", "s-2", refund, refund + timedelta(seconds=2 + k), "refund") for k in range(3)]
    c08 = _D + timedelta(hours=8, minutes=20)
    arrivals.append(Arrival("user_c", "c-08", c08, c08 + timedelta(milliseconds=45_500)))
    web = _D + timedelta(hours=12)
    arrivals += [Arrival("user_w", "w-1", web, web + timedelta(seconds=s), source="web") for s in (1, 3)]
    return arrivals


def _x(event_id: str, hour: int, event_type: str, amount: int, resent: bool = False) -> Arrival:
    time = _D2 + timedelta(hours=hour)
    return Arrival(
        "user_x", event_id, time, time + timedelta(seconds=30 if resent else 1), event_type, payload={"amount": amount}
    )


@dataclass
class DataSet:
    stack: Stack
    stored: list[tuple[Arrival, dict[str, Any]]]  # every arrival with its 201 body

    def lags(self, source: str, event_type: str, day: str) -> list[int]:
        """ingest_lag_ms of every stored arrival of a stream's event day, as ingest answered them."""
        return [
            body["ingest_lag_ms"]
            for arrival, body in self.stored
            if (arrival.source, arrival.event_type, body["event_time"][:10]) == (source, event_type, day)
        ]


class FixedClock:
    def __init__(self) -> None:
        self.now = _D

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ingest_clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """The ingest function's clock, set per arrival (ingest_time and lag follow from it)."""
    from evreplay.handlers import ingest as ingest_handler

    clock = FixedClock()
    monkeypatch.setattr(ingest_handler.ingestor, "_clock", clock)
    return clock


@pytest.fixture
def dataset(stack: Stack, ingest_clock: FixedClock) -> DataSet:
    return build_dataset(stack, ingest_clock)


def build_dataset(stack: Stack, ingest_clock: FixedClock) -> DataSet:
    """Ingest every arrival in ingest-time order (so the first arrival of an event_id is the ACCEPTED
    one) and run the diff entity's replays through the processor."""
    stored: list[tuple[Arrival, dict[str, Any]]] = []

    def post(arrivals: list[Arrival]) -> None:
        for arrival in sorted(arrivals, key=lambda a: a.ingest_time):
            ingest_clock.now = arrival.ingest_time
            response = stack.gateway.request("POST", "/events", arrival.body())
            assert response.status == 201, response.body
            stored.append((arrival, response.json()))

    def replay(replay_id: str, include_duplicates: bool = False, start_hour: int = 0) -> None:
        start = (_D2 + timedelta(hours=start_hour)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        end = "2025-06-04T00:00:00.000000Z"
        bodies = replay_messages(stack, "user_x", replay_id, include_duplicates, start=start, end=end)
        assert process(stack, bodies) == []

    post(incident_arrivals())
    post([_x("x-1", 9, "purchase", 10), _x("x-2", 11, "purchase", 20), _x("x-3", 13, "view", 0)])
    replay("R-A")
    replay("R-A2")
    post([_x("x-2", 11, "purchase", 25, resent=True), _x("x-4", 15, "refund", -5)])
    replay("R-B", include_duplicates=True)
    replay("R-C", start_hour=12)
    return DataSet(stack, stored)

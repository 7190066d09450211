"""The demo's data set: one realistic day of a small shop, with what real pipelines suffer from.

- three entities: two customers on the iOS app and the web, and a point-of-sale terminal;
- late arrivals: a phone that was offline syncs its morning events in the evening, and a POS
  terminal reports with a +01:00 offset (normalized to UTC on ingest);
- duplicates: a producer retry without an idempotency key (same event_id again) and a web
  beacon fired twice (same content, so the same derived event_id) — both are stored and
  recorded as DUPLICATE;
- an idempotent retry: the same idempotency_key and body sent twice — stored once;
- one event the API must reject (a timestamp without an offset).

Times are on "the demo day" (yesterday, UTC) so every event is in the past and the ingest lag
is real.

`incident()` adds the traffic the demo then investigates, each with something worth finding:
- a missing hour: the shop's POS terminals report a sale every half hour, except that the
  network was down from 13:00 to 14:00 (no sales at all: an EMPTY hour), one terminal came back
  at 14:00 (a LOW hour) and the others, pos-terminal-7 among them, only at 15:00 (its gap is
  13:00-15:00);
- a late batch: today's iOS screen views arrive within seconds, but one phone that was offline
  syncs its screen views from hours ago;
- a duplicate storm: a lobby kiosk's SDK resends the same two page views a dozen times each;
- an event added between two replays: a refund for Alice's order arrives after her day was
  replayed, so replaying the day again changes its numbers (the diff shows why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

ALICE = "customer-alice"
BOB = "customer-bob"
TERMINAL = "pos-terminal-7"


def demo_day(now: datetime | None = None) -> date:
    return ((now or datetime.now(UTC)) - timedelta(days=1)).date()


def _at(day: date, hh: int, mm: int, ss: int = 0, ms: int = 0, offset: str = "Z") -> str:
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:{ss:02d}.{ms:03d}{offset}"


def _event(
    source: str, event_type: str, entity: str, when: str, payload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "source": source,
        "event_type": event_type,
        "entity_id": entity,
        "event_time": when,
        "payload": payload,
        **extra,
    }


@dataclass(frozen=True)
class DemoData:
    day: date
    on_time: list[dict[str, Any]]  # sent first, as one batch, in event-time order
    late: list[dict[str, Any]]  # sent afterwards: their event_time is hours before what came first
    producer_retry: dict[str, Any]  # an exact resend of an on-time event (same event_id)
    double_beacon: dict[str, Any]  # same content as an on-time event, no event_id: same derived id
    idempotent: dict[str, Any]  # sent twice with the same idempotency_key
    invalid: dict[str, Any]  # rejected: naive timestamp

    @property
    def window(self) -> tuple[str, str]:
        start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(day: date | None = None) -> DemoData:
    d = day or demo_day()
    on_time = [
        _event("ios_app", "session_start", ALICE, _at(d, 12, 2, 11), {"app_version": "5.3.1"}, event_id="ios-a-0001"),
        _event("ios_app", "product_view", ALICE, _at(d, 12, 3, 40), {"sku": "TEA-GREEN-250"}, event_id="ios-a-0002"),
        _event(
            "ios_app", "add_to_cart", ALICE, _at(d, 12, 5, 2), {"sku": "TEA-GREEN-250", "qty": 2}, event_id="ios-a-0003"
        ),
        _event(
            "ios_app",
            "purchase",
            ALICE,
            _at(d, 12, 7, 30, 250),
            {"order_id": "o-1001", "amount": 17.8, "currency": "EUR"},
            event_id="ios-a-0004",
        ),
        _event("web", "page_view", ALICE, _at(d, 19, 45, 9), {"path": "/orders/o-1001"}),
        _event("web", "page_view", BOB, _at(d, 9, 14, 55), {"path": "/"}),
        _event("web", "product_view", BOB, _at(d, 9, 16, 3), {"sku": "MUG-STONE"}),
        _event("web", "add_to_cart", BOB, _at(d, 9, 17, 41), {"sku": "MUG-STONE", "qty": 1}),
        _event("web", "purchase", BOB, _at(d, 9, 19, 12), {"order_id": "o-1002", "amount": 24.0, "currency": "EUR"}),
        _event("pos", "sale", TERMINAL, _at(d, 11, 2, 0), {"receipt": "r-88", "amount": 6.5}, event_id="pos7-r-88"),
        _event("pos", "sale", TERMINAL, _at(d, 15, 31, 0), {"receipt": "r-89", "amount": 12.0}, event_id="pos7-r-89"),
    ]
    late = [
        # Alice's phone was offline on the morning commute; the app syncs at night.
        _event(
            "ios_app",
            "session_start",
            ALICE,
            _at(d, 7, 48, 3),
            {"app_version": "5.3.1", "offline": True},
            event_id="ios-a-0000a",
        ),
        _event(
            "ios_app",
            "product_view",
            ALICE,
            _at(d, 7, 49, 30),
            {"sku": "COFFEE-DARK-1KG", "offline": True},
            event_id="ios-a-0000b",
        ),
        _event(
            "ios_app",
            "wishlist_add",
            ALICE,
            _at(d, 7, 50, 12),
            {"sku": "COFFEE-DARK-1KG", "offline": True},
            event_id="ios-a-0000c",
        ),
        # The terminal's clock is local time (+01:00): 08:55 local is 07:55 UTC.
        _event(
            "pos",
            "sale",
            TERMINAL,
            _at(d, 8, 55, 0, offset="+01:00"),
            {"receipt": "r-87", "amount": 3.2},
            event_id="pos7-r-87",
        ),
    ]
    producer_retry = dict(on_time[2])  # the app retried add_to_cart after a timeout: same event_id
    double_beacon = dict(on_time[4])  # the web beacon fired twice: same content, derived event_id
    idempotent = _event(
        "checkout",
        "payment_captured",
        ALICE,
        _at(d, 12, 8, 1),
        {"order_id": "o-1001", "amount": 17.8, "psp": "acme"},
        idempotency_key="capture-o-1001",
    )
    invalid = _event("web", "page_view", BOB, f"{d.isoformat()}T09:20:00", {"path": "/thanks"})
    return DemoData(d, on_time, late, producer_retry, double_beacon, idempotent, invalid)


# ---------------------------------------------------------------- the incident (investigated at the end)
CAROL = "customer-carol"  # her phone was offline: the late batch
KIOSK = "kiosk-lobby-3"  # its SDK resends: the duplicate storm
STORE_TERMINALS = ("pos-terminal-5", "pos-terminal-6", TERMINAL)
SALE_MINUTES = {"pos-terminal-5": (5, 35), "pos-terminal-6": (15, 45), TERMINAL: (20, 50)}
OUTAGE_HOUR = 13  # no terminal reports: an EMPTY hour
RECOVERY_HOUR = 14  # only pos-terminal-5 is back: a LOW hour; the others return at 15:00
LIVE_USERS = 8
LIVE_VIEWS_PER_USER = 4
LATE_VIEWS = 6
STORM_EVENTS = 2
STORM_RESENDS = 12  # each storm event arrives 1 + 12 times
LAG_STREAM = ("ios_app", "screen_view")
SALES_STREAM = ("pos", "sale")


@dataclass(frozen=True)
class Incident:
    day: date  # the demo day: store sales, the kiosk's events, the added event
    now: datetime  # when the live stream was generated
    store_sales: list[dict[str, Any]]
    live: list[dict[str, Any]]  # screen views from the last seconds
    late: list[dict[str, Any]]  # one phone's screen views, hours old
    storm: list[dict[str, Any]]  # each storm event 1 + STORM_RESENDS times, in arrival order
    added: dict[str, Any]  # arrives between the two replays that get diffed

    @property
    def today(self) -> date:
        """The UTC day of `now`: the live stream's event day and everything's arrival day."""
        return self.now.date()

    @property
    def lag_is_separable(self) -> bool:
        """Minutes after UTC midnight the late batch cannot be much later than the live stream."""
        midnight = datetime(self.today.year, self.today.month, self.today.day, tzinfo=UTC)
        return self.now - midnight >= timedelta(minutes=10)

    @property
    def storm_duplicates(self) -> int:
        return len(self.storm) - STORM_EVENTS


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def incident(day: date, now: datetime | None = None) -> Incident:
    """Build right before sending: the live stream's lags are the seconds since `now`."""
    moment = now or datetime.now(UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)

    store_sales: list[dict[str, Any]] = []
    for hour in range(24):
        for terminal in STORE_TERMINALS:
            if hour == OUTAGE_HOUR or (hour == RECOVERY_HOUR and terminal != STORE_TERMINALS[0]):
                continue
            for minute in SALE_MINUTES[terminal]:
                number = len(store_sales) + 1
                store_sales.append(
                    _event(
                        "pos",
                        "sale",
                        terminal,
                        _at(day, hour, minute, 0),
                        {"receipt": f"s-{number:04d}", "amount": round(3.5 + (number % 7) * 1.25, 2)},
                        event_id=f"{terminal}-s-{number:04d}",
                    )
                )

    live: list[dict[str, Any]] = []
    for user in range(1, LIVE_USERS + 1):
        for view in range(LIVE_VIEWS_PER_USER):
            seconds_ago = 0.2 + ((user * LIVE_VIEWS_PER_USER + view) * 0.37) % 3
            live.append(
                _event(
                    "ios_app",
                    "screen_view",
                    f"ios-user-{user:02d}",
                    _utc(max(midnight, moment - timedelta(seconds=seconds_ago))),
                    {"screen": ("home", "search", "product", "cart")[view]},
                    event_id=f"ios-u{user:02d}-v{view}",
                )
            )
    late = [
        _event(
            "ios_app",
            "screen_view",
            CAROL,
            _utc(max(midnight + timedelta(seconds=view), moment - timedelta(hours=3) + timedelta(minutes=2 * view))),
            {"screen": ("home", "search", "product", "product", "cart", "checkout")[view], "offline": True},
            event_id=f"ios-carol-v{view}",
        )
        for view in range(LATE_VIEWS)
    ]
    storm = [
        _event(
            "kiosk",
            "page_view",
            KIOSK,
            _at(day, 10, 15 + number, 0),
            {"path": ("/", "/opening-hours")[number]},
            event_id=f"kiosk3-pv-{number}",
        )
        for number in range(STORM_EVENTS)
        for _ in range(1 + STORM_RESENDS)
    ]
    added = _event(
        "checkout",
        "refund",
        ALICE,
        _at(day, 21, 10, 0),
        {"order_id": "o-1001", "amount": 17.8, "reason": "damaged"},
        event_id="chk-refund-o-1001",
    )
    return Incident(day, moment, store_sales, live, late, storm, added)

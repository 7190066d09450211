"""The page rules (evreplay.replay.plan) against the plain-Python reference of docs/design.md §4, page by
page the way the workflow drives them, with the claims in a dictionary instead of DynamoDB."""

from __future__ import annotations

from dataclasses import dataclass, field

from evreplay.replay.plan import BATCH_SIZE, plan_page
from evreplay.store.index import ACCEPTED, DUPLICATE, IndexRow
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.replay_reference import Occurrence, reference_replay

AS_OF = "2030-01-01T00:00:00.000000Z"


@dataclass
class DictClaims:
    markers: dict[str, str] = field(default_factory=dict)
    writes: int = 0

    def claim(self, event_id: str, row_sk: str) -> bool:
        self.writes += 1
        holder = self.markers.setdefault(event_id, row_sk)
        return holder == row_sk

    def held_by_other(self, event_id: str, row_sk: str) -> bool:
        return event_id in self.markers and self.markers[event_id] != row_sk


def make_rows(specs: list[tuple[int, str]], ingest_time: str = "2025-01-01T00:00:00.000000Z") -> list[IndexRow]:
    """Rows from (second, event_id) pairs in arrival order, sorted as the index sorts them."""
    seen: set[str] = set()
    rows = []
    for arrival, (second, event_id) in enumerate(specs):
        rows.append(
            IndexRow(
                entity_id="u",
                event_id=event_id,
                event_time=f"2025-01-01T00:00:{second:02d}.000000Z",
                arrival_id=f"{arrival:06d}",
                ingest_time=ingest_time,
                ingest_lag_ms=0,
                status=DUPLICATE if event_id in seen else ACCEPTED,
                s3_bucket="b",
                s3_key=f"k{arrival}",
                source="s",
                event_type="t",
                payload_sha256="",
            )
        )
        seen.add(event_id)
    return sorted(rows, key=lambda row: row.sk)


def drive(
    rows: list[IndexRow],
    page_size: int,
    limit: int,
    include_duplicates: bool,
    retry_every_page: bool = False,
    as_of: str = AS_OF,
) -> tuple[list[IndexRow], dict[str, object], list[int]]:
    """Run pages until done, as the state machine does. Returns (messages, counters, batch sizes)."""
    occurrences: dict[str, int] = {}
    for row in rows:
        occurrences[row.event_id] = occurrences.get(row.event_id, 0) + 1
    claims = DictClaims()
    cursor: str | None = None
    sent: list[IndexRow] = []
    batches: list[int] = []
    scanned = skipped = pages = 0
    while True:
        remaining = [row for row in rows if cursor is None or row.sk > cursor]
        query_limit = min(page_size, limit - len(sent) + BATCH_SIZE) if len(sent) < limit else page_size
        page = remaining[:query_limit]
        attempts = 2 if retry_every_page else 1
        for _ in range(attempts):  # a retried page must decide exactly the same
            plan = plan_page(
                page,
                more=len(remaining) > query_limit,
                enqueued=len(sent),
                limit=limit,
                include_duplicates=include_duplicates,
                as_of=as_of,
                needs_check=lambda row: row.status == DUPLICATE or occurrences[row.event_id] > 1,
                claims=claims,
            )
        pages += 1
        sent.extend(plan.send)
        batches.extend(min(BATCH_SIZE, len(plan.send) - i) for i in range(0, len(plan.send), BATCH_SIZE))
        scanned += plan.scanned
        skipped += plan.duplicates_skipped
        cursor = plan.cursor or cursor
        if plan.done:
            return sent, {"scanned": scanned, "duplicates_skipped": skipped, "enqueued": len(sent),
                          "truncated": plan.truncated, "pages": pages}, batches  # fmt: skip
        assert pages < 10_000, "the replay does not progress"


def reference(rows: list[IndexRow], limit: int, include_duplicates: bool) -> tuple[list[str], dict[str, object]]:
    occurrences = [Occurrence("u", row.event_id, row.event_time, int(row.arrival_id), "b", row.s3_key) for row in rows]
    messages, result = reference_replay(
        occurrences, "r", "u", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", include_duplicates, limit
    )
    return [message["s3_key"] for message in messages], result


specs = st.lists(st.tuples(st.integers(0, 20), st.sampled_from([f"e{i}" for i in range(30)])), max_size=120)


@settings(max_examples=300, deadline=None)
@given(
    specs=specs,
    page_size=st.integers(1, 40),
    limit=st.integers(1, 130),
    include_duplicates=st.booleans(),
    retry=st.booleans(),
)
def test_paged_rules_match_the_reference(specs, page_size, limit, include_duplicates, retry):
    rows = make_rows(specs)

    sent, counters, _ = drive(rows, page_size, limit, include_duplicates, retry_every_page=retry)

    expected_keys, expected = reference(rows, limit, include_duplicates)
    assert [row.s3_key for row in sent] == expected_keys
    assert {k: counters[k] for k in expected} == expected


@settings(max_examples=200, deadline=None)
@given(specs=specs, page_size=st.integers(10, 40), limit=st.integers(1, 130))
def test_every_batch_but_the_last_is_full(specs, page_size, limit):
    rows = make_rows(specs)

    _, _, batches = drive(rows, page_size, limit, include_duplicates=True)

    assert all(size == BATCH_SIZE for size in batches[:-1])


def test_limit_inside_a_page_cuts_there_and_reports_truncated():
    rows = make_rows([(s, f"e{s}") for s in range(10)])

    plan = plan_page(rows, more=False, enqueued=0, limit=4, include_duplicates=False, as_of=AS_OF,
                     needs_check=lambda row: False, claims=DictClaims())  # fmt: skip

    assert [row.event_id for row in plan.send] == ["e0", "e1", "e2", "e3"]
    assert (plan.scanned, plan.truncated, plan.done) == (4, True, True)


def test_limit_at_a_page_edge_leaves_truncated_to_the_next_page():
    rows = make_rows([(s, f"e{s}") for s in range(4)])

    plan = plan_page(rows, more=True, enqueued=0, limit=4, include_duplicates=False, as_of=AS_OF,
                     needs_check=lambda row: False, claims=DictClaims())  # fmt: skip

    assert len(plan.send) == 4 and not plan.done and plan.cursor == rows[-1].sk


def test_duplicates_after_the_limit_are_read_not_claimed_and_do_not_truncate():
    # GIVEN e0 e1 e0' e1' and a limit of 2: the two later arrivals are duplicates
    rows = make_rows([(0, "e0"), (1, "e1"), (2, "e0"), (3, "e1")])
    claims = DictClaims()

    plan = plan_page(rows, more=False, enqueued=0, limit=2, include_duplicates=False, as_of=AS_OF,
                     needs_check=lambda row: True, claims=claims)  # fmt: skip

    assert [row.event_id for row in plan.send] == ["e0", "e1"]
    assert plan.truncated is False and plan.done is True
    assert plan.scanned == 2, "rows past the limit are not counted"
    assert claims.writes == 2, "past the limit, duplicates are checked with a read"


def test_rows_stored_after_the_replay_started_are_left_out():
    early = make_rows([(0, "e0"), (1, "e1")])
    late = make_rows([(2, "e2")], ingest_time="2031-01-01T00:00:00.000000Z")

    plan = plan_page(early + late, more=False, enqueued=0, limit=10, include_duplicates=True, as_of=AS_OF,
                     needs_check=lambda row: False, claims=DictClaims())  # fmt: skip

    assert [row.event_id for row in plan.send] == ["e0", "e1"]
    assert plan.consumed == 3 and plan.scanned == 2


def test_page_ends_at_a_batch_boundary_when_more_rows_follow():
    rows = make_rows([(s % 60, f"e{s:02d}") for s in range(25)])

    plan = plan_page(rows, more=True, enqueued=0, limit=100, include_duplicates=True, as_of=AS_OF,
                     needs_check=lambda row: False, claims=DictClaims())  # fmt: skip

    assert len(plan.send) == 20 and plan.consumed == 20 and plan.cursor == rows[19].sk and not plan.done

"""The replay rules for one page of index rows (docs/design.md §4.2-4.4), as a pure decision.

Given the rows of one Query page in replay order, the counters so far and a way to claim an event
for this replay, decide which rows become messages, which are skipped as duplicates, where the page
ends and whether the replay is done or truncated. No AWS calls here: claims go through the `Claims`
protocol, so the rules can be tested against a dictionary and reused by the workflow unchanged.

Rules, exactly:
- rows come in replay order (event_time, event_id, arrival); rows ingested after the replay started
  (`as_of`) are left out, so a replay is a snapshot and its duplicate checks are exact;
- include_duplicates=false: a row needs a check only if its event_id has more than one stored
  occurrence; the first row (in replay order) to claim the event holds its single message;
- at most `limit` messages: once reached, the next row that would have been a message makes the
  replay `truncated` (checked with a read, never a claim) and ends it; rows past the limit are not
  counted as scanned;
- a page that produced more than one batch of messages ends at a batch boundary unless the replay
  ends with it, so every SendMessageBatch but the last of a replay carries 10 messages; the rows
  after the boundary are read again by the next page (their claims are idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from evreplay.replay.queue import BATCH_SIZE
from evreplay.store.index import IndexRow


class Claims(Protocol):
    """Per-replay duplicate markers, bound to one replay."""

    def claim(self, event_id: str, row_sk: str) -> bool:
        """True if this row holds (now, or already held) the event's single message."""
        ...

    def held_by_other(self, event_id: str, row_sk: str) -> bool:
        """Read-only: does another row already hold the event's message?"""
        ...


@dataclass(frozen=True)
class PagePlan:
    send: list[IndexRow]  # rows that become messages, in order
    consumed: int  # how many of the page's rows (a prefix) this page accounts for
    cursor: str | None  # sort key of the last consumed row (None when none was consumed)
    scanned: int  # consumed rows counted: messages + duplicates skipped
    duplicates_skipped: int
    truncated: bool
    done: bool


@dataclass(frozen=True)
class _Checkpoint:
    consumed: int
    sent: int
    scanned: int
    skipped: int


def plan_page(
    rows: Sequence[IndexRow],
    more: bool,
    *,
    enqueued: int,
    limit: int,
    include_duplicates: bool,
    as_of: str,
    needs_check: Callable[[IndexRow], bool],
    claims: Claims,
    batch_size: int = BATCH_SIZE,
) -> PagePlan:
    """Decide one page. `more` says whether the index holds rows after this page."""
    holder: dict[str, str] = {}  # event_id -> sort key of the row holding it ("" = a row before this page)

    def is_first(row: IndexRow, read_only: bool) -> bool:
        if include_duplicates or not needs_check(row):
            return True
        if row.event_id in holder:
            return holder[row.event_id] == row.sk
        # Past the limit only a read: it decides `truncated`, and must not hold the event for later.
        first = not claims.held_by_other(row.event_id, row.sk) if read_only else claims.claim(row.event_id, row.sk)
        holder[row.event_id] = row.sk if first else ""
        return first

    send: list[IndexRow] = []
    scanned = skipped = 0
    truncated = False
    checkpoints: list[_Checkpoint] = []
    for position, row in enumerate(rows):
        if row.ingest_time > as_of:
            pass  # stored after the replay started: not part of this replay
        elif enqueued + len(send) >= limit:
            if is_first(row, read_only=True):
                truncated = True
                break
        elif is_first(row, read_only=False):
            send.append(row)
            scanned += 1
        else:
            skipped += 1
            scanned += 1
        checkpoints.append(_Checkpoint(position + 1, len(send), scanned, skipped))

    done = truncated or not more
    end = checkpoints[-1] if checkpoints else _Checkpoint(0, 0, 0, 0)
    full = len(send) // batch_size * batch_size
    if not done and enqueued + len(send) < limit and 0 < full < len(send):
        # End the page after the last row that still belongs to the last full batch.
        end = [point for point in checkpoints if point.sent == full][-1]
    return PagePlan(
        send=send[: end.sent],
        consumed=end.consumed,
        cursor=rows[end.consumed - 1].sk if end.consumed else None,
        scanned=end.scanned,
        duplicates_skipped=end.skipped,
        truncated=truncated,
        done=done,
    )

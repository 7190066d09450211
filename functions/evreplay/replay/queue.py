"""A replay message (docs/design.md §4.6) and what sending a step's messages cost. The senders, one per
destination type with the one batch loop they share, are in evreplay.replay.senders; a resent page
repeats the same (replay_id, seq) pairs, which the processor deduplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BATCH_SIZE = 10  # entries of one SendMessageBatch or PutEvents call


@dataclass(frozen=True)
class ReplayMessage:
    """One message. The body is exactly the contract's seven fields, in this order."""

    replay_id: str
    seq: int
    event_id: str
    entity_id: str
    event_time: str
    s3_bucket: str
    s3_key: str
    event_type: str = ""  # not in the body: EventBridge's DetailType

    def body(self) -> str:
        return json.dumps(
            {
                "replay_id": self.replay_id,
                "seq": self.seq,
                "event_id": self.event_id,
                "entity_id": self.entity_id,
                "event_time": self.event_time,
                "s3_bucket": self.s3_bucket,
                "s3_key": self.s3_key,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


@dataclass
class SendReport:
    calls: int = 0  # SendMessageBatch / PutEvents calls made
    resent_entries: int = 0  # entries sent again after the destination reported them failed
    sent_as_pointer: int = 0  # event-format messages too large for the destination, sent as pointers

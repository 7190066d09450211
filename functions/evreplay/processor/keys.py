"""The aggregates table's keys.

Table layout (AggregatesTable, `pk`/`sk` strings). One partition per entity, `pk = "AGG#" + entity_id`:

- a version item per (UTC day of event_time, replay): `sk = "V#<day>#<replay_id>"`, holding
  - `input_count`: replay messages applied to this version, each (replay_id, seq) once;
  - `daily_event_count`: distinct event_ids among those messages. A replay with
    include_duplicates=false sends each event_id at most once, so the two are equal; with
    include_duplicates=true every stored occurrence is a message: `input_count` counts them all,
    `daily_event_count` counts each event once;
  - `ET#<event_type>`: distinct events per event_type (the type of the event's first applied
    occurrence), so the per-type counts add up to `daily_event_count`; shown as the
    `counts_by_event_type` object. Top-level attributes rather than a map because `ADD` on a
    nested map path fails while the map does not exist yet;
  - `h0`..`h7`: the `inputs_hash` as eight 32-bit limbs, least significant first (`evreplay.processor.hashing`);
  - `first_event_time` / `last_event_time`: min / max event_time of the inputs;
  - `created_at` / `updated_at`: when the version got its first / latest input.
- an applied-marker item per message, kept forever (no TTL) because diffing two versions reads
  them: `sk = "M#<day>#<replay_id>#<event_id>"` for the first occurrence of an event_id in the
  version, `sk = "M#<day>#<replay_id>#<event_id>#<seq:010d>"` for later occurrences
  (include_duplicates=true only). Each records replay_id, seq, event_id, event_type, event_time,
  payload_sha256 and s3_key. `#` sorts below every character an event_id may hold and a
  replay_id never contains one (Step Functions execution names cannot), so one version's markers
  are a contiguous key range sorted by event_id: two versions diff by merging two Queries.
"""

from __future__ import annotations

PARTITION_PREFIX = "AGG#"
VERSION_PREFIX = "V#"
MARKER_PREFIX = "M#"
TYPE_PREFIX = "ET#"
SEQ_WIDTH = 10


def partition_key(entity_id: str) -> str:
    return PARTITION_PREFIX + entity_id


def version_sk(day: str, replay_id: str) -> str:
    return f"{VERSION_PREFIX}{day}#{replay_id}"


def first_marker_sk(day: str, replay_id: str, event_id: str) -> str:
    return f"{MARKER_PREFIX}{day}#{replay_id}#{event_id}"


def repeat_marker_sk(day: str, replay_id: str, event_id: str, seq: int) -> str:
    return f"{first_marker_sk(day, replay_id, event_id)}#{seq:0{SEQ_WIDTH}d}"


def limb_name(i: int) -> str:
    return f"h{i}"

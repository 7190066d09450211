"""S3 keys: Hive partitions, safe and collision-free entity segments (docs/design.md §3)."""

from __future__ import annotations

import posixpath

from evreplay.store.raw import entity_segment, raw_key
from hypothesis import given
from hypothesis import strategies as st

entity_ids = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=256)
# Ids built from what path tricks and look-alikes are made of: separators, dots, escapes (so
# "a%2Fb" meets "a/b" and "a%252Fb"), the hash suffix's "~", bidi and zero-width marks.
_PIECES = [*"./\\%2F5~?#&= a", "%2F", "%25", "..", "\u202e", "\u200f", "\ufeff", "\u00e9", "\U0001f600"]
hostile_entity_ids = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=256).map(
    lambda pieces: "".join(pieces)[:256]
)


@given(entity_ids, entity_ids)
def test_distinct_entities_never_share_a_segment(a, b):
    if a != b:
        assert entity_segment(a) != entity_segment(b)


@given(entity_ids)
def test_segment_is_one_safe_path_component(entity_id):
    segment = entity_segment(entity_id)
    assert "/" not in segment
    # The key's path component is `entity=<segment>`, never a bare `.` or `..`.
    assert f"entity={segment}" not in (".", "..")
    assert len(segment) <= 200
    assert segment.isascii()


@given(hostile_entity_ids, hostile_entity_ids)
def test_distinct_hostile_entities_never_share_a_segment(a, b):
    if a != b:
        assert entity_segment(a) != entity_segment(b)


@given(st.one_of(entity_ids, hostile_entity_ids))
def test_raw_key_stays_inside_its_partition_prefix(entity_id):
    key = raw_key("ios_app", "purchase", entity_id, "2025-12-28T22:59:59.250000Z", "evt-1", "20260101T000000000000-ff")

    assert key.startswith("raw/source=ios_app/event_type=purchase/event_date=2025-12-28/entity=")
    assert len(key.split("/")) == 6
    # No "." or ".." segment and no empty one: what S3 consoles, sync tools and Athena see is this key.
    assert posixpath.normpath(key) == key
    assert key.isascii() and len(key.encode()) <= 1024


def test_long_entity_ids_get_a_hash_suffix_and_short_ones_do_not():
    assert "~" not in entity_segment("user~123")
    assert "~" in entity_segment("é" * 200)


def test_key_layout():
    key = raw_key("ios_app", "purchase", "user 1", "2025-12-28T22:59:59.250000Z", "abc", "20260101T000000000000-ff")

    assert key == (
        "raw/source=ios_app/event_type=purchase/event_date=2025-12-28/entity=user%201/"
        "20251228T225959.250000Z_abc_20260101T000000000000-ff.json"
    )
    assert (
        len(raw_key("s" * 128, "t" * 128, "\U0001f600" * 256, "2025-12-28T22:59:59.250000Z", "e" * 128, "x" * 40))
        < 1024
    )

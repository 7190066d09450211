"""S3 keys: Hive partitions, safe and collision-free entity segments (DESIGN §3)."""

from __future__ import annotations

from evreplay.raw_store import entity_segment, raw_key
from hypothesis import given
from hypothesis import strategies as st

entity_ids = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=256)


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

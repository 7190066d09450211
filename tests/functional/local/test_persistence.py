"""The data directory on its own: what one moto wrote is what a fresh moto loads, item for item."""

from __future__ import annotations

from pathlib import Path

import pytest
from evreplay.local import persistence

from tests.builders import event
from tests.stacks import Stack, deployed_stack, index_items, post


def test_flushed_objects_and_tables_load_into_a_fresh_stack(tmp_path: Path) -> None:
    # GIVEN events stored through the API (one duplicate) and a flush
    with deployed_stack() as first:
        store = persistence.open_store(tmp_path, first.template)
        for n in range(5):
            post(first, event(f"user_{n % 2}", f"2025-12-28T0{n}:00:00Z", event_id=f"e-{n % 4}"))
        flushed = store.flush()
        # later changes reach the journal: an update (a duplicate's registry count), a delete
        post(first, event("user_0", "2025-12-28T09:00:00Z", event_id="e-0"))
        first.dynamodb.delete_item(TableName=first.index_table, Key={"pk": {"S": "E#user_1"}, "sk": {"S": "I#e-1"}})
        assert store.flush()["items"] == 3  # the new row, the updated registry item, the deleted one
        journal = tmp_path / "dynamodb" / f"{first.index_table}.journal.jsonl"
        with journal.open("a", encoding="utf-8") as cut:
            cut.write('{"key": "half a line a crash left')
        before_items, before_keys = index_items(first), sorted(first.raw_keys())
        before_bodies = {key: first.s3.get_object(Bucket=first.bucket, Key=key)["Body"].read() for key in before_keys}
        assert flushed["objects"] == 5 and flushed["tables"] >= 1 and ("E#user_1", "I#e-1") not in before_items
        assert store.flush() == {"tables": 0, "items": 0, "objects": 0}  # nothing changed since
        store.close()
    # WHEN a new, empty stack loads the directory
    with deployed_stack() as fresh:
        assert fresh.raw_keys() == []
        reopened = persistence.open_store(tmp_path, fresh.template)
        loaded = reopened.load()
        # THEN the objects (byte for byte) and every index item are back
        assert loaded["objects"] == 6
        assert sorted(fresh.raw_keys()) == before_keys
        bodies = {key: fresh.s3.get_object(Bucket=fresh.bucket, Key=key)["Body"].read() for key in before_keys}
        assert bodies == before_bodies
        assert index_items(fresh) == before_items
        reopened.close()


def test_a_directory_that_is_not_a_data_directory_is_refused(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(persistence.DataDirError):
        persistence.open_store(tmp_path, stack.template)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"

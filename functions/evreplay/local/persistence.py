"""`evreplay local --data-dir DIR`: the local stack's data survives a stop and a start.

moto keeps everything in memory. What must survive lives in two places, both template resources:
- S3 (raw events, reconcile work files): objects are immutable, so each new object is written
  once to `DIR/s3/<bucket>/<key, percent-encoded>`; a key overwritten later (a reconcile manifest)
  is written again;
- DynamoDB (the event index, idempotency records and receipts, replay records, aggregate versions):
  a table that changed is written whole to `DIR/dynamodb/<table>.jsonl` (DynamoDB JSON, one item per
  line; written to a temporary file, then renamed, so a crash never leaves half a table).

A flusher thread does both every `interval` seconds (1 s: a crash, `kill -9` included, loses at most
what the last second wrote) and once more on a clean stop. It reads moto's backends directly: a
table is copied under the lock every moto DynamoDB request holds (moto_patches), so a snapshot is a
state the table really had; which tables changed is known from the write requests moto served (in
this process or through the AWS endpoint). DynamoDB is flushed before S3 within one pass: a row is
written after its object (ingest's order), so any row on disk has its object on disk too. What a
crash can lose is the other way round, an object whose row was not yet flushed: exactly what
`evreplay reconcile --repair` indexes.

Not kept: SQS messages (a replay's messages not yet processed), Step Functions executions (the
replay record and the reconcile result files are the durable account of them).

On start, before /health says ok, the directory is loaded into the freshly created resources.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.s3.models import FakeKey, s3_backends

from evreplay.local import moto_patches
from evreplay.local.template import ACCOUNT_ID

FORMAT = "evreplay-local-data 2"
_WRITE_ACTIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_WHOLE = "*"  # in place of a key: rewrite the whole table (a write whose keys could not be read)
_dirty: dict[str, set[str]] = {}  # table -> JSON of the keys written since the last flush
_dirty_lock = threading.Lock()
_hooked: dict[str, Any] = {}
_recording = threading.Event()  # set while a Store is open: no bookkeeping otherwise


class DataDirError(RuntimeError):
    """The directory cannot hold this stack's data (not ours, unreadable...)."""


def _key_json(table: Any, attributes: dict[str, Any]) -> str:
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return json.dumps({name: attributes[name] for name in names}, sort_keys=True)


def _keys_written(handler: Any) -> dict[str, set[str]]:
    """The (table, key) pairs a write request names: Items and Keys of every operation in it."""
    body = handler.body
    if isinstance(body, (str, bytes)):
        body = json.loads(body or "{}")
    writes: list[tuple[str, dict[str, Any]]] = []
    if isinstance(body.get("TableName"), str):
        writes.append((body["TableName"], body.get("Item") or body["Key"]))
    for table_name, requests in (body.get("RequestItems") or {}).items():
        for request in requests:
            operation = request.get("PutRequest") or request["DeleteRequest"]
            writes.append((table_name, operation.get("Item") or operation["Key"]))
    for entry in body.get("TransactItems") or []:
        for kind in ("Put", "Update", "Delete"):
            if kind in entry:
                writes.append((entry[kind]["TableName"], entry[kind].get("Item") or entry[kind]["Key"]))
    tables = dynamodb_backends[handler.current_account][handler.region].tables
    found: dict[str, set[str]] = {}
    for table_name, attributes in writes:
        found.setdefault(table_name, set()).add(_key_json(tables[table_name], attributes))
    return found


def _recording_call_action(self: Any) -> Any:
    result = _hooked["call_action"](self)
    if _recording.is_set() and self._get_action() in _WRITE_ACTIONS:
        try:
            written = _keys_written(self)
        except Exception:  # a shape this reader does not know: rewrite every table
            written = {name: {_WHOLE} for name in dynamodb_backends[self.current_account][self.region].tables}
        with _dirty_lock:
            for table, keys in written.items():
                _dirty.setdefault(table, set()).update(keys)
    return result


def _hook() -> None:
    """Record which items moto's DynamoDB writes touch (once per process, over moto_patches')."""
    if not _hooked:
        _hooked["call_action"] = dynamodb_responses.DynamoHandler.call_action
        dynamodb_responses.DynamoHandler.call_action = _recording_call_action  # type: ignore[method-assign]


@dataclass
class Store:
    """One stack's data directory."""

    root: Path
    account_id: str
    region: str
    buckets: list[str]
    tables: list[str]
    saved_objects: dict[tuple[str, str], str] = field(default_factory=dict)  # (bucket, key) -> etag on disk

    def __post_init__(self) -> None:
        marker = self.root / "FORMAT"
        foreign = not marker.exists() or marker.read_text(encoding="utf-8").strip() != FORMAT
        if self.root.exists() and any(self.root.iterdir()) and foreign:
            raise DataDirError(f"{self.root} is not an evreplay local data directory (no {marker.name} marker)")
        (self.root / "s3").mkdir(parents=True, exist_ok=True)
        (self.root / "dynamodb").mkdir(parents=True, exist_ok=True)
        marker.write_text(FORMAT + "\n", encoding="utf-8")

    # ------------------------------------------------------------------ files
    def _snapshot(self, table: str) -> Path:
        return self.root / "dynamodb" / f"{table}.jsonl"

    def _journal(self, table: str) -> Path:
        return self.root / "dynamodb" / f"{table}.journal.jsonl"

    # ------------------------------------------------------------------ load
    def load(self) -> dict[str, int]:
        """Put the directory's objects and items into the (empty, just created) resources, straight
        into moto's backends (through the API, a 4 000-event directory took ~90 s to load), then
        fold each table's journal into its snapshot."""
        counts = {"objects": 0, "items": 0}
        s3 = s3_backends[self.account_id]["aws"]
        for bucket in self.buckets:
            folder = self.root / "s3" / bucket
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.endswith(".tmp"):
                    key = unquote(path.relative_to(folder).as_posix())
                    stored = s3.put_object(bucket, key, path.read_bytes(), disable_notification=True)
                    self.saved_objects[(bucket, key)] = stored.etag
                    counts["objects"] += 1
        tables = dynamodb_backends[self.account_id][self.region].tables
        for name in self.tables:
            items = self._read_table(name, tables[name])
            with moto_patches.DYNAMODB_LOCK:
                for item in items.values():
                    tables[name].put_item(item)
            counts["items"] += len(items)
            self._compact(name)
        return counts

    def _read_table(self, name: str, table: Any) -> dict[str, dict[str, Any]]:
        """A table's items by key: its snapshot, then its journal applied line by line (a line cut
        short by a crash, the journal's last, is ignored)."""
        items: dict[str, dict[str, Any]] = {}
        if self._snapshot(name).exists():
            for line in self._snapshot(name).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    items[_key_json(table, item)] = item
        if self._journal(name).exists():
            for line in self._journal(name).read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    break
                if entry["item"] is None:
                    items.pop(entry["key"], None)
                else:
                    items[entry["key"]] = entry["item"]
        return items

    # ------------------------------------------------------------------ flush
    def flush(self) -> dict[str, int]:
        """Write what changed since the last flush: the changed items of each table (appended to its
        journal; a table written whole when a write's keys were unknown), then new objects."""
        with _dirty_lock:
            changed = {name: _dirty.pop(name) for name in list(_dirty) if name in self.tables}
        items = 0
        for name, keys in sorted(changed.items()):
            try:
                items += self._write_changes(name, keys)
            except BaseException:
                with _dirty_lock:
                    _dirty.setdefault(name, set()).update(keys)  # written by the next pass
                raise
        objects = 0
        for bucket in self.buckets:
            for key, stored in self._bucket_keys(bucket).items():
                if self.saved_objects.get((bucket, key)) != stored.etag:
                    self._write_object(bucket, key, bytes(stored.value))
                    self.saved_objects[(bucket, key)] = stored.etag
                    objects += 1
        return {"tables": len(changed), "items": items, "objects": objects}

    def _write_changes(self, name: str, keys: set[str]) -> int:
        table = dynamodb_backends[self.account_id][self.region].tables[name]
        if _WHOLE in keys:
            self._compact(name)
            return len(keys)
        lines = []
        with moto_patches.DYNAMODB_LOCK:
            for key in sorted(keys):
                parts = json.loads(key)
                range_key = DynamoType(parts[table.range_key_attr]) if table.range_key_attr else None
                item = table.get_item(DynamoType(parts[table.hash_key_attr]), range_key)
                lines.append({"key": key, "item": None if item is None else item.to_json()["Attributes"]})
        with self._journal(name).open("a", encoding="utf-8") as journal:
            journal.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
        return len(lines)

    def _compact(self, name: str) -> None:
        """Write the table whole as its snapshot and start an empty journal. The journal is removed
        only after the new snapshot is in place; replaying it over that snapshot again is harmless
        (each line sets an item to what the snapshot already holds, or to an older state that the
        lines after it overwrite), but it is never left to replay over a newer one."""
        table = dynamodb_backends[self.account_id][self.region].tables[name]
        with moto_patches.DYNAMODB_LOCK:
            items = [item.to_json()["Attributes"] for item in table.all_items()]
            body = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items).encode()
            _atomic_write(self._snapshot(name), body)
            self._journal(name).unlink(missing_ok=True)

    def _bucket_keys(self, bucket: str) -> dict[str, Any]:
        store = s3_backends[self.account_id]["aws"].buckets[bucket].keys
        latest = {}
        for key in list(dict.keys(store)):  # a C-level copy: safe while other threads put objects
            stored = store.get(key)
            if isinstance(stored, FakeKey):
                latest[key] = stored
        return latest

    def _write_object(self, bucket: str, key: str, body: bytes) -> None:
        relative = quote(key, safe="/=")
        if any(part in ("", ".", "..") for part in relative.split("/")):
            relative = quote(key, safe="")  # never a path outside the bucket's folder
        _atomic_write(self.root / "s3" / bucket / relative, body)

    def close(self) -> None:
        """A clean stop: flush, then fold every journal into its snapshot."""
        self.flush()
        for name in self.tables:
            if self._journal(name).exists():
                self._compact(name)
        _recording.clear()
        with _dirty_lock:
            _dirty.clear()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class Flusher:
    """Flushes a Store every `interval` seconds until stopped; flushes once more on stop."""

    def __init__(self, store: Store, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="data-dir-flush", daemon=True)
        self.last_error: str | None = None

    def start(self) -> None:
        _hook()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.flush()
            except Exception as exc:  # keep going: a table left dirty is written by the next pass
                self.last_error = f"{type(exc).__name__}: {exc}"

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.store.close()


def open_store(root: Path, template: Any) -> Store:
    """The data directory of this template's stack (created if absent)."""
    _hook()
    _recording.set()
    return Store(
        root=root,
        account_id=ACCOUNT_ID,
        region=template.region,
        buckets=[template.physical_name(logical_id) for logical_id in template.of_type("AWS::S3::Bucket")],
        tables=[template.physical_name(logical_id) for logical_id in template.of_type("AWS::DynamoDB::Table")],
    )

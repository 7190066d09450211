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
from moto.s3.models import FakeKey, s3_backends

from evreplay.local import moto_patches
from evreplay.local.template import ACCOUNT_ID

FORMAT = "evreplay-local-data 1"
_WRITE_ACTIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_dirty: set[str] = set()
_dirty_lock = threading.Lock()
_hooked: dict[str, Any] = {}


class DataDirError(RuntimeError):
    """The directory cannot hold this stack's data (not ours, unreadable...)."""


_ALL = "*"  # a write whose tables could not be read: flush every table


def _tables_written(handler: Any) -> set[str]:
    body = handler.body
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            return {_ALL}
    if not isinstance(body, dict):
        return {_ALL}
    names = {body["TableName"]} if isinstance(body.get("TableName"), str) else set()
    names.update(body.get("RequestItems") or {})
    for entry in body.get("TransactItems") or []:
        for operation in entry.values():
            if isinstance(operation, dict) and isinstance(operation.get("TableName"), str):
                names.add(operation["TableName"])
    return names


def _recording_call_action(self: Any) -> Any:
    result = _hooked["call_action"](self)
    if self._get_action() in _WRITE_ACTIONS:
        with _dirty_lock:
            _dirty.update(_tables_written(self))
    return result


def _hook() -> None:
    """Record which tables moto's DynamoDB writes touch (once per process, over moto_patches')."""
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

    # ------------------------------------------------------------------ load
    def load(self, s3: Any, dynamodb: Any) -> dict[str, int]:
        """Put the directory's objects and items into the (empty, just created) resources."""
        counts = {"objects": 0, "items": 0}
        for bucket in self.buckets:
            folder = self.root / "s3" / bucket
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.endswith(".tmp"):
                    key = unquote(path.relative_to(folder).as_posix())
                    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType="application/json")
                    counts["objects"] += 1
        for bucket in self.buckets:  # what is on disk now needs no second write
            for key, stored in self._bucket_keys(bucket).items():
                self.saved_objects[(bucket, key)] = stored.etag
        for table in self.tables:
            path = self.root / "dynamodb" / f"{table}.jsonl"
            if not path.exists():
                continue
            with path.open(encoding="utf-8") as lines:
                items = [json.loads(line) for line in lines if line.strip()]
            for start in range(0, len(items), 25):
                request = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
                while request:
                    request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            counts["items"] += len(items)
        with _dirty_lock:
            _dirty.difference_update(self.tables)  # loading wrote them; they equal the files
        return counts

    # ------------------------------------------------------------------ flush
    def flush(self) -> dict[str, int]:
        """Write what changed since the last flush: changed tables first, then new objects."""
        with _dirty_lock:
            changed = sorted(set(self.tables) if _ALL in _dirty else _dirty & set(self.tables))
            _dirty.difference_update([*changed, _ALL])
        for n, table in enumerate(changed):
            try:
                self._write_table(table)
            except BaseException:
                with _dirty_lock:
                    _dirty.update(changed[n:])  # written by the next pass
                raise
        objects = 0
        for bucket in self.buckets:
            for key, stored in self._bucket_keys(bucket).items():
                if self.saved_objects.get((bucket, key)) != stored.etag:
                    self._write_object(bucket, key, bytes(stored.value))
                    self.saved_objects[(bucket, key)] = stored.etag
                    objects += 1
        return {"tables": len(changed), "objects": objects}

    def _bucket_keys(self, bucket: str) -> dict[str, Any]:
        store = s3_backends[self.account_id]["aws"].buckets[bucket].keys
        latest = {}
        for key in list(dict.keys(store)):  # a C-level copy: safe while other threads put objects
            stored = store.get(key)
            if isinstance(stored, FakeKey):
                latest[key] = stored
        return latest

    def _write_table(self, table: str) -> None:
        backend_table = dynamodb_backends[self.account_id][self.region].tables[table]
        with moto_patches.DYNAMODB_LOCK:
            items = [item.to_json()["Attributes"] for item in backend_table.all_items()]
        path = self.root / "dynamodb" / f"{table}.jsonl"
        _atomic_write(path, "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items).encode())

    def _write_object(self, bucket: str, key: str, body: bytes) -> None:
        relative = quote(key, safe="/=")
        if any(part in ("", ".", "..") for part in relative.split("/")):
            relative = quote(key, safe="")  # never a path outside the bucket's folder
        _atomic_write(self.root / "s3" / bucket / relative, body)

    def size_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())


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
        self.store.flush()


def open_store(root: Path, template: Any) -> Store:
    """The data directory of this template's stack (created if absent)."""
    _hook()
    return Store(
        root=root,
        account_id=ACCOUNT_ID,
        region=template.region,
        buckets=[template.physical_name(logical_id) for logical_id in template.of_type("AWS::S3::Bucket")],
        tables=[template.physical_name(logical_id) for logical_id in template.of_type("AWS::DynamoDB::Table")],
    )

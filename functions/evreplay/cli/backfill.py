"""`evreplay backfill FILE.jsonl`: send a file of events through POST /events/batch, concurrently,
resumable after an interruption without storing anything twice.

How "never twice" works:
- every line gets an idempotency_key unless it has one: `backfill:<file sha256>:<line number>`.
  Sending a line again with the same key and body returns the first response and stores nothing
  (docs/design.md §2), so a chunk that was in flight when the run stopped can simply be sent again;
- a small checkpoint file records which line ranges are finished (a chunk is finished when every
  line in it was accepted, recorded as a duplicate or rejected), with the running counts. It is
  replaced atomically after each chunk, so a kill at any moment leaves a valid checkpoint.
The key depends on the file's content: an edited file is a different backfill (its checkpoint is
refused rather than misapplied). Keys live as long as the API's idempotency TTL (24 h by default);
the checkpoint is what makes a resume after that safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evreplay.cli.client import ApiClient, ApiError

MAX_EVENTS_PER_CHUNK = 500  # event_batch.schema.json's maxItems
# Under the API's default 1 MiB body limit with room for the JSON around the events.
MAX_CHUNK_BYTES = 900 * 1024
OUTCOMES = ("ACCEPTED", "DUPLICATE", "REJECTED")
CHECKPOINT_VERSION = 1
MAX_RETRY_WAIT_SECONDS = 10.0
DEFAULT_RETRIES, DEFAULT_BACKOFF_SECONDS = 6, 0.5  # waits 0.5, 1, 2, 4, 8, 10 s: 25.5 s in all


class BackfillError(RuntimeError):
    """The backfill cannot start or cannot go on (the checkpoint is kept; run again to resume)."""


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line number in the file
    event: dict[str, Any] | None  # what is sent; None when the line is rejected locally
    error: dict[str, Any] | None = None  # the local rejection, in the API's error shape
    text: str = ""
    size: int = 0


@dataclass(frozen=True)
class Chunk:
    first: int
    last: int
    lines: tuple[Line, ...]

    @property
    def events(self) -> list[Line]:
        return [line for line in self.lines if line.event is not None]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def in_line_terms(error: Any, index: int) -> Any:
    """An item error of /events/batch as it concerns the file's line: the batch position the API
    names (`events[3].extra`) is this run's chunking, not where the line is (the reject says `line`)."""
    if not isinstance(error, dict):
        return error
    position = f"events[{index}]"
    field = error.get("field")
    if isinstance(field, str) and (field == position or field.startswith(position + ".")):
        field = field[len(position) + 1 :] or "line"
    message = error.get("message")
    if isinstance(message, str) and message.startswith(position):
        rest = message[len(position) :]
        message = "line" + rest if rest.startswith(":") else rest.removeprefix(".")
    return {**error, "field": field, "message": message}


def line_idempotency_key(file_digest: str, line_number: int) -> str:
    return f"backfill:{file_digest[:32]}:{line_number}"


def retry_waits(retries: int, backoff_seconds: float) -> list[float]:
    """The waits before each retry of a batch or of its FAILED items: doubling, at most 10 s."""
    return [min(MAX_RETRY_WAIT_SECONDS, backoff_seconds * 2**attempt) for attempt in range(retries)]


def _reject(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field}


def parse_line(number: int, text: str, file_digest: str) -> Line | None:
    """One line of the file: None for a blank line, else an event to send or a local rejection."""
    stripped = text.strip()
    if not stripped:
        return None
    size = len(stripped.encode("utf-8"))
    try:
        value = json.loads(stripped)
    except ValueError as exc:
        return Line(number, None, _reject("InvalidJson", f"line is not valid JSON: {exc}"[:300]), stripped, size)
    if not isinstance(value, dict):
        return Line(number, None, _reject("InvalidRequest", "line must be a JSON object (one event)"), stripped, size)
    if "idempotency_key" not in value:
        value = {**value, "idempotency_key": line_idempotency_key(file_digest, number)}
    return Line(number, value, None, stripped, size)


def read_lines(path: Path, file_digest: str) -> Iterator[Line]:
    with path.open("r", encoding="utf-8", errors="surrogateescape") as handle:
        for number, text in enumerate(handle, start=1):
            line = parse_line(number, text, file_digest)
            if line is not None:
                yield line


def chunk_lines(
    lines: Iterable[Line], max_events: int = MAX_EVENTS_PER_CHUNK, max_bytes: int = MAX_CHUNK_BYTES
) -> Iterator[Chunk]:
    """Consecutive lines, at most `max_events` events and about `max_bytes` of JSON per chunk."""
    current: list[Line] = []
    events = size = 0
    for line in lines:
        if current and (events >= max_events or (line.event is not None and size + line.size > max_bytes)):
            yield Chunk(current[0].number, current[-1].number, tuple(current))
            current, events, size = [], 0, 0
        current.append(line)
        if line.event is not None:
            events += 1
            size += line.size + 64  # the added idempotency_key and separators
    if current:
        yield Chunk(current[0].number, current[-1].number, tuple(current))


@dataclass
class Checkpoint:
    """Which line ranges of one file (by content hash) are finished, and the counts so far."""

    path: Path
    file_sha256: str
    source: str = ""
    done: list[list[int]] = field(default_factory=list)  # sorted, merged [first, last] ranges
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    runs: int = 0

    @classmethod
    def load(cls, path: Path, file_digest: str, source: str) -> Checkpoint:
        if not path.exists():
            return cls(path, file_digest, source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackfillError(f"cannot read checkpoint {path}: {exc}; remove it or pass --restart") from exc
        if data.get("file_sha256") != file_digest:
            raise BackfillError(
                f"checkpoint {path} belongs to a different version of the file (content changed); "
                "pass --restart to start over, or --checkpoint to use another file"
            )
        counts = dict.fromkeys(OUTCOMES, 0) | {k: int(v) for k, v in (data.get("counts") or {}).items()}
        return cls(
            path, file_digest, source, [list(r) for r in data.get("done") or []], counts, int(data.get("runs", 0))
        )

    def is_done(self, chunk: Chunk) -> bool:
        return any(first <= chunk.first and chunk.last <= last for first, last in self.done)

    def mark(self, chunk: Chunk, counts: dict[str, int]) -> None:
        ranges = sorted([*self.done, [chunk.first, chunk.last]])
        merged: list[list[int]] = []
        for first, last in ranges:
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self.done = merged
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value
        self.save()

    def save(self) -> None:
        data = {
            "version": CHECKPOINT_VERSION,
            "source": self.source,
            "file_sha256": self.file_sha256,
            "done": self.done,
            "counts": self.counts,
            "runs": self.runs,
            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, self.path)


@dataclass
class ChunkResult:
    chunk: Chunk
    counts: dict[str, int]
    rejected: list[dict[str, Any]]


@dataclass
class Summary:
    file: str
    total_lines: int
    counts: dict[str, int]  # over every run of this checkpoint
    this_run: dict[str, int]
    skipped_lines: int  # already done by an earlier run
    rejects_path: str | None
    checkpoint_path: str
    seconds: float
    complete: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "lines": self.total_lines,
            "accepted": self.counts.get("ACCEPTED", 0),
            "duplicate": self.counts.get("DUPLICATE", 0),
            "rejected": self.counts.get("REJECTED", 0),
            "this_run": {name.lower(): value for name, value in self.this_run.items()},
            "skipped_lines": self.skipped_lines,
            "rejects_file": self.rejects_path,
            "checkpoint": self.checkpoint_path,
            "seconds": round(self.seconds, 2),
            "complete": self.complete,
        }


ProgressCallback = Callable[[int], None]


class Backfill:
    """One backfill run. `run()` sends every chunk the checkpoint does not have yet."""

    def __init__(
        self,
        client: ApiClient,
        path: Path,
        checkpoint_path: Path | None = None,
        rejects_path: Path | None = None,
        concurrency: int = 4,
        max_events: int = MAX_EVENTS_PER_CHUNK,
        max_bytes: int = MAX_CHUNK_BYTES,
        retries: int = DEFAULT_RETRIES,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        restart: bool = False,
    ) -> None:
        if not 1 <= max_events <= MAX_EVENTS_PER_CHUNK:
            raise BackfillError(f"chunk size must be between 1 and {MAX_EVENTS_PER_CHUNK}")
        if concurrency < 1:
            raise BackfillError("concurrency must be at least 1")
        self.client = client
        self.path = path
        self.checkpoint_path = checkpoint_path or path.with_name(path.name + ".checkpoint.json")
        self.rejects_path = rejects_path or path.with_name(path.name + ".rejected.jsonl")
        self.concurrency = concurrency
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        if not path.is_file():
            raise BackfillError(f"{path} is not a file")
        self.digest = file_sha256(path)
        if restart:
            self.checkpoint_path.unlink(missing_ok=True)
            self.rejects_path.unlink(missing_ok=True)
        self.checkpoint = Checkpoint.load(self.checkpoint_path, self.digest, str(path))
        self.total_lines = sum(1 for _ in read_lines(path, self.digest))

    def _chunks(self) -> Iterator[Chunk]:
        return chunk_lines(read_lines(self.path, self.digest), self.max_events, self.max_bytes)

    def run(self, on_progress: ProgressCallback | None = None) -> Summary:
        began = time.monotonic()
        this_run = dict.fromkeys(OUTCOMES, 0)
        skipped = 0
        self.checkpoint.runs += 1
        self.checkpoint.save()
        in_flight: set[Future[ChunkResult]] = set()

        def settle(done: Iterable[Future[ChunkResult]]) -> None:
            """Checkpoint every finished chunk, then re-raise the first failure, if any."""
            failure: BaseException | None = None
            for future in list(done):
                in_flight.discard(future)
                if future.cancelled():
                    continue
                try:
                    result = future.result()
                except BaseException as exc:  # a BackfillError or an interrupt stops the run
                    failure = failure or exc
                    continue
                self._write_rejects(result.rejected)
                self.checkpoint.mark(result.chunk, result.counts)
                for name, value in result.counts.items():
                    this_run[name] += value
                if on_progress:
                    on_progress(len(result.chunk.lines))
            if failure is not None:
                raise failure

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="backfill") as pool:
            try:
                for chunk in self._chunks():
                    if self.checkpoint.is_done(chunk):
                        skipped += len(chunk.lines)
                        if on_progress:
                            on_progress(len(chunk.lines))
                        continue
                    settle({future for future in in_flight if future.done()})
                    # Bounded read-ahead: memory stays flat however long the file is.
                    while len(in_flight) >= self.concurrency * 2:
                        finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        settle(finished)
                    in_flight.add(pool.submit(self._send_chunk, chunk))
                while in_flight:
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    settle(finished)
            except BaseException:
                # Stop sending; keep what the chunks already in flight achieve (bounded by the
                # HTTP timeout), so the next run re-sends as little as possible.
                for future in in_flight:
                    future.cancel()
                finished, _ = wait(in_flight)
                with contextlib.suppress(BaseException):  # the first failure is the one to report
                    settle(finished)
                raise
        complete = all(self.checkpoint.is_done(chunk) for chunk in self._chunks())
        return Summary(
            file=str(self.path),
            total_lines=self.total_lines,
            counts=dict(self.checkpoint.counts),
            this_run=this_run,
            skipped_lines=skipped,
            rejects_path=str(self.rejects_path) if self.checkpoint.counts.get("REJECTED") else None,
            checkpoint_path=str(self.checkpoint_path),
            seconds=time.monotonic() - began,
            complete=complete,
        )

    # ---------------------------------------------------------------- one chunk
    def _send_chunk(self, chunk: Chunk) -> ChunkResult:
        counts = dict.fromkeys(OUTCOMES, 0)
        rejected: list[dict[str, Any]] = []
        for line in chunk.lines:
            if line.error is not None:
                counts["REJECTED"] += 1
                rejected.append({"line": line.number, "error": line.error, "text": line.text})
        outcomes = self._send_events(chunk.events)
        for line in chunk.events:
            result = outcomes[line.number]
            status = str(result.get("status"))
            if status in ("ACCEPTED", "DUPLICATE"):
                counts[status] += 1
            else:
                counts["REJECTED"] += 1
                rejected.append({"line": line.number, "error": result.get("error"), "text": line.text})
        return ChunkResult(chunk, counts, rejected)

    def _send_events(self, lines: list[Line]) -> dict[int, dict[str, Any]]:
        """Results by line number. Items the API reports as FAILED (503 storage trouble, or 409: the
        line's key held by another attempt, for at most 5 s) are sent again with the same key, on the
        schedule of `retry_waits` (its default, ~25 s, outlasts a 409); nothing is stored twice."""
        outcomes: dict[int, dict[str, Any]] = {}
        pending = lines
        attempt = 0
        while pending:
            try:
                body = self.client.post("/events/batch", {"events": [line.event for line in pending]})
            except ApiError as error:
                if error.status == 413 and len(pending) > 1:
                    half = len(pending) // 2
                    outcomes |= self._send_events(pending[:half])
                    outcomes |= self._send_events(pending[half:])
                    return outcomes
                if error.status == 413:  # one event alone is over the API's body limit
                    reason = {"code": error.code, "message": error.message, "field": error.field}
                    return {**outcomes, pending[0].number: {"status": "REJECTED", "error": reason}}
                if not error.retryable:
                    # Auth, a wrong URL, a bad request: the lines are not at fault, so none is
                    # marked done; fix the cause and run the same command again.
                    raise BackfillError(f"the API refused a batch: {error}") from error
                attempt = self._backoff(attempt, f"lines {pending[0].number}-{pending[-1].number}: {error}")
                continue
            results = body.get("results") if isinstance(body, dict) else None
            if not isinstance(results, list) or len(results) != len(pending):
                raise BackfillError(f"unexpected answer from /events/batch: {str(body)[:200]}")
            retry: list[Line] = []
            for result in results:
                index = int(result["index"])
                line = pending[index]
                if result.get("status") == "FAILED":
                    retry.append(line)
                else:
                    outcomes[line.number] = {**result, "error": in_line_terms(result.get("error"), index)}
            pending = retry
            if pending:
                attempt = self._backoff(attempt, f"{len(pending)} events reported FAILED")
        return outcomes

    def _backoff(self, attempt: int, why: str) -> int:
        attempt += 1
        if attempt > self.retries:
            raise BackfillError(f"giving up after {self.retries} retries ({why}); run the same command to resume")
        time.sleep(retry_waits(attempt, self.backoff_seconds)[-1])
        return attempt

    def _write_rejects(self, rejected: list[dict[str, Any]]) -> None:
        if not rejected:
            return
        with self.rejects_path.open("a", encoding="utf-8", errors="surrogateescape") as handle:
            for entry in sorted(rejected, key=lambda item: item["line"]):
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

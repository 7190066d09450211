"""Replays from the caller's side: start one, follow it until its execution ends, summarize it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from evreplay.cli.client import ApiClient
from evreplay.cli.progress import poll

RUNNING = "RUNNING"


def replay_path(replay_id: str) -> str:
    return f"/replays/{quote(replay_id, safe='')}"


def start(client: ApiClient, request: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    answer: dict[str, Any] = client.post("/replays", request, headers=headers)
    return answer


def status(client: ApiClient, replay_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(replay_path(replay_id))
    return answer


def history(client: ApiClient, replay_id: str) -> Any:
    return client.get(replay_path(replay_id) + "/history")


def cancel(client: ApiClient, replay_id: str) -> Any:
    return client.delete(replay_path(replay_id))


def pause(client: ApiClient, replay_id: str) -> Any:
    return client.post(replay_path(replay_id) + "/pause", None)


def resume(client: ApiClient, replay_id: str) -> Any:
    return client.post(replay_path(replay_id) + "/resume", None)


def wait(
    client: ApiClient,
    replay_id: str,
    timeout: float = 600.0,
    interval: float = 0.5,
    on_update: Callable[[dict[str, Any], float], None] | None = None,
) -> dict[str, Any]:
    """Poll GET /replays/{id} until the execution ends; WaitTimeout after `timeout` seconds."""
    return poll(lambda: status(client, replay_id), f"replay {replay_id}", timeout, interval, on_update)


def progress_text(replay: dict[str, Any], elapsed: float) -> str:
    """One line for a live display: status, time, and whatever counts the replay reports."""
    parts = [str(replay.get("status", "?")), f"{elapsed:.1f}s"]
    counts = replay.get("result") or replay.get("progress") or {}
    if isinstance(counts, dict):
        if "entities_total" in counts:  # an entity list or a stream, while it runs
            parts.append(f"entities {counts.get('entities_done', 0)}/{counts['entities_total']}")
        for name in ("pages", "scanned", "enqueued", "duplicates_skipped"):
            if name in counts:
                parts.append(f"{name} {counts[name]}")
    return " · ".join(parts)


def describe_error(error: Any) -> tuple[str, str | None]:
    """A replay's `error` ({"error", "cause"}) as one line a person reads, and the stack trace when the
    cause is a Lambda error report (`{"errorMessage", "errorType", "stackTrace"}`) carrying one."""
    if not isinstance(error, dict):
        return str(error), None
    name, cause = error.get("error"), error.get("cause")
    try:
        report = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        report = None
    if isinstance(report, dict) and "errorMessage" in report:
        message = str(report["errorMessage"])
        frames = report.get("stackTrace")
        trace = "".join(str(frame) for frame in frames).rstrip() if isinstance(frames, list) and frames else None
    else:
        message, trace = ("" if cause is None else str(cause)), None
    line = ": ".join(part for part in (str(name) if name else "", message) if part)
    return line or "(no error reported)", trace


def history_events(answer: Any) -> list[dict[str, Any]]:
    """The list of history entries in GET /replays/{id}/history, whatever the envelope."""
    if isinstance(answer, list):
        return [entry for entry in answer if isinstance(entry, dict)]
    if isinstance(answer, dict):
        for name in ("events", "items", "history", "steps"):
            if isinstance(answer.get(name), list):
                return [entry for entry in answer[name] if isinstance(entry, dict)]
    return []


_COUNTERS = ("scanned", "duplicates_skipped", "enqueued", "pages", "truncated")


def describe_history_event(event: dict[str, Any]) -> str:
    """One readable line for a summarized history entry's detail."""
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)[:120]
    if event.get("type") == "ExecutionStarted" and "entity_id" in detail:
        who = detail.get("requested_by")
        who = who.get("user_arn") or who.get("caller") if isinstance(who, dict) else who
        window = f"[{detail.get('start_time')}, {detail.get('end_time')})"
        return f"{detail['entity_id']} {window}" + (f" by {who}" if who else "")
    if "error" in detail or "cause" in detail:
        return describe_error(detail)[0][:200]
    counters = [f"{name} {detail[name]}" for name in _COUNTERS if name in detail]
    if counters:
        return ", ".join(counters)
    return json.dumps(detail, sort_keys=True)[:120]

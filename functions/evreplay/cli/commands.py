"""One function per CLI command: call the API, print for people or as JSON, return an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from evreplay.cli import replays
from evreplay.cli.backfill import Backfill, BackfillError
from evreplay.cli.client import ApiClient, ApiError
from evreplay.cli.output import Output
from evreplay.cli.progress import Shown, WaitTimeout, wait_with_progress

EXIT_OK = 0
EXIT_API = 1  # the API said no (4xx/5xx), or a replay/backfill ended badly
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input the API never saw (unreadable file, not JSON...)."""


# ---------------------------------------------------------------- send
def read_json_input(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{'stdin' if source == '-' else source} is not valid JSON: {exc}") from exc


def cmd_send(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    event = read_json_input(args.file)
    if not isinstance(event, dict):
        raise UsageError("send takes one event: a JSON object")
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    response = client.request("POST", "/events", body=event, headers=headers)
    body = response.body
    if out.as_json:
        out.json(body)
    else:
        out.fields(f"{body.get('status')} (HTTP {response.status})", body)
    return EXIT_OK


# ---------------------------------------------------------------- backfill
def cmd_backfill(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    try:
        backfill = Backfill(
            client,
            Path(args.file),
            checkpoint_path=Path(args.checkpoint) if args.checkpoint else None,
            rejects_path=Path(args.rejects) if args.rejects else None,
            concurrency=args.concurrency,
            max_events=args.chunk_size,
            restart=args.restart,
        )
    except BackfillError as exc:
        raise UsageError(str(exc)) from exc
    already = backfill.checkpoint.counts
    if any(already.values()):
        out.info(
            f"resuming from {backfill.checkpoint_path} (earlier runs stored {sum(already.values())} lines' outcomes)"
        )
    show_bar = not out.as_json and not args.no_progress and out.err.is_terminal
    try:
        if show_bar:
            with Progress(
                TextColumn("[bold]backfill"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("lines"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=out.err,
                transient=False,
            ) as bar:
                task = bar.add_task("backfill", total=backfill.total_lines)
                summary = backfill.run(lambda lines: bar.advance(task, lines))
        else:
            summary = backfill.run()
    except KeyboardInterrupt:
        out.error(f"interrupted; finished chunks are in {backfill.checkpoint_path}: run the same command to resume")
        return EXIT_INTERRUPTED
    except BackfillError as exc:
        out.error(str(exc))
        return EXIT_API
    result = summary.as_dict()
    if out.as_json:
        out.json(result)
    else:
        rate = summary.total_lines / summary.seconds if summary.seconds else 0.0
        out.fields(
            "backfill " + ("complete" if summary.complete else "incomplete"),
            {
                "file": summary.file,
                "lines": summary.total_lines,
                "accepted": result["accepted"],
                "duplicate": result["duplicate"],
                "rejected": result["rejected"],
                "this run": ", ".join(f"{k} {v}" for k, v in result["this_run"].items()),
                "skipped (done earlier)": summary.skipped_lines,
                "rejected lines": summary.rejects_path or "-",
                "checkpoint": summary.checkpoint_path,
                "time": f"{summary.seconds:.1f}s ({rate:.0f} lines/s)",
            },
        )
    return EXIT_API if result["rejected"] else EXIT_OK


# ---------------------------------------------------------------- replays
def read_entity_ids(source: str) -> list[str]:
    """One entity id a line (blank lines skipped; a line is the id as written, spaces included)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc}") from exc
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def replay_request(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /replays body; the API checks it (the CLI only asks for a scope)."""
    request: dict[str, Any] = {}
    if args.entity_id is not None:
        request["entity_id"] = args.entity_id
    elif args.entity_ids_file is not None:
        request["entity_ids"] = read_entity_ids(args.entity_ids_file)
    elif args.source is None:
        raise UsageError("give a scope: --entity-id, --entity-ids-file, or --source for a whole stream")
    if args.source is not None:
        request["source"] = args.source
    if args.event_types:
        request["event_types"] = args.event_types
    if args.max_concurrency is not None:
        request["max_concurrency"] = args.max_concurrency
    request.update(start_time=args.start, end_time=args.end)
    if args.include_duplicates:
        request["include_duplicates"] = True
    if args.limit is not None:
        request["limit"] = args.limit
    if args.dry_run:
        request["dry_run"] = True
    if args.destination is not None:
        request["destination"] = args.destination
    if args.format is not None:
        request["format"] = args.format
    if args.rate is not None:
        request["max_events_per_second"] = args.rate
    return request


def cmd_replay_start(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    started = replays.start(client, replay_request(args), args.idempotency_key)
    if not args.wait:
        if out.as_json:
            out.json(started)
        else:
            out.fields("replay started", started)
            out.line(f"follow it with: evreplay replay status {started.get('replay_id')}")
        return EXIT_OK
    if not out.as_json:
        out.line(f"replay {started.get('replay_id')} started; waiting for it to finish...")
    return _wait_and_show(client, str(started["replay_id"]), args.wait_timeout, out, args.verbose)


def cmd_replay_wait(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    return _wait_and_show(client, args.replay_id, args.wait_timeout, out, args.verbose)


def _wait_and_show(client: ApiClient, replay_id: str, timeout: float, out: Output, verbose: bool = False) -> int:
    try:
        final = wait_with_progress(
            out,
            lambda: replays.status(client, replay_id),
            f"replay {replay_id}",
            timeout,
            lambda replay, elapsed: Shown(f"replay {replay_id}: {replays.progress_text(replay, elapsed)}"),
        )
    except WaitTimeout as exc:
        out.error(f"{exc}; it keeps running: evreplay replay status {replay_id}")
        return EXIT_API
    _show_replay(final, out, verbose)
    return EXIT_OK if final.get("status") == "SUCCEEDED" else EXIT_API


def _show_replay(replay: dict[str, Any], out: Output, verbose: bool = False) -> None:
    if out.as_json:
        out.json(replay)
        return
    shown = {name: replay.get(name) for name in ("replay_id", "status", "started_at", "stopped_at")}
    request = replay.get("request") or {}
    if request:
        scope = request.get("entity_id")
        if scope is None and "entity_ids" in request:
            scope = f"{len(request['entity_ids'])} entities"
        elif scope is None and "source" in request:
            scope = f"stream {request['source']}"
        shown["entity" if "entity_id" in request else "scope"] = scope
        shown["window"] = f"[{request.get('start_time')}, {request.get('end_time')})"
        shown["options"] = {
            k: v
            for k, v in request.items()
            if k not in ("entity_id", "entity_ids", "start_time", "end_time", "requested_by")
        }
    who = replay.get("requested_by")
    if who:
        shown["requested by"] = who.get("user_arn") or who if isinstance(who, dict) else who
    for name, value in (replay.get("result") or {}).items():
        if name not in ("request",):
            shown[name] = value
    if replay.get("error"):
        shown["error"], trace = replays.describe_error(replay["error"])
        if verbose and trace:
            shown["trace"] = trace
        elif trace:
            shown["trace"] = "(--verbose shows it)"
    out.fields(f"replay {replay.get('replay_id')}", shown)


def cmd_replay_status(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    replay = replays.status(client, args.replay_id)
    _show_replay(replay, out, args.verbose)
    return EXIT_OK


def cmd_replay_list(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    items = client.pages(
        "/replays", max_items=args.limit, entity_id=args.entity_id, status=args.status, source=args.source
    )
    if out.as_json:
        out.json({"items": items})
        return EXIT_OK
    out.table(
        "replays",
        ["replay_id", "status", "entity", "window", "started_at", "enqueued"],
        [
            (
                item.get("replay_id"),
                item.get("status"),
                (item.get("request") or {}).get("entity_id", item.get("entity_id")),
                _window(item.get("request") or item),
                item.get("started_at"),
                (item.get("result") or {}).get("enqueued"),
            )
            for item in items
        ],
        caption=f"{len(items)} replay(s)",
    )
    return EXIT_OK


def _window(request: dict[str, Any]) -> str | None:
    if request.get("start_time") and request.get("end_time"):
        return f"{request['start_time']} → {request['end_time']}"
    return None


def cmd_replay_history(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = replays.history(client, args.replay_id)
    if out.as_json:
        out.json(answer)
        return EXIT_OK
    show_history(out, answer)
    return EXIT_OK


def show_history(out: Output, answer: Any) -> None:
    """The summary fields, then one row per history entry with its detail in words."""
    if isinstance(answer, dict):
        summary = {k: v for k, v in answer.items() if not isinstance(v, list)}
        executions = answer.get("executions")
        if isinstance(executions, list):
            summary["executions"] = len(executions)
        out.fields(f"history of replay {answer.get('replay_id', '')}", summary)
    events = replays.history_events(answer)
    if events:
        out.table(
            "",
            ["#", "time", "type", "state", "detail"],
            [
                (
                    event.get("id"),
                    str(event.get("timestamp") or "")[11:23],
                    event.get("type"),
                    event.get("state"),
                    replays.describe_history_event(event),
                )
                for event in events
            ],
        )


def cmd_replay_cancel(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = replays.cancel(client, args.replay_id)
    if out.as_json:
        out.json(answer)
    else:
        out.fields(f"replay {args.replay_id} cancelled", answer if isinstance(answer, dict) else {"answer": answer})
    return EXIT_OK


def cmd_replay_pause(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = replays.pause(client, args.replay_id)
    if out.as_json:
        out.json(answer)
    else:
        out.fields(f"replay {args.replay_id}: pause requested (it stops at its next page boundary)", answer)
        out.line(f"resume it with: evreplay replay resume {args.replay_id}")
    return EXIT_OK


def cmd_replay_resume(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = replays.resume(client, args.replay_id)
    if out.as_json:
        out.json(answer)
    else:
        out.fields(f"replay {args.replay_id} resumed", answer)
        out.line(f"follow it with: evreplay replay wait {args.replay_id}")
    return EXIT_OK


def cmd_destinations(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    items = list(client.get("/destinations").get("items") or [])
    if out.as_json:
        out.json({"items": items})
    else:
        out.table("replay destinations", ("name", "type", "arn"), [(i["name"], i["type"], i["arn"]) for i in items])
    return EXIT_OK


# ---------------------------------------------------------------- inspection
EVENT_COLUMNS = ("event_time", "event_id", "status", "event_type", "source", "ingest_time", "ingest_lag_ms")


def cmd_events(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    query = {
        "entity_id": args.entity_id,
        "start_time": args.start,
        "end_time": args.end,
        "include_duplicates": True if args.include_duplicates else None,
    }
    if args.all:
        items = client.pages("/events", max_items=args.max, **query, limit=args.limit)
        next_cursor = None
    else:
        page = client.get("/events", **query, limit=args.limit, cursor=args.cursor)
        items, next_cursor = page.get("items") or [], page.get("next_cursor")
    if out.as_json:
        out.json({"items": items, "next_cursor": next_cursor})
        return EXIT_OK
    caption = f"{len(items)} row(s)" + (f"; more: --cursor {next_cursor}" if next_cursor else "")
    out.table(
        f"events of {args.entity_id}",
        list(EVENT_COLUMNS),
        [[_short(item.get(c)) if c == "event_id" else item.get(c) for c in EVENT_COLUMNS] for item in items],
        caption=caption,
    )
    return EXIT_OK


def _short(event_id: Any) -> Any:
    text = str(event_id)
    return text if len(text) <= 24 else text[:20] + "…"


AGGREGATE_COLUMNS = (
    "day", "replay", "events", "by event_type", "inputs", "first_event_time", "last_event_time", "inputs_hash",
)  # fmt: skip


def cmd_aggregates(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    items = client.pages("/aggregates", entity_id=args.entity_id, day=args.day)
    if out.as_json:
        out.json({"items": items})
        return EXIT_OK
    show_aggregates(out, args.entity_id, items)
    return EXIT_OK


def show_aggregates(out: Output, entity_id: str, items: list[dict[str, Any]]) -> None:
    rows = [
        (
            item.get("day"),
            item.get("replay_id"),  # whole: it is what `investigate diff --base/--other` takes
            item.get("daily_event_count"),
            ", ".join(f"{k} {v}" for k, v in sorted((item.get("counts_by_event_type") or {}).items())),
            item.get("input_count"),
            item.get("first_event_time"),
            item.get("last_event_time"),
            str(item.get("inputs_hash", ""))[:12],
        )
        for item in items
    ]
    out.table(
        f"aggregates of {entity_id}", list(AGGREGATE_COLUMNS), rows, caption=f"{len(items)} version(s), one per replay"
    )


# ---------------------------------------------------------------- errors
def report_api_error(error: ApiError, out: Output) -> int:
    if error.status == 0:
        out.error(f"{error.message}. Is the API running? (start one with: evreplay local)")
        return EXIT_UNREACHABLE
    if out.as_json and error.body is not None:
        out.json(error.body)
    out.error(error)
    return EXIT_API

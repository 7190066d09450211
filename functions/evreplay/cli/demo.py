"""`evreplay demo`: the README's main command.

Starts `evreplay local` on free ports (or uses a running API with --use-running), ingests the demo
data set (demo_data.py), replays one customer's day, waits for the replay and for the processor
to fold every message into aggregates, then prints the replay's history summary and the
aggregates. It ends with an investigation of its own data (`evreplay investigate ...`): the rest
of the shop's traffic arrives with a late batch, a missing hour, a duplicate storm and an event
added between two replays, and each question finds its problem. Everything goes through the
public HTTP API, as a user's scripts would. On a stack it started itself the demo knows exactly
what the answers must be, and fails if the investigation does not find what was planted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from evreplay.cli import charts, demo_data, investigate, replays
from evreplay.cli.client import ApiClient, ApiError
from evreplay.cli.commands import EXIT_API, EXIT_OK, show_aggregates, show_history
from evreplay.cli.local_process import LocalStackFailed, LocalStackProcess
from evreplay.cli.output import Output
from evreplay.cli.progress import WaitTimeout


class DemoFailed(RuntimeError):
    pass


def run_demo(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    began = time.monotonic()
    stack: LocalStackProcess | None = None
    if not args.use_running:
        log = Path(tempfile.gettempdir()) / f"evreplay-demo-{int(time.time())}.log"
        out.line("Starting the local stack (moto + the template's functions, in one process)...")
        try:
            stack = LocalStackProcess(log_path=log, extra_args=["--quiet"]).start()
        except LocalStackFailed as exc:
            out.error(str(exc))
            return EXIT_API
        client = ApiClient(stack.api_url, timeout=args.timeout)
        out.line(
            f"  ready in {stack.startup_seconds:.1f}s: API {stack.api_url}, AWS endpoint {stack.aws_endpoint} "
            f"(log: {log})"
        )
    try:
        # Against a stack the demo did not start, earlier data changes the counts: show, do not judge.
        report = scenario(client, out, args.wait_timeout, strict=stack is not None)
        report["wall_seconds"] = round(time.monotonic() - began, 2)
        if stack is not None:
            report["startup_seconds"] = round(stack.startup_seconds or 0.0, 2)
            report["aws_endpoint"] = stack.aws_endpoint
        if out.as_json:
            out.json(report)
        else:
            out.line()
            out.line(f"Demo finished in {report['wall_seconds']:.1f}s.")
            if stack is not None and args.keep_running:
                out.line(f"The stack keeps running (pid {stack.process.pid if stack.process else '?'}):")
                out.line(f"  evreplay aggregates --entity-id {demo_data.ALICE} --api-url {stack.api_url}")
                out.line(f"  aws --endpoint-url {stack.aws_endpoint} s3 ls --recursive s3://evreplay-local-rawbucket")
        return EXIT_OK
    except (DemoFailed, WaitTimeout) as exc:
        out.error(f"demo failed: {exc}")
        if stack is not None:
            out.error(f"local stack log: {stack.log_path}")
        return EXIT_API
    except ApiError as exc:
        out.error(f"demo failed: {exc}")
        return EXIT_API
    finally:
        if stack is not None and not args.keep_running:
            stack.stop()


def scenario(client: ApiClient, out: Output, wait_timeout: float, strict: bool = True) -> dict[str, Any]:
    data = demo_data.build()
    start, end = data.window
    out.markup(f"\n[bold]1. Ingest[/] one day ({data.day}) of a small shop: 3 entities")

    batch = client.post("/events/batch", {"events": data.on_time})
    counts = _count(batch["results"])
    out.line(f"  on-time batch of {len(data.on_time)}: {_fmt(counts)}")

    late = client.post("/events/batch", {"events": data.late})
    late_counts = _count(late["results"])
    out.line(f"  late arrivals ({len(data.late)}, event times hours before what came first): {_fmt(late_counts)}")

    retry = client.post("/events", data.producer_retry)
    beacon = client.post("/events", data.double_beacon)
    out.line(f"  producer retry without a key -> {retry['status']}; beacon fired twice -> {beacon['status']}")

    first = client.request("POST", "/events", data.idempotent)
    again = client.request("POST", "/events", data.idempotent)
    same = first.body == again.body and first.status == again.status
    out.line(
        f"  idempotent retry (same Idempotency key): {first.status} then {again.status}, "
        f"{'same response, stored once' if same else 'DIFFERENT responses'}"
    )
    if not same:
        raise DemoFailed("an idempotent retry returned a different response")

    try:
        client.post("/events", data.invalid)
        raise DemoFailed("an event with a naive timestamp was accepted")
    except ApiError as error:
        out.line(f"  bad event -> HTTP {error.status} {error.code} on field {error.field!r}")

    rows = client.pages("/events", entity_id=demo_data.ALICE, start_time=start, end_time=end, include_duplicates=True)
    duplicates = sum(1 for row in rows if row.get("status") == "DUPLICATE")
    out.line(f"  {demo_data.ALICE} on {data.day}: {len(rows)} stored occurrences, {duplicates} of them duplicates")
    if not out.as_json:
        _show_arrivals(out, rows)

    out.markup(f"\n[bold]2. Replay[/] {demo_data.ALICE}'s day [{start}, {end}), first without duplicates, then with")
    window = {"entity_id": demo_data.ALICE, "start_time": start, "end_time": end}
    first_replay = _replay(client, out, window, wait_timeout)
    with_duplicates = _replay(
        client,
        out,
        {**window, "include_duplicates": True},
        wait_timeout,
    )
    expected = {
        str(replay["replay_id"]): int((replay.get("result") or {}).get("enqueued", 0))
        for replay in (first_replay, with_duplicates)
    }
    aggregates = _wait_for_aggregates(client, expected, data.day.isoformat(), wait_timeout)

    out.markup("\n[bold]3. The first replay's history[/] (the audit record: who, what, every page, the outcome)")
    history = replays.history(client, str(first_replay["replay_id"]))
    if not out.as_json:
        show_history(out, history)

    out.markup("\n[bold]4. Aggregates[/], one version per replay")
    if not out.as_json:
        show_aggregates(out, demo_data.ALICE, aggregates)
        versions = {str(item.get("replay_id")): item for item in aggregates}
        plain, dup = versions.get(str(first_replay["replay_id"])), versions.get(str(with_duplicates["replay_id"]))
        if plain and dup:
            out.line(
                f"  Diffing the versions explains the change: events {plain.get('daily_event_count')} vs "
                f"{dup.get('daily_event_count')}, inputs {plain.get('input_count')} vs {dup.get('input_count')}, "
                f"inputs_hash {'equal' if plain.get('inputs_hash') == dup.get('inputs_hash') else 'different'} "
                "(the second replay was also fed the duplicate arrivals)."
            )

    investigation = investigate_incident(client, out, data, window, first_replay, wait_timeout, strict)
    return {
        "day": data.day.isoformat(),
        "ingest": {
            "on_time": counts,
            "late": late_counts,
            "producer_retry": retry["status"],
            "double_beacon": beacon["status"],
            "idempotent_retry_same_response": same,
        },
        "stored_occurrences": len(rows),
        "duplicates": duplicates,
        "replays": [first_replay, with_duplicates],
        "history": history,
        "aggregates": aggregates,
        "investigation": investigation,
    }


def investigate_incident(
    client: ApiClient,
    out: Output,
    data: demo_data.DemoData,
    window: dict[str, Any],
    base_replay: dict[str, Any],
    wait_timeout: float,
    strict: bool,
) -> dict[str, Any]:
    """Step 5: more traffic arrives, with problems planted; each `evreplay investigate` question finds one."""
    day = data.day.isoformat()
    out.markup("\n[bold]5. Investigate[/]: the rest of the shop's traffic arrives, with what goes wrong in real life")
    incident = demo_data.incident(data.day)  # built just before sending: the live stream's lag is seconds
    today = incident.today.isoformat()
    live = _count(client.post("/events/batch", {"events": incident.live})["results"])
    late = _count(client.post("/events/batch", {"events": incident.late})["results"])
    sales = _count(client.post("/events/batch", {"events": incident.store_sales})["results"])
    storm = _count(client.post("/events/batch", {"events": incident.storm})["results"])
    out.line(f"  {len(incident.live)} live iOS screen views, seconds old: {_fmt(live)}")
    out.line(f"  {len(incident.late)} screen views from {demo_data.CAROL}'s phone, offline for hours: {_fmt(late)}")
    terminals = len(demo_data.STORE_TERMINALS)
    out.line(f"  {len(incident.store_sales)} POS sales over {day} from {terminals} terminals: {_fmt(sales)}")
    out.line(
        f"  {demo_data.KIOSK} sends {demo_data.STORM_EVENTS} page views {1 + demo_data.STORM_RESENDS} times each: "
        f"{_fmt(storm)}"
    )

    def expect(holds: bool, what: str) -> None:
        if strict and not holds:
            raise DemoFailed(f"the investigation did not find {what}")

    source, event_type = demo_data.LAG_STREAM
    _ask(out, "5a. Where is data late?", f"lag --source {source} --event-type {event_type} --day {today}")
    lag = client.get("/stats/lag", source=source, event_type=event_type, day=today)
    _render(out, investigate.show_lag, lag)
    late_ids = {str(event["event_id"]) for event in incident.late}
    latest_ids = {str(row.get("event_id")) for row in (lag.get("latest") or [])[: len(late_ids)]}
    expect(lag.get("count") == len(incident.live) + len(incident.late), "every screen view in the lag count")
    expect(latest_ids == late_ids or not incident.lag_is_separable, f"the late batch of {demo_data.CAROL}")
    out.line(
        f"  -> p50 {charts.duration((lag.get('lag_ms') or {}).get('p50'))} but max "
        f"{charts.duration((lag.get('lag_ms') or {}).get('max'))}: the latest arrivals are "
        f"{demo_data.CAROL}'s offline batch."
    )

    source, event_type = demo_data.SALES_STREAM
    _ask(
        out,
        "5b. Which hours are missing?",
        f"volume --source {source} --event-type {event_type} --start-day {day} --end-day {day} --bucket hour",
    )
    volume = client.get(
        "/stats/volume", source=source, event_type=event_type, start_day=day, end_day=day, bucket="hour"
    )
    _render(out, investigate.show_volume, volume)
    flags = {str(item.get("start"))[11:13]: item.get("flag") for item in volume.get("items") or [] if item.get("flag")}
    outage, recovery = f"{demo_data.OUTAGE_HOUR:02d}", f"{demo_data.RECOVERY_HOUR:02d}"
    expect(flags == {outage: investigate.EMPTY, recovery: investigate.LOW}, f"the outage at {outage}:00")
    out.line(f"  -> no sale at all from {outage}:00 (the store's network was down), few from {recovery}:00.")

    start, end = window["start_time"], window["end_time"]
    _ask(out, "5c. When was one terminal silent?", f"gaps --entity {demo_data.TERMINAL} --start {start} --end {end}")
    gaps = client.get("/gaps", entity_id=demo_data.TERMINAL, start_time=start, end_time=end, bucket="hour")
    _render(out, investigate.show_gaps, gaps)
    found = [
        (str(gap.get("start"))[:16], str(gap.get("end"))[:16], gap.get("buckets")) for gap in gaps.get("gaps") or []
    ]
    expect(found == [(f"{day}T{outage}:00", f"{day}T15:00", 2)], f"{demo_data.TERMINAL}'s silent hours")
    out.line(f"  -> {demo_data.TERMINAL} was silent from {outage}:00 to 15:00, an hour longer than the outage.")

    _ask(out, "5d. Who is sending duplicates?", f"duplicates --day {today}")
    duplicates = client.get("/stats/duplicates", day=today)
    _render(out, investigate.show_duplicates, duplicates)
    top = (duplicates.get("top_entities") or [{}])[0]
    expect(
        (top.get("entity_id"), top.get("duplicate_arrivals"), top.get("distinct_event_ids"))
        == (demo_data.KIOSK, incident.storm_duplicates, demo_data.STORM_EVENTS),
        f"the storm from {demo_data.KIOSK}",
    )
    out.line(
        f"  -> {demo_data.KIOSK} resends the same events: fix its SDK's retry; the data is safe "
        "(duplicates are recorded, never double-counted)."
    )

    _ask(out, "5e. Why did yesterday's number change?")
    added = client.post("/events", incident.added)
    out.line(
        f"  a refund for {demo_data.ALICE}'s order arrives late ({added.get('status')}); her day is replayed again:"
    )
    again = _replay(client, out, window, wait_timeout)
    base_id, other_id = str(base_replay["replay_id"]), str(again["replay_id"])
    _wait_for_aggregates(client, {other_id: int((again.get("result") or {}).get("enqueued", 0))}, day, wait_timeout)
    diff = client.get("/aggregates/diff", entity_id=demo_data.ALICE, day=day, base=base_id, other=other_id)
    out.line(
        f"  $ evreplay investigate diff --entity {demo_data.ALICE} --day {day} --base {base_id} --other {other_id}"
    )
    _render(out, investigate.show_diff, diff)
    expect(
        (diff.get("only_in_other"), diff.get("only_in_base"), (diff.get("daily_event_count") or {}).get("delta"))
        == ([incident.added["event_id"]], [], 1),
        "the added refund",
    )
    out.line("  -> the same window, one more event: the refund that arrived between the two replays.")
    return {
        "today": today,
        "ingest": {"live": live, "late": late, "store_sales": sales, "storm": storm},
        "lag": lag,
        "volume": volume,
        "gaps": gaps,
        "duplicates": duplicates,
        "replay_after_added_event": again,
        "diff": diff,
    }


def _ask(out: Output, question: str, command: str | None = None) -> None:
    out.markup(f"\n[bold]{question}[/]")
    if command:
        out.line(f"  $ evreplay investigate {command}")


def _render(out: Output, show: Any, answer: dict[str, Any]) -> None:
    if not out.as_json:
        show(out, answer)


def _replay(client: ApiClient, out: Output, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    started = replays.start(client, request)
    final = replays.wait(client, str(started["replay_id"]), timeout=timeout)
    result = final.get("result") or {}
    counters = _fmt(result, ("scanned", "duplicates_skipped", "enqueued", "pages"))
    options = "include_duplicates" if request.get("include_duplicates") else "no duplicates"
    out.line(f"  replay {final['replay_id']} ({options}): {final.get('status')}: {counters}")
    if final.get("status") != "SUCCEEDED":
        raise DemoFailed(f"replay ended {final.get('status')}: {final.get('error')}")
    return final


def _show_arrivals(out: Output, rows: list[dict[str, Any]]) -> None:
    """Replay order next to arrival order: late arrivals and duplicates stand out."""
    arrival_rank = {id(row): rank for rank, row in enumerate(sorted(rows, key=lambda r: str(r.get("ingest_time"))), 1)}
    out.table(
        "",
        ["event_time (replay order)", "event_type", "source", "status", "arrived #", "lag"],
        [
            (
                row.get("event_time"),
                row.get("event_type"),
                row.get("source"),
                row.get("status"),
                arrival_rank[id(row)],
                _lag(row.get("ingest_lag_ms")),
            )
            for row in rows
        ],
    )


def _lag(milliseconds: Any) -> str:
    seconds = int(milliseconds or 0) // 1000
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _wait_for_aggregates(client: ApiClient, expected: dict[str, int], day: str, timeout: float) -> list[dict[str, Any]]:
    """The processor drains the queue on its own: wait until each replay's version holds all its messages."""
    deadline = time.monotonic() + timeout
    while True:
        items = client.pages("/aggregates", entity_id=demo_data.ALICE, day=day)
        counts = {str(item.get("replay_id")): int(item.get("input_count") or 0) for item in items}
        if all(counts.get(replay_id, 0) >= wanted for replay_id, wanted in expected.items()):
            return items
        if time.monotonic() >= deadline:
            raise DemoFailed(f"the processor did not fold every message within {timeout:.0f}s: {counts}")
        time.sleep(0.3)


def _count(results: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[str(result.get("status"))] = counts.get(str(result.get("status")), 0) + 1
    return counts


def _fmt(values: dict[str, Any], names: tuple[str, ...] | None = None) -> str:
    keys = names or tuple(values)
    return ", ".join(f"{name} {values[name]}" for name in keys if name in values)

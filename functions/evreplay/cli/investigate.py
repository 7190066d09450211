"""`evreplay investigate ...`: the questions teams ask during an incident, answered by the API.

    lag         GET /stats/lag          how late did a (source, event_type)'s events of one day arrive?
    volume      GET /stats/volume       events per day or hour, EMPTY and LOW buckets flagged
    gaps        GET /gaps               the empty hours (or days) of one entity
    duplicates  GET /stats/duplicates   duplicate arrivals of one day, and who sent them
    diff        GET /aggregates/diff    what changed between two replays' aggregate versions

Each prints rich tables, with a bar chart where a picture reads faster than numbers (the lag
histogram, events per bucket, duplicates per entity, an entity's buckets as a strip);
`--json` prints the API's answer as is. The `show_*` functions render an answer already in
hand (the demo uses them).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from evreplay.cli import charts
from evreplay.cli.client import ApiClient
from evreplay.cli.output import Output
from evreplay.core.times import InvalidTimestamp, parse_rfc3339
from evreplay.investigation.stats import EMPTY, LOW

Command = Callable[[argparse.Namespace, ApiClient, Output], int]

_FLAG_STYLES = {EMPTY: "bold red", LOW: "yellow"}
_BUCKET_SIZES = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# A strip row is one day of hours or one week of days; past this many rows the table says it all.
_STRIP_ROW = {"hour": 24, "day": 7}
_STRIP_MAX_ROWS = 62


# ---------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parsers(sub: Any, api: argparse.ArgumentParser) -> None:
    """`investigate` and its five questions, under the main parser's subcommands."""
    investigate = sub.add_parser(
        "investigate", help="incident questions: lag, volume, gaps, duplicates, aggregate diffs"
    )
    questions = investigate.add_subparsers(dest="investigate_command", required=True, metavar="QUESTION")

    lag = questions.add_parser(
        "lag", parents=[api], help="ingest lag of one source and event type on one day: percentiles, histogram"
    )
    lag.add_argument("--source", required=True)
    lag.add_argument("--event-type", required=True)
    lag.add_argument("--day", required=True, help="YYYY-MM-DD, the UTC day of event_time")

    volume = questions.add_parser(
        "volume", parents=[api], help="events per day or hour, with empty and unusually low buckets flagged"
    )
    volume.add_argument("--source", required=True)
    volume.add_argument("--event-type", required=True)
    volume.add_argument("--start-day", required=True, help="YYYY-MM-DD (UTC of event_time)")
    volume.add_argument("--end-day", required=True, help="YYYY-MM-DD, inclusive")
    volume.add_argument("--bucket", choices=("day", "hour"), help="bucket size (API default: day)")

    gaps = questions.add_parser("gaps", parents=[api], help="the empty hours (or days) of one entity in a window")
    gaps.add_argument("--entity", "--entity-id", dest="entity", required=True)
    gaps.add_argument("--start", required=True, help="window start, RFC 3339 (inclusive)")
    gaps.add_argument("--end", required=True, help="window end, RFC 3339 (exclusive)")
    gaps.add_argument("--bucket", choices=("hour", "day"), help="bucket size (API default: hour)")

    duplicates = questions.add_parser(
        "duplicates", parents=[api], help="duplicate arrivals of one day (UTC of arrival) and the top entities"
    )
    duplicates.add_argument("--day", required=True, help="YYYY-MM-DD, the UTC day of arrival")
    duplicates.add_argument("--source", help="one source only (default: all)")
    duplicates.add_argument("--limit", type=_positive_int, help="how many top entities, 1-100 (API default 20)")

    diff = questions.add_parser(
        "diff", parents=[api], help="compare two aggregate versions (replays) of one entity and day"
    )
    diff.add_argument("--entity", "--entity-id", dest="entity", required=True)
    diff.add_argument("--day", required=True, help="YYYY-MM-DD (UTC)")
    diff.add_argument("--base", required=True, help="replay id of the version to compare from")
    diff.add_argument("--other", required=True, help="replay id of the version to compare to")


# ---------------------------------------------------------------- commands
def cmd_lag(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = client.get("/stats/lag", source=args.source, event_type=args.event_type, day=args.day)
    return _show(out, answer, show_lag)


def cmd_volume(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = client.get(
        "/stats/volume",
        source=args.source,
        event_type=args.event_type,
        start_day=args.start_day,
        end_day=args.end_day,
        bucket=args.bucket,
    )
    return _show(out, answer, show_volume)


def cmd_gaps(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = client.get("/gaps", entity_id=args.entity, start_time=args.start, end_time=args.end, bucket=args.bucket)
    return _show(out, answer, show_gaps)


def cmd_duplicates(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = client.get("/stats/duplicates", day=args.day, source=args.source, limit=args.limit)
    return _show(out, answer, show_duplicates)


def cmd_diff(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    answer = client.get("/aggregates/diff", entity_id=args.entity, day=args.day, base=args.base, other=args.other)
    return _show(out, answer, show_diff)


COMMANDS: dict[str, Command] = {
    "lag": cmd_lag,
    "volume": cmd_volume,
    "gaps": cmd_gaps,
    "duplicates": cmd_duplicates,
    "diff": cmd_diff,
}


def _show(out: Output, answer: Any, render: Callable[[Output, dict[str, Any]], None]) -> int:
    if out.as_json:
        out.json(answer)
    else:
        render(out, answer)
    return 0


# ---------------------------------------------------------------- lag
def show_lag(out: Output, answer: dict[str, Any]) -> None:
    count = int(answer.get("count") or 0)
    lag = answer.get("lag_ms") or {}
    title = f"lag of {answer.get('source')}/{answer.get('event_type')} on {answer.get('day')} (UTC day of event_time)"
    _fields(out, title, {"events": count, **{name: _lag_value(lag.get(name)) for name in ("p50", "p90", "p99", "max")}})
    if count == 0:
        out.line("  no events of this source and type on this day")
        return

    unicode = _unicode(out)
    histogram = list(answer.get("histogram") or [])
    widest = max((int(b.get("count") or 0) for b in histogram), default=0)
    table = _table("lag histogram (ingest_time - event_time)")
    table.add_column("lag")
    table.add_column("events", justify="right")
    table.add_column("share", justify="right")
    table.add_column("", no_wrap=True)
    previous: int | None = None
    for bucket in histogram:
        upper, events = bucket.get("le_ms"), int(bucket.get("count") or 0)
        if upper is None:
            label = f"> {charts.bound(previous)}" if previous is not None else "all"
        else:
            label = f"{'≤' if unicode else '<='} {charts.bound(int(upper))}"
            previous = int(upper)
        table.add_row(
            label,
            str(events),
            f"{100 * events / count:.1f}%",
            Text(charts.bar(events, widest, _bar_width(out, 32), unicode), style="cyan"),
        )
    out.console.print(table)

    latest = list(answer.get("latest") or [])
    if latest:
        table = _table(f"{len(latest)} latest-arriving events (most late first)")
        for name in ("event_id", "entity_id", "event_time", "ingest_time"):
            table.add_column(name, overflow="fold")
        table.add_column("lag", justify="right")
        table.add_column("status")
        for row in latest:
            table.add_row(
                *(_text(row.get(name)) for name in ("event_id", "entity_id", "event_time", "ingest_time")),
                charts.duration(row.get("ingest_lag_ms")),
                _text(row.get("status")),
            )
        out.console.print(table)


def _lag_value(milliseconds: Any) -> str:
    if milliseconds is None:
        return "-"
    shown = charts.duration(milliseconds)
    return shown if shown.endswith(" ms") else f"{shown} ({int(milliseconds)} ms)"


# ---------------------------------------------------------------- volume
def show_volume(out: Output, answer: dict[str, Any]) -> None:
    bucket = str(answer.get("bucket") or "day")
    items = list(answer.get("items") or [])
    flagged = [item for item in items if item.get("flag")]
    empty = sum(1 for item in flagged if item.get("flag") == EMPTY)
    span = f"{answer.get('start_day')} {'→' if _unicode(out) else 'to'} {answer.get('end_day')}"
    _fields(
        out,
        f"volume of {answer.get('source')}/{answer.get('event_type')}, {span}, per {bucket} (UTC of event_time)",
        {
            "events": answer.get("total"),
            "buckets": len(items),
            "flagged": f"{empty} {EMPTY}, {len(flagged) - empty} {LOW}",
        },
    )
    unicode = _unicode(out)
    widest = max((int(item.get("count") or 0) for item in items), default=0)
    table = _table("")
    table.add_column(f"{bucket} (UTC)")
    table.add_column("events", justify="right")
    table.add_column("trailing median", justify="right")
    table.add_column("flag")
    table.add_column("", no_wrap=True)
    for item in items:
        count, flag = int(item.get("count") or 0), item.get("flag")
        style = _FLAG_STYLES.get(str(flag), "cyan")
        table.add_row(
            _bucket_label(item.get("start"), bucket),
            str(count),
            _median(item.get("trailing_median")),
            Text(str(flag), style=style) if flag else "",
            Text(charts.bar(count, widest, _bar_width(out, 58), unicode), style=style),
        )
    out.console.print(table)
    if answer.get("low_rule"):
        out.line(f"  rule: {answer['low_rule']}")
    if flagged:
        out.line(
            "  flagged: "
            + ", ".join(f"{_bucket_label(item.get('start'), bucket)} {item.get('flag')}" for item in flagged)
        )


def _bucket_label(start: Any, bucket: str) -> str:
    text = str(start or "")
    if len(text) < 16 or text[10] != "T":
        return text
    return text[:10] if bucket == "day" else f"{text[:10]} {text[11:16]}"


def _median(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return f"{number:.0f}" if number.is_integer() else f"{number:.1f}"


# ---------------------------------------------------------------- gaps
def show_gaps(out: Output, answer: dict[str, Any]) -> None:
    bucket = str(answer.get("bucket") or "hour")
    gaps = list(answer.get("gaps") or [])
    _fields(
        out,
        f"gaps of {answer.get('entity_id')}",
        {
            "window": f"[{answer.get('start_time')}, {answer.get('end_time')})",
            "buckets": f"{answer.get('buckets')} {'×' if _unicode(out) else 'x'} 1 {bucket}",
            "empty": answer.get("empty_buckets"),
            "gaps": len(gaps),
        },
    )
    if not gaps:
        out.line(f"  no empty {bucket} in this window")
    else:
        table = _table(f"empty {bucket}s, consecutive ones merged")
        table.add_column("from")
        table.add_column("to (exclusive)")
        table.add_column(f"{bucket}s", justify="right")
        for gap in gaps:
            table.add_row(_text(gap.get("start")), _text(gap.get("end")), str(gap.get("buckets")))
        out.console.print(table)
    _show_strip(out, answer, bucket, gaps)


def _show_strip(out: Output, answer: dict[str, Any], bucket: str, gaps: list[dict[str, Any]]) -> None:
    """Every bucket of the window as one character, a row per day (hours) or week (days)."""
    size, per_row = _BUCKET_SIZES.get(bucket), _STRIP_ROW.get(bucket)
    total = int(answer.get("buckets") or 0)
    if size is None or per_row is None or total <= 0 or total > per_row * _STRIP_MAX_ROWS:
        return
    try:
        first = _floor(parse_rfc3339(str(answer.get("start_time"))), bucket)
        filled = [True] * total
        for gap in gaps:
            offset = int((parse_rfc3339(str(gap.get("start"))) - first) / size)
            for index in range(max(offset, 0), min(offset + int(gap.get("buckets") or 0), total)):
                filled[index] = False
    except (InvalidTimestamp, TypeError, ValueError):
        return  # an answer we cannot lay out still has its table above
    unicode = _unicode(out)
    table = Table(box=None, show_header=True, pad_edge=False, title_justify="left")
    table.add_column("starting" if bucket == "hour" else "week of", style="bold")
    table.add_column(_ruler(first, bucket, per_row), no_wrap=True)
    for row in range(0, total, per_row):
        label = first + row * size
        table.add_row(
            label.strftime("%Y-%m-%d %H:%M" if bucket == "hour" else "%Y-%m-%d"),
            charts.strip(filled[row : row + per_row], unicode),
        )
    on, off = charts.strip([True], unicode), charts.strip([False], unicode)
    out.line(f"  {on} events   {off} empty {bucket}")
    out.console.print(table)


def _floor(moment: datetime, bucket: str) -> datetime:
    if bucket == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ruler(first: datetime, bucket: str, width: int) -> str:
    """Hours of the day at every sixth position (0, 6, 12, 18), so a gap's hour can be read off."""
    if bucket != "hour":
        return ""
    marks = [" "] * (width + 2)
    for position in range(width):
        hour = (first.hour + position) % 24
        if hour % 6 == 0:
            for offset, char in enumerate(str(hour)):
                marks[position + offset] = char
    return "".join(marks).rstrip()


# ---------------------------------------------------------------- duplicates
def show_duplicates(out: Output, answer: dict[str, Any]) -> None:
    by_type = answer.get("by_event_type") or {}
    _fields(
        out,
        f"duplicates that arrived on {answer.get('day')} (UTC day of arrival), "
        f"{'source ' + str(answer['source']) if answer.get('source') else 'all sources'}",
        {
            "duplicate arrivals": answer.get("duplicate_arrivals"),
            "distinct event ids": answer.get("distinct_event_ids"),
            "by event_type": ", ".join(
                f"{name} {count}" for name, count in sorted(by_type.items(), key=lambda kv: (-int(kv[1]), kv[0]))
            )
            or "-",
        },
    )
    top = list(answer.get("top_entities") or [])
    if not top:
        out.line("  no duplicate arrivals on this day")
        return
    unicode = _unicode(out)
    widest = max(int(entity.get("duplicate_arrivals") or 0) for entity in top)
    table = _table(f"top {len(top)} entities by duplicate arrivals")
    table.add_column("#", justify="right")
    table.add_column("entity_id", overflow="fold")
    table.add_column("duplicate arrivals", justify="right")
    table.add_column("distinct event ids", justify="right")
    table.add_column("per event id", justify="right")
    table.add_column("", no_wrap=True)
    for rank, entity in enumerate(top, 1):
        arrivals, distinct = int(entity.get("duplicate_arrivals") or 0), int(entity.get("distinct_event_ids") or 0)
        table.add_row(
            str(rank),
            _text(entity.get("entity_id")),
            str(arrivals),
            str(distinct),
            f"{'×' if unicode else 'x'}{arrivals / distinct:.1f}" if distinct else "-",
            Text(charts.bar(arrivals, widest, _bar_width(out, 75), unicode), style="magenta"),
        )
    out.console.print(table)


# ---------------------------------------------------------------- diff
_CHANGES = (
    ("only_in_base", "only in base"),
    ("only_in_other", "only in other"),
    ("payload_changed", "payload changed"),
)


def show_diff(out: Output, answer: dict[str, Any]) -> None:
    _fields(
        out,
        f"aggregates of {answer.get('entity_id')} on {answer.get('day')}: base {'→' if _unicode(out) else 'to'} other",
        {
            "base": answer.get("base"),
            "other": answer.get("other"),
            "inputs_hash": "equal" if answer.get("inputs_hash_equal") else "different",
        },
    )
    table = _table("counts")
    table.add_column("")
    for name in ("base", "other", "delta"):
        table.add_column(name, justify="right")
    total = answer.get("daily_event_count") or {}
    table.add_row(Text("daily_event_count", style="bold"), *_counts(total))
    for event_type, counts in sorted((answer.get("counts_by_event_type") or {}).items()):
        table.add_row(_text(f"  {event_type}"), *_counts(counts))
    out.console.print(table)

    changes = [(label, event_id) for field, label in _CHANGES for event_id in answer.get(field) or []]
    if not changes:
        out.line("  the same event ids, with the same payloads, in both versions")
        return
    table = _table("events that differ")
    table.add_column("change")
    table.add_column("event_id", overflow="fold")
    for label, event_id in changes:
        table.add_row(label, _text(event_id))
    out.console.print(table)
    out.line(
        "  "
        + ", ".join(f"{len(answer.get(field) or [])} {label}" for field, label in _CHANGES)
        + f" (daily_event_count {_signed(total.get('delta'))})"
    )


def _counts(counts: dict[str, Any]) -> list[Any]:
    delta = counts.get("delta")
    style = "green" if (delta or 0) > 0 else "red" if (delta or 0) < 0 else ""
    return [_text(counts.get("base")), _text(counts.get("other")), Text(_signed(delta), style=style)]


def _signed(value: Any) -> str:
    if value is None:
        return "-"
    return f"{int(value):+d}" if int(value) else "0"


# ---------------------------------------------------------------- shared
def _table(title: str, caption: str | None = None) -> Table:
    return Table(
        title=Text(title) if title else None,
        caption=Text(caption) if caption else None,
        title_justify="left",
        caption_justify="left",
    )


def _text(value: Any) -> Text:
    """A cell as plain text: ids and names are never read as rich markup (`[x]` stays `[x]`)."""
    return Text("-" if value is None else str(value))


def _unicode(out: Output) -> bool:
    return out.console.encoding.lower().startswith("utf")


def _bar_width(out: Output, others: int) -> int:
    """Cells for a bar: what the table's `others` columns leave of the console, 10 to 40."""
    return max(10, min(40, out.console.width - others))


def _fields(out: Output, title: str, values: dict[str, Any]) -> None:
    """Like Output.fields, with every value (and the title) as plain text, never markup."""
    out.console.print(Text(title, style="bold"))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in values.items():
        table.add_row(name, _text(value))
    out.console.print(table)

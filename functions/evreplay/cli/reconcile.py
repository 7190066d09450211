"""`evreplay reconcile`: check (or repair) the index against the raw store for a range of UTC days,
optionally following the run with a progress bar over its partitions."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from evreplay.cli.client import ApiClient
from evreplay.cli.output import Output
from evreplay.cli.progress import Shown, WaitTimeout, wait_with_progress

# The counts in the order a person reads them (README: Reconcile and rebuild).
SHOWN = (
    "partitions",
    "failed_partitions",
    "objects",
    "rows",
    "missing_rows",
    "indexed",
    "statuses_fixed",
    "stale_rows",
    "backfilled",
    "dangling_rows",
)


def add_parser(sub: Any, api: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "reconcile", parents=[api], help="check (--repair: fix) the index against the raw store for UTC event days"
    )
    parser.add_argument("--from", dest="start_day", required=True, metavar="DAY", help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end_day", required=True, metavar="DAY", help="last UTC day (included)")
    parser.add_argument("--repair", action="store_true", help="index missing objects, backfill index keys")
    parser.add_argument("--wait", action="store_true", help="follow the run until it ends, with progress")
    parser.add_argument("--wait-timeout", type=float, default=3600.0, help="seconds --wait waits (default %(default)s)")


def status(client: ApiClient, reconcile_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(f"/reconcile/{quote(reconcile_id, safe='')}")
    return answer


def show(reconcile_id: str, view: dict[str, Any]) -> Shown:
    """The live line of a run: its partitions done of all (the bar once the plan is known)."""
    progress = view.get("progress") or {}
    done, total = progress.get("partitions_done", 0), progress.get("partitions_total")
    return Shown(f"reconcile {reconcile_id}: partitions {done}/{total if total is not None else '?'}", done, total)


def cmd_reconcile(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    request = {"start_day": args.start_day, "end_day": args.end_day, "repair": args.repair}
    started: dict[str, Any] = client.post("/reconcile", request)
    reconcile_id = str(started["reconcile_id"])
    if not args.wait:
        if out.as_json:
            out.json(started)
        else:
            out.fields("reconcile started", started)
            out.line(f"follow it with: evreplay reconcile ... --wait, or GET /reconcile/{reconcile_id}")
        return 0
    try:
        final = wait_with_progress(
            out,
            lambda: status(client, reconcile_id),
            f"reconcile {reconcile_id}",
            args.wait_timeout,
            lambda view, _: show(reconcile_id, view),
        )
    except WaitTimeout:
        out.error(f"reconcile {reconcile_id} still running after {args.wait_timeout:.0f}s; it keeps running")
        return 1
    if out.as_json:
        out.json(final)
    else:
        result = final.get("result") or {}
        shown: dict[str, Any] = {"reconcile_id": reconcile_id, "status": final.get("status")}
        shown.update({name: result[name] for name in SHOWN if name in result})
        if final.get("error"):
            shown["error"] = final["error"].get("error")
        mode = "repair" if args.repair else "check"
        out.fields(f"reconcile {args.start_day} .. {args.end_day} ({mode})", shown)
    return 0 if final.get("status") == "SUCCEEDED" else 1

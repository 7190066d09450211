"""`evreplay`: the local stack, ingest, backfill, replays and inspection from a terminal.

Against the local stack (http://127.0.0.1:3000) by default; `--api-url` (or EVREPLAY_API_URL)
points it at a deployed API, whose requests are signed with SigV4 from the standard AWS
credential chain.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evreplay.cli import commands, investigate, reconcile
from evreplay.cli.client import DEFAULT_API_URL, ApiClient, ApiError
from evreplay.cli.output import Output

Command = Callable[[argparse.Namespace, ApiClient, Output], int]


def _api_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("API")
    group.add_argument(
        "--api-url",
        default=os.environ.get("EVREPLAY_API_URL", DEFAULT_API_URL),
        help="base URL of the API, including the stage for a deployed one (default: $EVREPLAY_API_URL or %(default)s)",
    )
    group.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    sign = group.add_mutually_exclusive_group()
    sign.add_argument(
        "--sign",
        dest="sign",
        action="store_true",
        default=None,
        help="sign requests with SigV4 (the default for a non-local URL)",
    )
    sign.add_argument("--no-sign", dest="sign", action="store_false", help="never sign requests")
    group.add_argument("--region", help="region to sign for (default: from the URL or the AWS config)")
    group.add_argument("--profile", help="AWS profile for signing credentials")
    group.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one response")
    return parent


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("use NAME=VALUE, e.g. ProcessorMaxReceiveCount=2")
    return name, value


def _local_destination(text: str) -> Any:
    from evreplay.local.destinations import parse_local_destination  # moto-free, but only `local` needs it

    return parse_local_destination(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evreplay",
        description="Keep every event; replay an entity's, a list's or a whole stream's window; see what changed.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    api = _api_options()

    local = sub.add_parser("local", help="run the whole pipeline locally: API + moto, no Docker, no AWS account")
    local.add_argument("--host", default="127.0.0.1", help="address for the API (default %(default)s)")
    local.add_argument("--port", type=int, default=3000, help="API port (default %(default)s)")
    local.add_argument(
        "--aws-port",
        type=int,
        default=4566,
        help="port of the local AWS endpoint (moto), on 127.0.0.1 (default %(default)s)",
    )
    local.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow --host to be a non-loopback address (the local API has no auth)",
    )
    local.add_argument("--template", type=Path, help="template.yaml to run (default: the project's)")
    local.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter (repeatable)",
    )
    local.add_argument(
        "--destination",
        type=_local_destination,
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help="create a replay destination named NAME at the AWS endpoint, TYPE sqs, sqs-fifo (queue NAME.fifo) "
        "or eventbridge (bus NAME), and declare it (repeatable)",
    )
    local.add_argument(
        "--log-level", default="WARNING", help="log level of the functions' Powertools logger (default %(default)s)"
    )
    local.add_argument("--quiet", action="store_true", help="do not print one line per API request")
    local.add_argument(
        "--retry-visibility-timeout",
        type=int,
        metavar="SECONDS",
        help="hide a message the processor failed for this long before its next try "
        "(default: the queue's visibility timeout, as Lambda does)",
    )
    local.add_argument(
        "--via-http",
        action="store_true",
        help="send the functions' AWS calls through the HTTP endpoint (slower; for debugging)",
    )
    local.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep events, replay records and aggregate versions in DIR across stops and starts "
        "(written every second); default: memory only",
    )

    send = sub.add_parser("send", parents=[api], help="send one event (JSON from a file or stdin)")
    send.add_argument("file", nargs="?", default="-", help="JSON file with one event, or - for stdin (default)")
    send.add_argument("--idempotency-key", help="sent as the Idempotency-Key header")

    backfill = sub.add_parser("backfill", parents=[api], help="send a JSONL file of events; resumable")
    backfill.add_argument("file", help="one event (JSON object) per line")
    backfill.add_argument(
        "--concurrency", type=_positive_int, default=4, help="batches in flight (default %(default)s)"
    )
    backfill.add_argument(
        "--chunk-size", type=_positive_int, default=500, help="events per batch, at most 500 (default %(default)s)"
    )
    backfill.add_argument("--checkpoint", help="checkpoint file (default: FILE.checkpoint.json)")
    backfill.add_argument("--rejects", help="where rejected lines go (default: FILE.rejected.jsonl)")
    backfill.add_argument("--restart", action="store_true", help="forget the checkpoint and start over")
    backfill.add_argument("--no-progress", action="store_true", help="no progress bar")

    replay = sub.add_parser("replay", help="start, follow, list, inspect, pause, resume and cancel replays")
    replay_sub = replay.add_subparsers(dest="replay_command", required=True, metavar="ACTION")
    start = replay_sub.add_parser(
        "start", parents=[api], help="replay a window of one entity, a list of entities, or a whole stream"
    )
    scope = start.add_mutually_exclusive_group(required=False)
    scope.add_argument("--entity-id", help="one entity")
    scope.add_argument(
        "--entity-ids-file", help="a list of entities (1-1 000): a file with one entity id a line ('-' for stdin)"
    )
    start.add_argument("--source", help="a whole stream (without an entity), or a filter on the entities")
    start.add_argument(
        "--event-type", action="append", dest="event_types", help="only this event type (repeatable, up to 50)"
    )
    start.add_argument(
        "--max-concurrency", type=_positive_int, help="entity lists and streams: at most this many workers"
    )
    start.add_argument(
        "--destination",
        help="where the messages go: a name `evreplay destinations` lists (default: the built-in queue)",
    )
    start.add_argument(
        "--format", choices=("pointer", "event"), help="pointer (default) or event: the stored event inline"
    )
    start.add_argument(
        "--rate",
        type=_positive_int,
        metavar="N",
        help="pacing: at most about N messages a second (max_events_per_second)",
    )
    start.add_argument("--start", required=True, help="window start, RFC 3339 (inclusive)")
    start.add_argument("--end", required=True, help="window end, RFC 3339 (exclusive)")
    start.add_argument("--include-duplicates", action="store_true", help="replay every stored occurrence")
    start.add_argument("--limit", type=int, help="at most this many messages (API default 500)")
    start.add_argument("--dry-run", action="store_true", help="count only; send nothing")
    start.add_argument("--idempotency-key", help="the same key returns the same replay")
    start.add_argument("--wait", action="store_true", help="follow the replay until its execution ends")
    start.add_argument("--wait-timeout", type=float, default=600.0, help="seconds --wait waits (default %(default)s)")
    start.add_argument("--verbose", action="store_true", help="with --wait: a failure's stack trace too")
    for name, text in (
        ("status", "show one replay"),
        ("history", "show a replay's execution history, summarized"),
        ("cancel", "cancel a running replay"),
        ("pause", "pause a running replay at its next page boundary"),
        ("resume", "resume a PAUSED or FAILED replay under the same replay_id"),
        ("wait", "follow a replay until its execution ends"),
    ):
        action = replay_sub.add_parser(name, parents=[api], help=text)
        action.add_argument("replay_id")
        if name == "wait":
            action.add_argument("--wait-timeout", type=float, default=600.0)
        if name in ("status", "wait"):
            action.add_argument("--verbose", action="store_true", help="a failure's stack trace too")
    listing = replay_sub.add_parser("list", parents=[api], help="list replays (the audit trail)")
    listing.add_argument("--entity-id")
    listing.add_argument("--source", help="only replays of this source (stream replays, source filters)")
    listing.add_argument("--status", help="RUNNING, SUCCEEDED, FAILED, ABORTED, TIMED_OUT, PAUSED")
    listing.add_argument("--limit", type=_positive_int, default=50, help="at most this many (default %(default)s)")

    sub.add_parser("destinations", parents=[api], help="list where a replay may send (GET /destinations)")

    events = sub.add_parser("events", parents=[api], help="inspect an entity's stored events in a window")
    events.add_argument("--entity-id", required=True)
    events.add_argument("--start", help="window start, RFC 3339 (inclusive)")
    events.add_argument("--end", help="window end, RFC 3339 (exclusive)")
    events.add_argument("--include-duplicates", action="store_true")
    events.add_argument("--limit", type=_positive_int, help="rows per page")
    events.add_argument("--cursor", help="continue from a previous page")
    events.add_argument("--all", action="store_true", help="follow cursors (up to --max rows)")
    events.add_argument("--max", type=_positive_int, default=10_000)

    aggregates = sub.add_parser("aggregates", parents=[api], help="show an entity's aggregates, every version")
    aggregates.add_argument("--entity-id", required=True)
    aggregates.add_argument("--day", help="YYYY-MM-DD (UTC)")

    investigate.add_parsers(sub, api)
    reconcile.add_parser(sub, api)

    demo = sub.add_parser("demo", parents=[api], help="start a local stack, ingest a small data set, replay, show")
    demo.add_argument(
        "--use-running", action="store_true", help="run against --api-url instead of starting a local stack"
    )
    demo.add_argument("--keep-running", action="store_true", help="leave the local stack running afterwards")
    demo.add_argument("--wait-timeout", type=float, default=120.0)
    return parser


_COMMANDS: dict[tuple[str, str | None], Command] = {
    ("send", None): commands.cmd_send,
    ("backfill", None): commands.cmd_backfill,
    ("replay", "start"): commands.cmd_replay_start,
    ("replay", "status"): commands.cmd_replay_status,
    ("replay", "list"): commands.cmd_replay_list,
    ("replay", "history"): commands.cmd_replay_history,
    ("replay", "cancel"): commands.cmd_replay_cancel,
    ("replay", "pause"): commands.cmd_replay_pause,
    ("replay", "resume"): commands.cmd_replay_resume,
    ("destinations", None): commands.cmd_destinations,
    ("replay", "wait"): commands.cmd_replay_wait,
    ("events", None): commands.cmd_events,
    ("aggregates", None): commands.cmd_aggregates,
    ("reconcile", None): reconcile.cmd_reconcile,
}


def _run_local(args: argparse.Namespace) -> int:
    # moto and the handlers load only for this command.
    from evreplay.local.stack import StackOptions, run

    options = StackOptions(
        host=args.host,
        port=args.port,
        aws_port=args.aws_port,
        allow_remote=args.allow_remote,
        template_path=args.template,
        parameters=dict(args.parameter),
        log_level=args.log_level.upper(),
        access_log=not args.quiet,
        via_http=args.via_http,
        retry_visibility_timeout=args.retry_visibility_timeout,
        data_dir=args.data_dir,
        destinations=tuple(args.destination),
    )
    code = run(options)
    # Everything lives in memory and the stack has stopped: exit now rather than wait for
    # threads a handler or moto may have left behind (a Ctrl-C must always end the process).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "local":
        return _run_local(args)
    out = Output(as_json=args.json)
    try:
        client = ApiClient.for_url(args.api_url, args.sign, args.region, args.profile, args.timeout)
        if args.command == "demo":
            from evreplay.cli.demo import run_demo

            return run_demo(args, client, out)
        if args.command == "investigate":
            return investigate.COMMANDS[args.investigate_command](args, client, out)
        command = _COMMANDS[(args.command, getattr(args, "replay_command", None))]
        return command(args, client, out)
    except ApiError as error:
        return commands.report_api_error(error, out)
    except commands.UsageError as error:
        out.error(str(error))
        return commands.EXIT_USAGE
    except KeyboardInterrupt:
        out.error("interrupted")
        return commands.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())

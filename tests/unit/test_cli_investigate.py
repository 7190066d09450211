"""`evreplay investigate ...`: each command sends the documented query, renders the API's answer
as tables and bars people can read (numbers, flagged buckets, ids), and prints it as is with --json.

The canned answers have exactly the shapes of the investigation API (GET /stats/lag,
/stats/volume, /gaps, /stats/duplicates, /aggregates/diff)."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from evreplay.cli import charts, investigate
from evreplay.cli.client import ApiClient, ApiError
from evreplay.cli.main import main
from evreplay.cli.output import Output

LAG = {
    "source": "ios_app",
    "event_type": "purchase",
    "day": "2025-12-28",
    "count": 14,
    "lag_ms": {"p50": 850, "p90": 7200000, "p99": 90000000, "max": 90000000},
    "histogram": [
        {"le_ms": 1000, "count": 8},
        {"le_ms": 10000, "count": 3},
        {"le_ms": 60000, "count": 0},
        {"le_ms": 600000, "count": 0},
        {"le_ms": 3600000, "count": 0},
        {"le_ms": 21600000, "count": 2},
        {"le_ms": 86400000, "count": 0},
        {"le_ms": None, "count": 1},
    ],
    "latest": [
        {
            "event_id": "evt-late-1",
            "entity_id": "user_[9]",
            "event_time": "2025-12-28T01:00:00.000000Z",
            "ingest_time": "2025-12-29T02:00:00.000000Z",
            "ingest_lag_ms": 90000000,
            "status": "ACCEPTED",
        },
        {
            "event_id": "evt-late-2",
            "entity_id": "user_3",
            "event_time": "2025-12-28T10:00:00.000000Z",
            "ingest_time": "2025-12-28T12:00:00.000000Z",
            "ingest_lag_ms": 7200000,
            "status": "DUPLICATE",
        },
    ],
}

_HOURLY = [6] * 13 + [0, 2] + [6] * 8 + [5]
VOLUME = {
    "source": "pos",
    "event_type": "sale",
    "start_day": "2025-12-28",
    "end_day": "2025-12-28",
    "bucket": "hour",
    "total": sum(_HOURLY),
    "low_rule": "a bucket is LOW when its count is below 50% of the median of the 24 buckets (7 for day) before it",
    "items": [
        {
            "start": f"2025-12-28T{hour:02d}:00:00Z",
            "count": count,
            "trailing_median": None if hour < 3 else 6.0,
            "flag": {13: "EMPTY", 14: "LOW"}.get(hour),
        }
        for hour, count in enumerate(_HOURLY)
    ],
}

GAPS = {
    "entity_id": "pos-terminal-7",
    "start_time": "2025-12-28T00:00:00.000000Z",
    "end_time": "2025-12-29T00:00:00.000000Z",
    "bucket": "hour",
    "buckets": 24,
    "empty_buckets": 3,
    "gaps": [
        {"start": "2025-12-28T05:00:00.000000Z", "end": "2025-12-28T07:00:00.000000Z", "buckets": 2},
        {"start": "2025-12-28T13:00:00.000000Z", "end": "2025-12-28T14:00:00.000000Z", "buckets": 1},
    ],
}

DUPLICATES = {
    "day": "2025-12-28",
    "source": None,
    "duplicate_arrivals": 512,
    "distinct_event_ids": 40,
    "by_event_type": {"view": 12, "purchase": 500},
    "top_entities": [
        {"entity_id": "user_9", "duplicate_arrivals": 500, "distinct_event_ids": 1},
        {"entity_id": "user_2", "duplicate_arrivals": 4, "distinct_event_ids": 2},
    ],
}

DIFF = {
    "entity_id": "customer-alice",
    "day": "2025-12-28",
    "base": "REPLAY_A",
    "other": "REPLAY_B",
    "daily_event_count": {"base": 10, "other": 11, "delta": 1},
    "counts_by_event_type": {
        "purchase": {"base": 4, "other": 5, "delta": 1},
        "refund": {"base": 1, "other": 0, "delta": -1},
        "view": {"base": 5, "other": 6, "delta": 1},
    },
    "inputs_hash_equal": False,
    "only_in_base": ["evt_gone"],
    "only_in_other": ["evt_new_1", "evt_new_2"],
    "payload_changed": ["evt_changed"],
}

ANSWERS = {
    "/stats/lag": LAG,
    "/stats/volume": VOLUME,
    "/gaps": GAPS,
    "/stats/duplicates": DUPLICATES,
    "/aggregates/diff": DIFF,
}


class FakeApi:
    """Answers GET with the canned document for its path and remembers what was asked."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, path: str, **query: Any) -> Any:
        # ApiClient.get drops parameters that are None: so does the fake.
        self.calls.append((path, {name: value for name, value in query.items() if value is not None}))
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi(dict(ANSWERS))
    monkeypatch.setattr(ApiClient, "for_url", classmethod(lambda cls, *args, **kwargs: fake))
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["investigate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def line_with(text: str, needle: str) -> str:
    lines = [line for line in text.splitlines() if needle in line]
    assert len(lines) == 1, f"{needle!r} on {len(lines)} lines:\n{text}"
    return lines[0]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def blocks(cell: str) -> int:
    return cell.count(charts.FULL)


# ---------------------------------------------------------------- lag
def test_lag_asks_for_one_source_type_and_day_and_shows_percentiles(api: FakeApi, capsys) -> None:
    code, out, _ = run(capsys, "lag", "--source", "ios_app", "--event-type", "purchase", "--day", "2025-12-28")

    assert code == 0
    assert api.calls == [("/stats/lag", {"source": "ios_app", "event_type": "purchase", "day": "2025-12-28"})]
    assert "lag of ios_app/purchase on 2025-12-28" in out
    assert re.search(r"events\s+14\b", out)
    assert re.search(r"p50\s+850 ms\s*$", out, re.MULTILINE)
    assert re.search(r"p90\s+2h 00m \(7200000 ms\)", out)
    assert re.search(r"p99\s+1d 01h \(90000000 ms\)", out)
    assert re.search(r"max\s+1d 01h \(90000000 ms\)", out)


def test_lag_histogram_has_one_row_per_bound_with_bars_to_scale(api: FakeApi, capsys) -> None:
    _, out, _ = run(capsys, "lag", "--source", "ios_app", "--event-type", "purchase", "--day", "2025-12-28")

    rows = {label: cells(line_with(out, f"│ {label} ")) for label in ("≤ 1 s", "≤ 10 s", "≤ 6 h", "≤ 24 h", "> 24 h")}
    assert rows["≤ 1 s"][1:3] == ["8", "57.1%"]
    assert rows["≤ 6 h"][1:3] == ["2", "14.3%"]
    assert rows["> 24 h"][1:3] == ["1", "7.1%"]
    # The largest bucket fills the 40-cell bar; the others are to scale; an empty bucket has none.
    assert [blocks(rows[label][3]) for label in ("≤ 1 s", "≤ 10 s", "≤ 6 h", "> 24 h")] == [40, 15, 10, 5]
    assert rows["≤ 24 h"][1:] == ["0", "0.0%", ""]


def test_lag_lists_the_latest_arrivals_most_late_first_with_ids_verbatim(api: FakeApi, capsys) -> None:
    _, out, _ = run(capsys, "lag", "--source", "ios_app", "--event-type", "purchase", "--day", "2025-12-28")

    first, second = cells(line_with(out, "evt-late-1")), cells(line_with(out, "evt-late-2"))
    assert out.index("evt-late-1") < out.index("evt-late-2")
    # `[9]` is an id, not rich markup
    assert first == [
        "evt-late-1", "user_[9]", "2025-12-28T01:00:00.000000Z", "2025-12-29T02:00:00.000000Z", "1d 01h", "ACCEPTED",
    ]  # fmt: skip
    assert second[4:] == ["2h 00m", "DUPLICATE"]


def test_lag_of_a_day_without_events_says_so(api: FakeApi, capsys) -> None:
    api.answers["/stats/lag"] = {**LAG, "count": 0, "lag_ms": {"p50": None, "p90": None, "p99": None, "max": None},
                                 "histogram": [{"le_ms": 1000, "count": 0}], "latest": []}  # fmt: skip

    code, out, _ = run(capsys, "lag", "--source", "ios_app", "--event-type", "purchase", "--day", "2025-12-29")

    assert code == 0
    assert re.search(r"p99\s+-", out)
    assert "no events of this source and type on this day" in out
    assert "lag histogram" not in out


# ---------------------------------------------------------------- volume
def test_volume_by_hour_flags_the_empty_and_the_low_hour(api: FakeApi, capsys) -> None:
    code, out, _ = run(capsys, "volume", "--source", "pos", "--event-type", "sale",
                       "--start-day", "2025-12-28", "--end-day", "2025-12-28", "--bucket", "hour")  # fmt: skip

    assert code == 0
    assert api.calls == [
        (
            "/stats/volume",
            {"source": "pos", "event_type": "sale", "start_day": "2025-12-28", "end_day": "2025-12-28",
             "bucket": "hour"},
        )
    ]  # fmt: skip
    assert re.search(r"events\s+133\b", out) and re.search(r"flagged\s+1 EMPTY, 1 LOW", out)
    empty, low = cells(line_with(out, "│ 2025-12-28 13:00 ")), cells(line_with(out, "│ 2025-12-28 14:00 "))
    assert empty == ["2025-12-28 13:00", "0", "6", "EMPTY", ""]
    assert low[:4] == ["2025-12-28 14:00", "2", "6", "LOW"] and blocks(low[4]) == 13  # 2/6 of 40 cells
    # Every other hour is unflagged, with a full bar for the busiest ones
    normal = cells(line_with(out, "│ 2025-12-28 09:00 "))
    assert normal[:4] == ["2025-12-28 09:00", "6", "6", ""] and blocks(normal[4]) == 40
    assert cells(line_with(out, "│ 2025-12-28 00:00 "))[2] == "-"  # no trailing median yet
    rows = [cells(line) for line in out.splitlines() if line.startswith("│ 2025-12-28 ")]
    assert len(rows) == 24
    assert {row[0]: row[3] for row in rows if row[3]} == {"2025-12-28 13:00": "EMPTY", "2025-12-28 14:00": "LOW"}
    assert "flagged: 2025-12-28 13:00 EMPTY, 2025-12-28 14:00 LOW" in out
    assert VOLUME["low_rule"] in out


def test_volume_leaves_the_bucket_to_the_api_unless_asked(api: FakeApi, capsys) -> None:
    api.answers["/stats/volume"] = {
        **VOLUME,
        "bucket": "day",
        "end_day": "2025-12-29",
        "total": 9,
        "items": [
            {"start": "2025-12-28T00:00:00Z", "count": 9, "trailing_median": None, "flag": None},
            {"start": "2025-12-29T00:00:00Z", "count": 0, "trailing_median": None, "flag": "EMPTY"},
        ],
    }

    run(capsys, "volume", "--source", "pos", "--event-type", "sale", "--start-day", "2025-12-28",
        "--end-day", "2025-12-29")  # fmt: skip

    assert "bucket" not in api.calls[0][1]


def test_volume_by_day_labels_days(api: FakeApi, capsys) -> None:
    api.answers["/stats/volume"] = {
        **VOLUME,
        "bucket": "day",
        "end_day": "2025-12-29",
        "total": 9,
        "items": [
            {"start": "2025-12-28T00:00:00Z", "count": 9, "trailing_median": None, "flag": None},
            {"start": "2025-12-29T00:00:00Z", "count": 0, "trailing_median": None, "flag": "EMPTY"},
        ],
    }

    _, out, _ = run(capsys, "volume", "--source", "pos", "--event-type", "sale", "--start-day", "2025-12-28",
                    "--end-day", "2025-12-29", "--bucket", "day")  # fmt: skip

    assert cells(line_with(out, "│ 2025-12-29 ")) == ["2025-12-29", "0", "-", "EMPTY", ""]
    assert "flagged: 2025-12-29 EMPTY" in out


# ---------------------------------------------------------------- gaps
def test_gaps_lists_merged_empty_hours_and_draws_the_day(api: FakeApi, capsys) -> None:
    code, out, _ = run(capsys, "gaps", "--entity", "pos-terminal-7", "--start", "2025-12-28T00:00:00Z",
                       "--end", "2025-12-29T00:00:00Z", "--bucket", "hour")  # fmt: skip

    assert code == 0
    assert api.calls == [
        ("/gaps", {"entity_id": "pos-terminal-7", "start_time": "2025-12-28T00:00:00Z",
                   "end_time": "2025-12-29T00:00:00Z", "bucket": "hour"})
    ]  # fmt: skip
    assert "gaps of pos-terminal-7" in out
    assert re.search(r"empty\s+3\b", out) and re.search(r"buckets\s+24 × 1 hour", out)
    assert cells(line_with(out, "│ 2025-12-28T05:00")) == [
        "2025-12-28T05:00:00.000000Z",
        "2025-12-28T07:00:00.000000Z",
        "2",
    ]
    assert cells(line_with(out, "│ 2025-12-28T13:00")) == [
        "2025-12-28T13:00:00.000000Z",
        "2025-12-28T14:00:00.000000Z",
        "1",
    ]
    # one character per hour, 00:00 first: 05, 06 and 13 are empty
    assert line_with(out, "2025-12-28 00:00").split()[-1] == "█████··██████·██████████"


def test_gaps_of_an_entity_without_gaps(api: FakeApi, capsys) -> None:
    api.answers["/gaps"] = {**GAPS, "empty_buckets": 0, "gaps": []}

    _, out, _ = run(capsys, "gaps", "--entity-id", "pos-terminal-7", "--start", "2025-12-28T00:00:00Z",
                    "--end", "2025-12-29T00:00:00Z")  # fmt: skip

    assert "bucket" not in api.calls[0][1]
    assert "no empty hour in this window" in out
    assert "█" * 24 in out


# ---------------------------------------------------------------- duplicates
def test_duplicates_shows_totals_by_type_and_the_top_entities(api: FakeApi, capsys) -> None:
    code, out, _ = run(capsys, "duplicates", "--day", "2025-12-28", "--limit", "5")

    assert code == 0
    assert api.calls == [("/stats/duplicates", {"day": "2025-12-28", "limit": 5})]
    assert "duplicates that arrived on 2025-12-28 (UTC day of arrival), all sources" in out
    assert re.search(r"duplicate arrivals\s+512\b", out) and re.search(r"distinct event ids\s+40\b", out)
    assert re.search(r"by event_type\s+purchase 500, view 12", out)  # biggest first
    first, second = cells(line_with(out, "user_9")), cells(line_with(out, "user_2"))
    assert first[:5] == ["1", "user_9", "500", "1", "×500.0"] and blocks(first[5]) == 40
    assert second[:5] == ["2", "user_2", "4", "2", "×2.0"] and second[5] == "▍"  # 0.32 of a cell still shows


def test_duplicates_for_one_source(api: FakeApi, capsys) -> None:
    api.answers["/stats/duplicates"] = {**DUPLICATES, "source": "ios_app"}

    _, out, _ = run(capsys, "duplicates", "--day", "2025-12-28", "--source", "ios_app")

    assert api.calls == [("/stats/duplicates", {"day": "2025-12-28", "source": "ios_app"})]
    assert "(UTC day of arrival), source ios_app" in out


# ---------------------------------------------------------------- diff
def test_diff_shows_count_deltas_and_the_event_ids_that_differ(api: FakeApi, capsys) -> None:
    code, out, _ = run(capsys, "diff", "--entity", "customer-alice", "--day", "2025-12-28",
                       "--base", "REPLAY_A", "--other", "REPLAY_B")  # fmt: skip

    assert code == 0
    assert api.calls == [
        ("/aggregates/diff", {"entity_id": "customer-alice", "day": "2025-12-28", "base": "REPLAY_A",
                              "other": "REPLAY_B"})
    ]  # fmt: skip
    assert re.search(r"base\s+REPLAY_A", out) and re.search(r"other\s+REPLAY_B", out)
    assert re.search(r"inputs_hash\s+different", out)
    assert cells(line_with(out, "│ daily_event_count")) == ["daily_event_count", "10", "11", "+1"]
    assert cells(line_with(out, "│   refund")) == ["refund", "1", "0", "-1"]
    assert cells(line_with(out, "│   view")) == ["view", "5", "6", "+1"]
    assert cells(line_with(out, "evt_gone")) == ["only in base", "evt_gone"]
    assert cells(line_with(out, "evt_new_1")) == ["only in other", "evt_new_1"]
    assert cells(line_with(out, "evt_new_2")) == ["only in other", "evt_new_2"]
    assert cells(line_with(out, "evt_changed")) == ["payload changed", "evt_changed"]
    assert "1 only in base, 2 only in other, 1 payload changed (daily_event_count +1)" in out


def test_diff_of_identical_versions(api: FakeApi, capsys) -> None:
    api.answers["/aggregates/diff"] = {
        **DIFF,
        "daily_event_count": {"base": 10, "other": 10, "delta": 0},
        "counts_by_event_type": {"view": {"base": 10, "other": 10, "delta": 0}},
        "inputs_hash_equal": True,
        "only_in_base": [],
        "only_in_other": [],
        "payload_changed": [],
    }

    _, out, _ = run(capsys, "diff", "--entity", "customer-alice", "--day", "2025-12-28",
                    "--base", "REPLAY_A", "--other", "REPLAY_B")  # fmt: skip

    assert re.search(r"inputs_hash\s+equal", out)
    assert cells(line_with(out, "│ daily_event_count")) == ["daily_event_count", "10", "10", "0"]
    assert "the same event ids, with the same payloads, in both versions" in out


# ---------------------------------------------------------------- --json and errors
COMMAND_LINES = {
    "/stats/lag": ["lag", "--source", "ios_app", "--event-type", "purchase", "--day", "2025-12-28"],
    "/stats/volume": ["volume", "--source", "pos", "--event-type", "sale", "--start-day", "2025-12-28",
                      "--end-day", "2025-12-28", "--bucket", "hour"],
    "/gaps": ["gaps", "--entity", "pos-terminal-7", "--start", "2025-12-28T00:00:00Z", "--end", "2025-12-29T00:00:00Z"],
    "/stats/duplicates": ["duplicates", "--day", "2025-12-28"],
    "/aggregates/diff": ["diff", "--entity", "customer-alice", "--day", "2025-12-28", "--base", "REPLAY_A",
                         "--other", "REPLAY_B"],
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(COMMAND_LINES))
def test_json_prints_the_api_answer_as_is(api: FakeApi, capsys, path: str) -> None:
    code, out, _ = run(capsys, *COMMAND_LINES[path], "--json")

    assert code == 0
    assert [call[0] for call in api.calls] == [path]
    assert json.loads(out) == ANSWERS[path]


def test_an_api_error_names_the_query_parameter_and_exits_1(api: FakeApi, capsys) -> None:
    api.answers["/stats/volume"] = ApiError(
        400, "InvalidRequest", "at most 14 days with bucket=hour", "end_day",
        {"error": {"code": "InvalidRequest", "message": "at most 14 days with bucket=hour", "field": "end_day"}},
    )  # fmt: skip

    code, out, err = run(capsys, "volume", "--source", "pos", "--event-type", "sale", "--start-day", "2025-12-01",
                         "--end-day", "2025-12-28", "--bucket", "hour")  # fmt: skip

    assert code == 1
    assert "HTTP 400 InvalidRequest: at most 14 days with bucket=hour (field: end_day)" in err
    assert out == ""


@pytest.mark.parametrize("render", ["show_lag", "show_volume", "show_gaps", "show_duplicates", "show_diff"])
def test_an_ascii_only_output_gets_ascii_bars_and_symbols(render: str) -> None:
    # GIVEN an output that cannot encode anything but ASCII (a strict codec raises on the first other character)
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    out = Output(stdout=stream)
    answer = {"show_lag": LAG, "show_volume": VOLUME, "show_gaps": GAPS, "show_duplicates": DUPLICATES,
              "show_diff": DIFF}[render]  # fmt: skip

    getattr(investigate, render)(out, answer)

    stream.flush()
    text = stream.buffer.getvalue().decode("ascii")  # type: ignore[attr-defined]
    expected = {"show_lag": "<= 6 h", "show_volume": "2025-12-28 to 2025-12-28", "show_gaps": "24 x 1 hour",
                "show_duplicates": "x500.0", "show_diff": "base to other"}[render]  # fmt: skip
    assert expected in text
    if render in ("show_lag", "show_volume", "show_duplicates"):
        assert "#" * 10 in text
    if render == "show_gaps":
        assert "#####..######.##########" in text


# ---------------------------------------------------------------- charts
def test_bars_scale_to_the_largest_value_and_never_hide_a_small_one() -> None:
    assert charts.bar(8, 8, 40) == charts.FULL * 40
    assert charts.bar(3, 8, 40) == charts.FULL * 15
    assert charts.bar(1, 3, 10) == charts.FULL * 3 + "▍"  # 3.33 cells: three full, then 3/8 of one
    assert charts.bar(1, 500, 40) == "▏"
    assert charts.bar(0, 500, 40) == ""


def test_charts_fall_back_to_ascii() -> None:
    assert charts.bar(3, 8, 40, unicode=False) == "#" * 15
    assert charts.bar(1, 500, 40, unicode=False) == "#"
    assert charts.strip([True, False, True], unicode=False) == "#.#"


def test_durations_read_like_a_person_writes_them() -> None:
    assert [charts.duration(ms) for ms in (0, 850, 12_345, 245_000, 11_220_000, 90_000_000, None)] == [
        "0 ms", "850 ms", "12.3 s", "4m 05s", "3h 07m", "1d 01h", "-",
    ]  # fmt: skip
    assert [charts.bound(ms) for ms in (1000, 60_000, 600_000, 3_600_000, 86_400_000, 1500)] == [
        "1 s", "1 min", "10 min", "1 h", "24 h", "1500 ms",
    ]  # fmt: skip

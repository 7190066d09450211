"""Waiting for a run with a live line (evreplay.cli.progress), and the two commands that use it:
`evreplay replay wait` and `evreplay reconcile --wait`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from evreplay.cli import progress
from evreplay.cli.client import ApiClient
from evreplay.cli.main import main
from evreplay.cli.output import Output
from evreplay.cli.progress import Shown, WaitTimeout, poll, wait_with_progress
from rich.console import Console


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(progress.time, "sleep", pauses.append)
    return pauses


def views(*statuses: str, **extra: Any) -> Iterator[dict[str, Any]]:
    for n, status in enumerate(statuses):
        yield {"status": status, "progress": {"partitions_done": n, "partitions_total": len(statuses)}, **extra}


def test_poll_returns_the_first_final_view_having_shown_every_one(no_pauses: list[float]) -> None:
    # GIVEN a run that is RUNNING twice, then SUCCEEDED
    fetched = views("RUNNING", "RUNNING", "SUCCEEDED", "RUNNING")
    seen: list[str] = []

    # WHEN it is polled
    final = poll(lambda: next(fetched), "replay r-1", timeout=60, on_update=lambda view, _: seen.append(view["status"]))

    # THEN the final view comes back after three fetches, every one shown, with a pause between
    assert final["status"] == "SUCCEEDED" and final["progress"]["partitions_done"] == 2
    assert seen == ["RUNNING", "RUNNING", "SUCCEEDED"]
    assert len(no_pauses) == 2 and all(0 < pause <= 2.0 for pause in no_pauses)


def test_poll_gives_up_after_the_timeout_naming_the_run_and_its_status() -> None:
    with pytest.raises(WaitTimeout) as raised:
        poll(lambda: {"status": "RUNNING"}, "reconcile rc-1", timeout=0)
    assert str(raised.value) == "reconcile rc-1 still RUNNING after 0s"
    assert raised.value.view == {"status": "RUNNING"}


def test_on_a_terminal_the_live_line_shows_what_the_run_reports() -> None:
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    terminal = io.StringIO()
    out.err = Console(file=terminal, force_terminal=True, width=100)
    fetched = views("RUNNING", "RUNNING", "SUCCEEDED")

    final = wait_with_progress(
        out,
        lambda: next(fetched),
        "reconcile rc-1",
        60,
        lambda view, _: Shown(f"partitions {view['progress']['partitions_done']} of 3", 0, 3),
    )

    assert final["status"] == "SUCCEEDED"
    assert "partitions 2 of 3" in terminal.getvalue()


def test_without_a_terminal_nothing_but_the_result_is_written() -> None:
    stderr = io.StringIO()
    out = Output(stdout=io.StringIO(), stderr=stderr)
    fetched = views("RUNNING", "SUCCEEDED")

    final = wait_with_progress(out, lambda: next(fetched), "replay r-1", 60, lambda *_: Shown("never shown"))

    assert final["status"] == "SUCCEEDED" and stderr.getvalue() == ""


class FakeApi:
    """POST /reconcile starts rc-1; GET /reconcile/rc-1 answers the given statuses in turn."""

    def __init__(self, *statuses: str) -> None:
        self.views = views(*statuses, reconcile_id="rc-1", result={"partitions": 3, "missing_rows": 0})
        self.gets = 0

    def post(self, path: str, body: Any, headers: Any = None) -> Any:
        assert path == "/reconcile"
        return {"reconcile_id": "rc-1", "status": "RUNNING"}

    def get(self, path: str, **query: Any) -> Any:
        assert path == "/reconcile/rc-1"
        self.gets += 1
        return next(self.views)


def use(monkeypatch: pytest.MonkeyPatch, fake: FakeApi) -> FakeApi:
    monkeypatch.setattr(ApiClient, "for_url", classmethod(lambda cls, *args, **kwargs: fake))
    return fake


def test_reconcile_wait_prints_the_final_view_and_exits_0_when_it_succeeded(monkeypatch, capsys) -> None:
    api = use(monkeypatch, FakeApi("RUNNING", "RUNNING", "SUCCEEDED"))

    code = main(["reconcile", "--from", "2025-06-01", "--to", "2025-06-01", "--wait", "--json"])

    assert code == 0 and api.gets == 3
    assert json.loads(capsys.readouterr().out)["status"] == "SUCCEEDED"


def test_reconcile_wait_that_times_out_says_the_run_keeps_running_and_exits_1(monkeypatch, capsys) -> None:
    use(monkeypatch, FakeApi("RUNNING"))

    code = main(["reconcile", "--from", "2025-06-01", "--to", "2025-06-01", "--wait", "--wait-timeout", "0"])

    assert code == 1
    assert "reconcile rc-1 still running after 0s; it keeps running" in capsys.readouterr().err


def test_replay_wait_that_times_out_names_the_replay_and_how_to_follow_it(monkeypatch, capsys) -> None:
    class Replays:
        def get(self, path: str, **query: Any) -> Any:
            assert path == "/replays/r-1"
            return {"replay_id": "r-1", "status": "RUNNING"}

    monkeypatch.setattr(ApiClient, "for_url", classmethod(lambda cls, *args, **kwargs: Replays()))

    code = main(["replay", "wait", "r-1", "--wait-timeout", "0"])

    assert code != 0
    assert "replay r-1 still RUNNING after 0s; it keeps running: evreplay replay status r-1" in capsys.readouterr().err

"""The CLI's API client: when it signs, how it signs, how API errors become exit codes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from evreplay.cli.client import ApiClient, ApiError, Signer, is_local_url, region_of
from evreplay.cli.main import main


def test_local_urls_are_not_signed_and_remote_ones_are() -> None:
    assert is_local_url("http://127.0.0.1:3000")
    assert is_local_url("http://localhost:3000")
    assert is_local_url("http://[::1]:3000")
    assert not is_local_url("https://abc123.execute-api.eu-west-1.amazonaws.com/v1")
    assert ApiClient.for_url("http://127.0.0.1:3000").signer is None


def test_region_comes_from_an_execute_api_host() -> None:
    assert region_of("https://abc123.execute-api.eu-west-1.amazonaws.com/v1") == "eu-west-1"
    assert region_of("https://api.example.com/v1") is None


def test_signer_adds_a_sigv4_authorization_for_execute_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    signer = Signer(region="eu-west-1")
    headers = signer.headers(
        "POST", "https://abc.execute-api.eu-west-1.amazonaws.com/v1/events", b"{}", {"Content-Type": "application/json"}
    )
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "X-Amz-Date" in headers


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, Any]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.answers[self.path]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_api_errors_carry_code_message_and_field(fake_api: str) -> None:
    _Handler.answers = {
        "/events": (400, {"error": {"code": "InvalidRequest", "message": "no offset", "field": "event_time"}})
    }
    with pytest.raises(ApiError) as raised:
        ApiClient(fake_api).post("/events", {})
    assert (raised.value.status, raised.value.code, raised.value.field) == (400, "InvalidRequest", "event_time")
    assert not raised.value.retryable


def test_cli_exits_non_zero_with_the_reason_when_the_api_says_no(
    fake_api: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _Handler.answers = {
        "/events": (400, {"error": {"code": "InvalidRequest", "message": "no offset", "field": "event_time"}})
    }
    source = tmp_path / "event.json"
    source.write_text("{}")
    assert main(["send", str(source), "--api-url", fake_api]) == 1
    assert "InvalidRequest: no offset (field: event_time)" in capsys.readouterr().err


def test_cli_exit_code_3_when_the_api_is_unreachable(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "event.json"
    source.write_text("{}")
    assert main(["send", str(source), "--api-url", "http://127.0.0.1:9"]) == 3
    assert "cannot reach" in capsys.readouterr().err


def test_cli_exit_code_2_for_input_that_is_not_json(tmp_path: Any) -> None:
    source = tmp_path / "event.json"
    source.write_text("{nope")
    assert main(["send", str(source), "--api-url", "http://127.0.0.1:9"]) == 2

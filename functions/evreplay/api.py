"""HTTP plumbing shared by the API functions: reading bodies, answering JSON, mapping domain
errors to statuses in one place, and the caller's identity."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from evreplay.errors import EvReplayError, InvalidRequest, PayloadTooLarge, error_body, http_status
from evreplay.observability import logger


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body(event: BaseProxyEvent, max_bytes: int) -> Any:
    """The request body as JSON, or InvalidRequest / PayloadTooLarge naming the body."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise InvalidRequest("request body is required (a JSON object)", field="body")
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("body is not valid base64", field="body") from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"request body is {len(data)} bytes; the limit is {max_bytes}", field="body")
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("body is not valid UTF-8", field="body") from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}"[:300], field="body") from exc


def json_response(status_code: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status_code,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        headers=headers or {},
    )


def requested_by(event: BaseProxyEvent) -> dict[str, Any]:
    """The caller's identity as API Gateway saw it (IAM auth fills userArn and accessKey)."""
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    who = {
        "user_arn": identity.get("userArn"),
        "caller": identity.get("caller"),
        "account_id": identity.get("accountId"),
        "access_key": identity.get("accessKey"),
        "source_ip": identity.get("sourceIp"),
        "user_agent": identity.get("userAgent"),
        "request_id": context.get("requestId"),
    }
    return {key: value for key, value in who.items() if value}


def install_error_handlers(app: APIGatewayRestResolver) -> None:
    """Every error leaves in the contract's shape: {"error": {"code", "message", "field"}}."""

    @app.exception_handler(EvReplayError)
    def _domain_error(error: EvReplayError) -> Response:
        status = http_status(error)
        if status >= 500:
            logger.exception("request failed", extra={"code": error.code})
        return json_response(status, error_body(error))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        return json_response(404, {"error": {"code": "NotFound", "message": "no such route", "field": None}})

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return json_response(
            500, {"error": {"code": "InternalError", "message": "internal error; see logs", "field": None}}
        )

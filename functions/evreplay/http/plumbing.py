"""HTTP plumbing shared by the API functions: reading bodies, answering JSON, mapping domain
errors to statuses in one place, and the caller's identity."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from evreplay.core.answers import Answer
from evreplay.core.errors import EvReplayError, InvalidRequest, PayloadTooLarge, error_body, http_status
from evreplay.core.event_ids import reject_constant
from evreplay.core.observability import logger

# How deep a request body may nest. Far more than events need, and far below what Python's
# recursion limit lets the code after parsing handle: Powertools' idempotency deep-copies the body
# (two frames per level), event ids and hashes serialize it again, the processor parses it again.
# Measured before this limit: a 450-level payload with an Idempotency-Key, or a 976-level one
# without, parsed fine and then failed with RecursionError (500).
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# A \uD800-\uDFFF escape: the only way a lone surrogate gets into a parsed JSON string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf, which no JSON encoder may write back
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def nests_deeper_than(data: bytes, limit: int) -> bool:
    """Whether valid JSON `data` nests arrays/objects more than `limit` levels deep, without recursion:
    drop the strings, keep the brackets, peel the innermost pairs `limit` times."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    brackets = brackets.replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_json_body(event: BaseProxyEvent, max_bytes: int) -> Any:
    """The request body as JSON, or InvalidRequest / PayloadTooLarge naming the body.

    Strict: the body must be UTF-8, nest at most MAX_JSON_DEPTH levels, and hold only what can be
    written back as JSON (no NaN/Infinity, no number out of a double's range, no lone surrogate
    escape) - whatever passes is stored, hashed and replayed without a surprise later."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise InvalidRequest("required (a JSON object)", field="body")
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("not valid base64", field="body") from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{len(data)} bytes; at most {max_bytes} (MaxBodyBytes)", field="body")
    too_deep = InvalidRequest(f"nests deeper than {MAX_JSON_DEPTH} levels; at most {MAX_JSON_DEPTH}", field="body")
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("not valid UTF-8", field="body") from exc
    except RecursionError as exc:
        raise too_deep from exc
    except ValueError as exc:
        raise InvalidRequest(f"not valid JSON: {exc}"[:300], field="body") from exc
    if nests_deeper_than(data, MAX_JSON_DEPTH):
        raise too_deep
    if _SURROGATE_ESCAPE.search(data) and _has_lone_surrogate(value):
        raise InvalidRequest("has a \\u escape of a lone UTF-16 surrogate (not a character)", field="body")
    return value


def json_response(status_code: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return answer_response(Answer.of(status_code, body), headers)


def answer_response(answer: Answer, headers: dict[str, str] | None = None) -> Response:
    """The answer's text as it is (an idempotent retry's bytes are the first response's)."""
    return Response(
        status_code=answer.status_code, content_type="application/json", body=answer.text, headers=headers or {}
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

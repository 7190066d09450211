"""Opaque pagination cursors for the list routes (`next_cursor` out, `cursor=` in).

A cursor is the URL-safe base64 of a small JSON object (a DynamoDB key, a Step Functions token).
Anything that does not decode to the expected shape is the caller's mistake: 400 naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from evreplay.core.errors import InvalidRequest

MAX_CURSOR_CHARS = 4096
# DynamoDB's limit for a sort key: a longer value in an ExclusiveStartKey is a ValidationException
# there (a 503 here), so it is refused as the caller's mistake first.
MAX_KEY_BYTES = 1024


def encode_cursor(position: dict[str, Any] | None) -> str | None:
    if not position:
        return None
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, required_keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The position a cursor stands for, or InvalidRequest(field="cursor")."""
    if cursor is None or cursor == "":
        return None
    invalid = InvalidRequest("not a cursor this API returned; pass a next_cursor as it came", field="cursor")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid from exc
    if not isinstance(position, dict) or any(not isinstance(position.get(key), str) for key in required_keys):
        raise invalid
    if any(len(position[key].encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES for key in required_keys):
        raise invalid
    return position

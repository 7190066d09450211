"""Query-string parameters of the list routes, parsed strictly: a bad value is a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import date
from typing import Any

from evreplay import schemas
from evreplay.errors import InvalidRequest
from evreplay.schemas import NOT_A_DAY
from evreplay.times import InvalidTimestamp, normalize

Params = Mapping[str, str | None]


def text(params: Params, name: str, required: bool = False, max_length: int = 256) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest("required", field=name)
        return None
    if len(value) > max_length:
        raise InvalidRequest(f"longer than {max_length} characters", field=name)
    return value


def required_text(params: Params, name: str, max_length: int = 256) -> str:
    value = text(params, name, required=True, max_length=max_length)
    assert value is not None  # text() raised otherwise
    return value


def integer(params: Params, name: str, default: int, minimum: int, maximum: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        # int() alone also reads other scripts' digits ("١٠" is 10); the API speaks ASCII.
        if not value.isascii():
            raise ValueError(value)
        number = int(value)
    except ValueError as exc:
        raise InvalidRequest(f"not an integer; an integer from {minimum} to {maximum}", field=name) from exc
    if not minimum <= number <= maximum:
        raise InvalidRequest(f"must be from {minimum} to {maximum}", field=name)
    return number


def boolean(params: Params, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidRequest("must be true or false", field=name)
    return lowered == "true"


def timestamp(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return normalize(value)
    except InvalidTimestamp as exc:
        raise InvalidRequest(str(exc), field=name) from exc


def schema_checked(schema: str, params: Mapping[str, str], integers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The query string checked against a JSON Schema file (400 naming the parameter). Query strings
    are text: the `integers` are converted first so the schema can check their range; a value that is
    not a plain ASCII integer ("²", "--5", more digits than int() takes) stays text and the schema
    names it."""
    values: dict[str, Any] = dict(params)
    for name in integers:
        raw = values.get(name)
        if isinstance(raw, str) and raw.strip().isascii() and raw.strip().lstrip("-").isdigit():
            with suppress(ValueError):
                values[name] = int(raw)
    schemas.check(schema, values)
    return values


def calendar_day(value: str, field: str) -> date:
    """A schema-shaped YYYY-MM-DD that must also be a real date; 400 naming the field otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(NOT_A_DAY, field=field) from exc

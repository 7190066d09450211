"""Query-string parameters, parsed strictly against their schema files: a bad value is a 400 naming it."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import date
from typing import Any

from evreplay.core import schemas
from evreplay.core.errors import InvalidRequest
from evreplay.core.schemas import NOT_A_DAY

Params = Mapping[str, str | None]


def schema_checked(
    schema: str, params: Mapping[str, str | None], integers: tuple[str, ...] = (), booleans: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The query string checked against a JSON Schema file (400 naming the parameter). Query strings
    are text: the `integers` are converted first so the schema can check their range, the `booleans`
    when they are true or false (any case); a value that is not a plain ASCII integer ("²", "--5",
    more digits than int() takes) stays text and the schema names it. An empty value is an absent one."""
    values: dict[str, Any] = {name: value for name, value in params.items() if value is not None and value != ""}
    for name in integers:
        raw = values.get(name)
        if isinstance(raw, str) and raw.strip().isascii() and raw.strip().lstrip("-").isdigit():
            with suppress(ValueError):
                values[name] = int(raw)
    for name in booleans:
        raw = values.get(name)
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            values[name] = raw.lower() == "true"
    schemas.check(schema, values)
    return values


def calendar_day(value: str, field: str) -> date:
    """A schema-shaped YYYY-MM-DD that must also be a real date; 400 naming the field otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(NOT_A_DAY, field=field) from exc

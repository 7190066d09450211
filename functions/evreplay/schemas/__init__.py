"""The JSON Schema files are the single source of truth for valid input: the API, the state
machine's input check and the docs all use them. This module loads them and turns the first
violation into an error that names the offending field."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from evreplay.errors import InvalidRequest

EVENT = "event"
EVENT_BATCH = "event_batch"
REPLAY_REQUEST = "replay_request"
REPLAY_MESSAGE = "replay_message"
AGGREGATES_QUERY = "aggregates_query"
AGGREGATES_DIFF_QUERY = "aggregates_diff_query"
LAG_QUERY = "lag_query"
VOLUME_QUERY = "volume_query"
GAPS_QUERY = "gaps_query"
DUPLICATES_QUERY = "duplicates_query"
RECONCILE_REQUEST = "reconcile_request"


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed schema `<name>.schema.json` shipped in this package."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def field_path(parts: Iterable[Any], prefix: str = "") -> str:
    """`["events", 3, "payload"]` -> `events[3].payload`."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _describe(error: ValidationError, prefix: str) -> tuple[str, str]:
    """(field, message) for one schema violation, phrased for a client."""
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        name = missing[0] if missing else ""
        return field_path([*path, name], prefix), f"{name} is required"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(key for key in instance if key not in known)
        name = extra[0] if extra else ""
        return field_path([*path, name], prefix), f"unknown field {name!r}; allowed: {', '.join(sorted(known))}"
    field = field_path(path, prefix) or (prefix or "body")
    leaf = str(path[-1]) if path else field
    if error.validator == "type":
        return field, f"{leaf} must be of type {error.validator_value}"
    if error.validator == "pattern":
        return field, f"{leaf} contains characters that are not allowed"
    if error.validator in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"):
        return field, f"{leaf} violates {error.validator} {error.validator_value}"
    return field, f"{leaf}: {error.message}"


def check_property(name: str, property_name: str, value: Any, field: str) -> None:
    """Check one value against one property of a schema: for a value that arrives elsewhere than in
    the body it stands for (the Idempotency-Key header for the `idempotency_key` field)."""
    subschema = load(name)["properties"][property_name]
    error = best_match(Draft202012Validator(subschema).iter_errors(value))
    if error is not None:
        raise InvalidRequest(_describe(error, field)[1], field=field)


def check(name: str, instance: Any, prefix: str = "", error_class: type[InvalidRequest] = InvalidRequest) -> None:
    """Raise `error_class` naming the field of the most relevant violation, if any."""
    error = best_match(validator(name).iter_errors(instance))
    if error is None:
        return
    field, message = _describe(error, prefix)
    raise error_class(message, field=field)

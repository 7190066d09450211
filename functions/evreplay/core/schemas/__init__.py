"""The JSON Schema files are the single source of truth for valid input: the API, the state
machine's input check and the docs all use them. This module loads them and turns the first
violation into an error that names the offending field.

jsonschema itself is imported by `evreplay.core.schemas.validators`, which this module loads only
when a validator is first needed: a handler whose requests validate calls `prepare()` at init (so no
request pays for it), and a function that never validates never loads jsonschema
(benchmarks/README.md, cold start).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from types import ModuleType
from typing import TYPE_CHECKING, Any

from evreplay.core.errors import InvalidRequest
from evreplay.core.times import InvalidTimestamp

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

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
EVENTS_QUERY = "events_query"
REPLAYS_QUERY = "replays_query"
RECONCILE_REQUEST = "reconcile_request"
# Response schemas (`<name>.response.schema.json`): what the API answers; the OpenAPI document and the
# tests read them, the code does not validate its own answers at run time.
REPLAY_RESPONSE = "replay.response"
RECONCILE_RESPONSE = "reconcile.response"
ERROR_RESPONSE = "error.response"
_SUFFIX = ".schema.json"


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed schema `<name>.schema.json` shipped in this package."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _names() -> list[str]:
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(_SUFFIX)
    )


def response_names() -> list[str]:
    """Every response schema's name (`replay.response`, ...), sorted."""
    return [name for name in _names() if name.endswith(".response")]


def input_names() -> list[str]:
    """Every schema of what the code takes (bodies, query strings, execution inputs, messages), sorted."""
    return [name for name in _names() if not name.endswith(".response")]


def _validators() -> ModuleType:
    # The one place jsonschema is loaded from (see the module docstring).
    from evreplay.core.schemas import validators

    return validators


@cache
def validator(name: str) -> Draft202012Validator:
    validator_: Draft202012Validator = _validators().build(load(name))
    return validator_


def prepare() -> None:
    """Build every input schema's validator now: a handler whose requests validate calls this at init,
    so its first request neither imports jsonschema nor builds a validator (~2 ms for all of them)."""
    for name in input_names():
        validator(name)


@cache
def registry() -> Registry[Any]:
    """Every schema file by its `$id`, so a file's `$ref` to another file (by name) resolves."""
    registry_: Registry[Any] = _validators().registry_of(load(name) for name in _names())
    return registry_


@cache
def response_validator(name: str) -> Draft202012Validator:
    """A validator for one response schema, its references to other files resolved (the tests and the
    OpenAPI document read them; the code does not validate its own answers)."""
    validator_: Draft202012Validator = _validators().build(load(name), registry())
    return validator_


NOT_A_DAY = "not a calendar date (YYYY-MM-DD)"

# What each pattern of the schema files allows, said for a person.
_PATTERN_PHRASES = {
    "^[A-Za-z0-9_.:-]+$": "has a character that is not allowed; allowed: letters, digits and _ . : -",
    "^[^\\u0000-\\u001f\\u007f-\\u009f]+$": "has a control character; any other character is allowed",
    "^[^\\s#\\u0000-\\u001f\\u007f-\\u009f]+$": "has whitespace, # or a control character; those are not allowed",
    "^[\\u0021-\\u007e]+$": "has a character that is not allowed; allowed: printable ASCII, no spaces",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$": NOT_A_DAY,
    "^[A-Za-z0-9_-]+$": "not a cursor this API returned; pass a next_cursor as it came",
}
_FORMAT_PHRASES = {"date": NOT_A_DAY, "date-time": "not an RFC 3339 timestamp with an offset"}
_TYPE_PHRASES = {
    "object": "a JSON object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false (a JSON boolean)",
    "null": "null",
}


def field_path(parts: Iterable[Any], prefix: str = "") -> str:
    """`["events", 3, "payload"]` -> `events[3].payload`."""
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _detail(error: ValidationError) -> str:
    """What is wrong with the value and what is allowed (the field is named by the caller)."""
    bound = error.validator_value
    if error.validator == "type":
        kinds = bound if isinstance(bound, list) else [bound]
        return "must be " + " or ".join(_TYPE_PHRASES.get(kind, str(kind)) for kind in kinds)
    if error.validator == "pattern":
        return _PATTERN_PHRASES.get(bound, f"does not match the pattern {bound}")
    if error.validator == "format":
        if isinstance(error.cause, InvalidTimestamp):
            return str(error.cause)
        return _FORMAT_PHRASES.get(bound, f"not a valid {bound}")
    if error.validator == "minLength":
        return "must not be empty" if bound == 1 else f"must be at least {_plural(bound, 'character')}"
    if error.validator == "maxLength":
        return f"must be at most {_plural(bound, 'character')}"
    if error.validator == "minItems":
        return f"must hold at least {_plural(bound, 'item')}"
    if error.validator == "maxItems":
        return f"must hold at most {_plural(bound, 'item')}"
    if error.validator == "uniqueItems":
        return "must not hold the same item twice"
    if error.validator == "minimum":
        return f"must be at least {bound}"
    if error.validator == "maximum":
        return f"must be at most {bound}"
    if error.validator == "enum":
        return "must be one of " + ", ".join(str(choice) for choice in bound)
    return error.message


def _describe(error: ValidationError, prefix: str, root: str = "body", hidden: tuple[str, ...] = ()) -> tuple[str, str]:
    """(field, what is wrong and what is allowed) for one schema violation, phrased for a client.
    `root` names the whole value when the violation is the value itself ("body", "input"); `hidden`
    fields are not offered as allowed (the caller may not set them)."""
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        return field_path([*path, missing[0] if missing else ""], prefix), "required"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        properties = error.schema.get("properties", {})
        extra = sorted(key for key in instance if key not in properties)
        # Fields the system sets for itself (x-internal) are not offered to a caller.
        allowed = sorted(name for name, spec in properties.items() if not spec.get("x-internal") and name not in hidden)
        return field_path([*path, extra[0] if extra else ""], prefix), f"unknown field; allowed: {', '.join(allowed)}"
    return field_path(path, prefix) or prefix or root, _detail(error)


@cache
def _property_validator(name: str, property_name: str) -> Draft202012Validator:
    validator_: Draft202012Validator = _validators().build(load(name)["properties"][property_name])
    return validator_


def check_property(name: str, property_name: str, value: Any, field: str) -> None:
    """Check one value against one property of a schema: for a value that arrives elsewhere than in
    the body it stands for (the Idempotency-Key header for the `idempotency_key` field)."""
    error = _validators().first_error(_property_validator(name, property_name), value)
    if error is not None:
        raise InvalidRequest(_describe(error, field)[1], field=field)


def check(
    name: str,
    instance: Any,
    prefix: str = "",
    error_class: type[InvalidRequest] = InvalidRequest,
    root: str = "body",
    hidden: tuple[str, ...] = (),
) -> None:
    """Raise `error_class` naming the field of the most relevant violation, if any."""
    error = _validators().first_error(validator(name), instance)
    if error is None:
        return
    field, message = _describe(error, prefix, root, hidden)
    raise error_class(message, field=field)

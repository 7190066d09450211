"""The jsonschema side of evreplay.core.schemas: validators and the format checker. jsonschema (with
`referencing` and `rpds`) is the heaviest import of a function's init, so only the functions whose
requests validate load it: their handler calls `schemas.prepare()` at init, and a function that never
validates (the replay page, the plan, the map's workers) never imports this module."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from evreplay.core.times import InvalidTimestamp, parse_rfc3339

# Every format the files state is checked: "date" by jsonschema (no extra package), "date-time" by
# the parser the API stores times with (evreplay.core.times), so a time the schema passes is one the
# code takes, and a refusal says what the parser says.
FORMATS = FormatChecker(formats=("date",))


@FORMATS.checks("date-time", raises=InvalidTimestamp)
def _rfc3339(value: object) -> bool:
    if isinstance(value, str):
        parse_rfc3339(value)
    return True


def build(schema: dict[str, Any], registry: Registry[Any] | None = None) -> Draft202012Validator:
    """A validator for one schema. The schema itself is not checked against the 2020-12 metaschema
    here (~6 ms a file): the files are fixed at build time, and tests/unit check every one of them."""
    if registry is None:
        return Draft202012Validator(schema, format_checker=FORMATS)
    return Draft202012Validator(schema, registry=registry, format_checker=FORMATS)


def first_error(validator: Draft202012Validator, instance: Any) -> ValidationError | None:
    """The most relevant violation, if any."""
    return best_match(validator.iter_errors(instance))


def registry_of(schemas: Iterable[dict[str, Any]]) -> Registry[Any]:
    """These schemas by their `$id`, so a file's `$ref` to another file (by name) resolves."""
    return Registry().with_resources((schema["$id"], Resource.from_contents(schema)) for schema in schemas)

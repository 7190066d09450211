"""The input schema files (`core/schemas/<name>.schema.json`): valid 2020-12 schemas, named by their
file. The functions build their validators without checking the schema against the metaschema (it
costs ~6 ms a file at init), so this is where a malformed file is caught."""

from __future__ import annotations

import pytest
from evreplay.core import schemas
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


def test_input_and_response_schemas_are_every_file() -> None:
    names = schemas.input_names()

    assert {schemas.EVENT, schemas.REPLAY_REQUEST, schemas.REPLAY_MESSAGE, schemas.RECONCILE_REQUEST} <= set(names)
    assert not set(names) & set(schemas.response_names())
    files = [entry.name for entry in schemas.resources.files(schemas).iterdir() if entry.name.endswith(".schema.json")]
    assert len(names) + len(schemas.response_names()) == len(files)


@pytest.mark.parametrize("name", schemas.input_names())
def test_input_schema_is_a_2020_12_schema_named_by_its_file(name: str) -> None:
    schema = schemas.load(name)

    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://evreplay.dev/schemas/{name}.schema.json"


def test_metaschema_check_catches_a_malformed_schema() -> None:
    # the control: the same check on a broken copy of a real file fails
    broken = {**schemas.load(schemas.EVENT), "type": "not-a-type"}

    with pytest.raises(SchemaError):
        Draft202012Validator.check_schema(broken)

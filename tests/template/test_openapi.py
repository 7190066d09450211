"""docs/openapi.json: generated from the template, the schema files and evreplay.cli.openapi, and
committed. These tests keep the committed file and its sources from drifting apart."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jsonschema
import pytest
from evreplay.cli import openapi
from evreplay.core import schemas
from evreplay.local.template import project_root
from openapi_spec_validator import validate

from tests.stacks import TEMPLATE

COMMITTED = project_root() / openapi.DOCUMENT_PATH


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.build_document(TEMPLATE)


def operations(document: dict[str, Any]):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_committed_document_is_what_the_script_generates(document):
    assert COMMITTED.is_file(), "docs/openapi.json is missing: run scripts/openapi.py"
    assert COMMITTED.read_text(encoding="utf-8") == openapi.render(document), (
        "docs/openapi.json is out of date: run `.venv/bin/python scripts/openapi.py` and commit it"
    )


def test_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_template_route_is_documented_and_nothing_else(template, document):
    in_template = {(route.method, route.path) for route in template.routes()}
    documented = {(method, path) for method, path, _ in operations(document)}

    assert documented == in_template
    assert len(in_template) >= 15


def test_a_route_without_an_operation_is_an_error(template, monkeypatch):
    trimmed = {key: spec for key, spec in openapi.OPERATIONS.items() if key != ("GET", "/gaps")}
    monkeypatch.setattr(openapi, "OPERATIONS", trimmed)

    with pytest.raises(openapi.DocumentError, match="/gaps"):
        openapi.build_document(template)


def test_an_operation_without_a_route_is_an_error(template, monkeypatch):
    extra = dataclasses.replace(openapi.OPERATIONS[("GET", "/gaps")], operation_id="ghost")
    monkeypatch.setattr(openapi, "OPERATIONS", {**openapi.OPERATIONS, ("GET", "/ghost"): extra})

    with pytest.raises(openapi.DocumentError, match="/ghost"):
        openapi.build_document(template)


def test_every_operation_requires_sigv4(template, document):
    api = template.sam["Resources"]["EvReplayApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    scheme = document["components"]["securitySchemes"][openapi.SECURITY_SCHEME]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"

    for method, path, operation in operations(document):
        assert operation["security"] == [{openapi.SECURITY_SCHEME: []}], (method, path)
        assert {"403", "429"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize(
    ("component", "schema_name"),
    [("Event", schemas.EVENT), ("EventBatch", schemas.EVENT_BATCH), ("ReplayRequest", schemas.REPLAY_REQUEST)],
)
def test_request_schemas_are_the_schema_files(document, component, schema_name):
    embedded = dict(document["components"]["schemas"][component])

    assert embedded.pop("x-evreplay-source") == f"functions/evreplay/core/schemas/{schema_name}.schema.json"
    assert embedded == {key: value for key, value in schemas.load(schema_name).items() if key != "$schema"}


def test_request_bodies_reference_the_schema_components(document):
    def body_schema(method: str, path: str) -> dict[str, Any]:
        return document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    assert body_schema("post", "/events") == {"$ref": "#/components/schemas/Event"}
    assert body_schema("post", "/events/batch")["allOf"] == [{"$ref": "#/components/schemas/EventBatch"}]
    assert body_schema("post", "/replays") == {"$ref": "#/components/schemas/ReplayApiRequest"}
    api_request = document["components"]["schemas"]["ReplayApiRequest"]
    file_properties = set(schemas.load(schemas.REPLAY_REQUEST)["properties"])
    assert set(api_request["properties"]) == file_properties - {"requested_by", "continuation"}
    assert api_request["additionalProperties"] is False


@pytest.mark.parametrize(
    ("method", "path", "schema_name"),
    [
        ("get", "/aggregates", schemas.AGGREGATES_QUERY),
        ("get", "/aggregates/diff", schemas.AGGREGATES_DIFF_QUERY),
        ("get", "/stats/lag", schemas.LAG_QUERY),
        ("get", "/stats/volume", schemas.VOLUME_QUERY),
        ("get", "/stats/duplicates", schemas.DUPLICATES_QUERY),
        ("get", "/gaps", schemas.GAPS_QUERY),
    ],
)
def test_query_parameters_come_from_the_query_schema_files(document, method, path, schema_name):
    loaded = schemas.load(schema_name)
    parameters = {p["name"]: p for p in document["paths"][path][method]["parameters"]}

    assert set(parameters) == set(loaded["properties"])
    for name, parameter in parameters.items():
        assert parameter["in"] == "query"
        assert parameter["schema"] == loaded["properties"][name]
        assert parameter["required"] == (name in loaded.get("required", ()))


def test_every_error_response_is_in_the_error_shape(document):
    error_schema = {"$ref": "#/components/schemas/Error"}
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400 and path != "/health":
                content = resolve(document, response)["content"]["application/json"]["schema"]
                assert content == error_schema, (method, path, status)


def test_api_gateway_refusals_render_in_the_error_shape(template, document):
    # What API Gateway sends for an unsigned request, with the template's gateway response mapping.
    body = template.sam["Resources"]["EvReplayApi"]["Properties"]["GatewayResponses"]
    error_schema = {**document["components"]["schemas"]["Error"], "$defs": document["components"]["schemas"]}
    error_schema = json.loads(json.dumps(error_schema).replace("#/components/schemas/", "#/$defs/"))
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        template_text = body[kind]["ResponseTemplates"]["application/json"]
        rendered = template_text.replace("$context.error.responseType", "MISSING_AUTHENTICATION_TOKEN").replace(
            "$context.error.messageString", json.dumps('Missing "Authentication" Token')
        )

        jsonschema.validate(json.loads(rendered), error_schema)

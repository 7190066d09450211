"""An in-process API Gateway: the template's routes, REST proxy events with an IAM identity,
handlers invoked in-process. The local HTTP server and the tests both go through it."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from evreplay.local.runtime import invoke
from evreplay.local.template import ACCOUNT_ID, Route, Template

# The methods a REST API method can be declared for; anything else never reaches a route.
API_GATEWAY_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

LOCAL_IDENTITY = {
    "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local-developer",
    "caller": "AIDALOCALDEVELOPER",
    "accountId": ACCOUNT_ID,
    "accessKey": "AKIALOCALDEVELOPER",
    "sourceIp": "127.0.0.1",
    "userAgent": "evreplay-local",
}


@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]
    names: tuple[str, ...] = field(default=())


def _compile(route: Route) -> _CompiledRoute:
    names = tuple(re.findall(r"\{([^}/+]+)\+?\}", route.path))
    regex = re.sub(r"\{[^}/]+\+\}", "(.+)", route.path)
    regex = re.sub(r"\{[^}/]+\}", "([^/]+)", regex)
    return _CompiledRoute(route, re.compile(f"^{regex}$"), names)


def proxy_event(
    method: str,
    resource: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    path_parameters: dict[str, str] | None = None,
    identity: dict[str, Any] | None = None,
    stage: str = "v1",
) -> dict[str, Any]:
    """An API Gateway REST (v1) Lambda proxy event."""
    is_base64 = False
    text: str | None
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        text = body
    query = query or {}
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers or {}),
        "multiValueHeaders": {name: [value] for name, value in (headers or {}).items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "accountId": ACCOUNT_ID,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": dict(LOCAL_IDENTITY if identity is None else identity),
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


class LocalGateway:
    """Routes requests to the template's functions, in process."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self._routes = [_compile(route) for route in template.routes()]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self._routes:
            found = compiled.pattern.match(path)
            if found and compiled.route.method in (method, "ANY"):
                return compiled.route, dict(zip(compiled.names, found.groups(), strict=True))
        return None

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({c.route.method for c in self._routes if c.pattern.match(path)})

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str | list[str]] | str | None = None,
        identity: dict[str, Any] | None = None,
    ) -> GatewayResponse:
        """One request. `body` may be bytes/str (sent as is) or any JSON value (serialized)."""
        method = method.upper()
        if isinstance(query, str):
            parsed = parse_qs(query, keep_blank_values=True)
        else:
            parsed = {name: (value if isinstance(value, list) else [value]) for name, value in (query or {}).items()}
        raw = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        matched = self.match(method, path)
        if matched is None:
            if method not in API_GATEWAY_METHODS:
                allowed = ", ".join(self.allowed_methods(path)) or "none"
                return error_response(
                    405, "MethodNotAllowed", f"{method} is not an HTTP method of this API (here: {allowed})"
                )
            # What API Gateway (REST, IAM auth) answers for a method or path the API does not declare,
            # in the template's DEFAULT_4XX shape.
            return error_response(
                403,
                "MISSING_AUTHENTICATION_TOKEN",
                "Missing Authentication Token",
                {"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
            )
        route, parameters = matched
        headers = {"Content-Type": "application/json", **(headers or {})}
        event = proxy_event(method, route.path, path, raw, headers, parsed, parameters, identity)
        result = invoke(
            self.template.function_handler(route.function),
            event,
            function_name=route.function,
            timeout_seconds=self.template.function_timeout(route.function),
        )
        return GatewayResponse(
            status=int(result["statusCode"]),
            # API Gateway merges both forms; Powertools' REST resolver answers with multiValueHeaders.
            headers={
                **{name: str(values[-1]) for name, values in (result.get("multiValueHeaders") or {}).items() if values},
                **{name: str(value) for name, value in (result.get("headers") or {}).items()},
            },
            body=result.get("body") or "",
        )


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> GatewayResponse:
    body = json.dumps({"error": {"code": code, "message": message, "field": None}})
    return GatewayResponse(status, {"Content-Type": "application/json", **(headers or {})}, body)

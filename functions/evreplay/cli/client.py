"""The evreplay HTTP API as Python calls: one connection pool, JSON in and out, optional SigV4.

A deployed API uses IAM authorization on every route, so requests to it are signed with SigV4
(service `execute-api`) using the standard AWS credential chain. The local stack needs no
signature; requests to a loopback URL are sent unsigned unless signing is asked for.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

DEFAULT_API_URL = "http://127.0.0.1:3000"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class ApiError(Exception):
    """The API answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.body = body

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        prefix = f"HTTP {self.status} " if self.status else ""
        return f"{prefix}{self.code}: {self.message}{where}"

    @property
    def retryable(self) -> bool:
        """Worth retrying later: unreachable, throttled, in flight, or a server-side failure."""
        return self.status in (0, 409, 429) or self.status >= 500


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


def is_local_url(url: str) -> bool:
    """A loopback host: the local stack, which takes no signature."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_of(url: str) -> str | None:
    """The region in an execute-api host name, if the URL is one."""
    host = urlsplit(url).hostname or ""
    found = _EXECUTE_API_HOST.match(host)
    return found.group(1) if found else None


class Signer:
    """SigV4 for execute-api with credentials from the standard chain (env, profile, SSO, role...)."""

    def __init__(self, region: str | None = None, profile: str | None = None) -> None:
        import boto3  # only a signed client needs the credential chain

        session = boto3.session.Session(profile_name=profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise ApiError(0, "NoCredentials", "no AWS credentials found to sign requests (see `aws configure`)")
        resolved = region or session.region_name
        if not resolved:
            raise ApiError(0, "NoRegion", "cannot tell which region to sign for; pass --region")
        self.region = resolved
        self._credentials = credentials

    def headers(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())


class ApiClient:
    """Thread-safe: one urllib3 pool shared by every caller (the backfill runs many threads)."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        signer: Signer | None = None,
        timeout: float = 60.0,
        pool_size: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self._timeout = urllib3.Timeout(connect=5.0, read=timeout)
        self._pool = urllib3.PoolManager(maxsize=pool_size, retries=False)

    @classmethod
    def for_url(
        cls,
        base_url: str,
        sign: bool | None = None,
        region: str | None = None,
        profile: str | None = None,
        timeout: float = 60.0,
        pool_size: int = 8,
    ) -> ApiClient:
        """Sign unless told otherwise or the URL is the local stack's (loopback)."""
        if sign is None:
            sign = not is_local_url(base_url)
        signer = Signer(region or region_of(base_url), profile) if sign else None
        return cls(base_url, signer, timeout, pool_size)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One call. Raises ApiError for a status >= 400 or an unreachable API."""
        params = {name: _query_value(value) for name, value in (query or {}).items() if value is not None}
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode("utf-8"))
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        if self.signer is not None:
            sent = self.signer.headers(method, url, data, sent)
        try:
            raw = self._pool.request(method, url, body=data, headers=sent, timeout=self._timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(0, "Unreachable", f"cannot reach {self.base_url}: {exc}") from exc
        response = Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, _decode(raw.data))
        if response.status >= 400:
            raise _error_from(response)
        return response

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query).body

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, body=body, headers=headers).body

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path).body

    def pages(self, path: str, max_items: int | None = None, **query: Any) -> list[dict[str, Any]]:
        """Every item of a list route (`{"items", "next_cursor"}`), following cursors."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.get(path, **query, cursor=cursor)
            items.extend(page.get("items") or [])
            cursor = page.get("next_cursor")
            if not cursor or (max_items is not None and len(items) >= max_items):
                return items[:max_items] if max_items is not None else items

    def close(self) -> None:
        self._pool.clear()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def _error_from(response: Response) -> ApiError:
    body = response.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return ApiError(
            response.status,
            str(error.get("code") or "Error"),
            str(error.get("message") or ""),
            error.get("field"),
            body,
        )
    if isinstance(body, dict) and "message" in body:  # API Gateway's own errors: {"message": "..."}
        return ApiError(response.status, "ApiGateway", str(body["message"]), None, body)
    return ApiError(response.status, "HttpError", str(body)[:300] if body else f"HTTP {response.status}", None, body)

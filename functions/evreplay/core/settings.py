"""Settings for every function, read from the environment once per process and validated.

The template is the single source of truth: resource names reach the code only through the
environment variables it sets. A missing resource name is an error at cold start, never a
silent default. Limits have defaults (they are documented in the README) but are validated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache


class SettingsError(RuntimeError):
    """The environment does not describe a usable deployment."""


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """What a function may know about its deployment. Fields are None when the function's
    template entry does not grant it that resource; accessors raise a clear error then."""

    raw_bucket: str | None
    index_table: str | None
    idempotency_table: str | None
    replay_state_table: str | None
    aggregates_table: str | None
    replay_queue_url: str | None
    replay_state_machine_arn: str | None
    replay_plan_bucket: str | None
    max_body_bytes: int
    max_future_seconds: int
    idempotency_ttl_seconds: int
    max_replay_limit: int
    replay_page_size: int
    replay_pages_per_execution: int
    replay_marker_ttl_seconds: int
    max_scope_replay_limit: int
    replay_max_concurrency: int
    reconcile_bucket: str | None = None
    reconcile_state_machine_arn: str | None = None
    max_reconcile_days: int = 31
    reconcile_page_size: int = 1000
    reconcile_pages_per_task: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            raw_bucket=_optional(env, "RAW_BUCKET"),
            index_table=_optional(env, "INDEX_TABLE"),
            idempotency_table=_optional(env, "IDEMPOTENCY_TABLE"),
            replay_state_table=_optional(env, "REPLAY_STATE_TABLE"),
            aggregates_table=_optional(env, "AGGREGATES_TABLE"),
            replay_queue_url=_optional(env, "REPLAY_QUEUE_URL"),
            replay_state_machine_arn=_optional(env, "REPLAY_STATE_MACHINE_ARN"),
            replay_plan_bucket=_optional(env, "REPLAY_PLAN_BUCKET"),
            max_body_bytes=_positive_int(env, "MAX_BODY_BYTES", 1024 * 1024),
            max_future_seconds=_positive_int(env, "MAX_FUTURE_SECONDS", 24 * 3600),
            idempotency_ttl_seconds=_positive_int(env, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
            max_replay_limit=_positive_int(env, "MAX_REPLAY_LIMIT", 100_000),
            replay_page_size=_positive_int(env, "REPLAY_PAGE_SIZE", 1000),
            replay_pages_per_execution=_positive_int(env, "REPLAY_PAGES_PER_EXECUTION", 1000),
            replay_marker_ttl_seconds=_positive_int(env, "REPLAY_MARKER_TTL_SECONDS", 7 * 24 * 3600),
            max_scope_replay_limit=_positive_int(env, "MAX_SCOPE_REPLAY_LIMIT", 10_000_000),
            replay_max_concurrency=_positive_int(env, "REPLAY_MAX_CONCURRENCY", 40),
            reconcile_bucket=_optional(env, "RECONCILE_BUCKET"),
            reconcile_state_machine_arn=_optional(env, "RECONCILE_STATE_MACHINE_ARN"),
            max_reconcile_days=_positive_int(env, "MAX_RECONCILE_DAYS", 31),
            reconcile_page_size=min(_positive_int(env, "RECONCILE_PAGE_SIZE", 1000), 1000),
            reconcile_pages_per_task=_positive_int(env, "RECONCILE_PAGES_PER_TASK", 20),
        )

    def require(self, field: str) -> str:
        """The value of a resource-name field, or a clear error naming its variable."""
        value = getattr(self, field)
        if not value:
            raise SettingsError(f"environment variable {field.upper()} is required for this function")
        return str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (cold start)."""
    return Settings.from_env()


def reset_settings() -> None:
    """Forget the parsed settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()

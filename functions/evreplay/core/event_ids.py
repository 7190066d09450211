"""Deterministic event ids and content hashes, and the strict JSON parsing they rely on."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def reject_constant(name: str) -> Any:
    """json.loads' parse_constant: NaN, Infinity and -Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, no insignificant whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def payload_sha256(payload: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(payload))


def derive_event_id(source: str, event_type: str, entity_id: str, event_time: str, payload: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of (source, event_type, entity_id, normalized event_time, payload).

    `event_time` must already be normalized so that the same instant sent with different offsets
    gets the same id."""
    return sha256_hex(canonical_json([source, event_type, entity_id, event_time, payload]))

"""What an API call answers: an HTTP status and the exact JSON text of its body.

A retry with the same idempotency key answers the first response again, byte for byte (README,
POST /events). So the text is made once, kept as text wherever it is stored (Powertools' record of
the call, the ingest receipt) and sent as it is: a trip through a dict would not keep the bytes
(Powertools stores its records as JSON with sorted keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def json_text(value: Any) -> str:
    """The one JSON form the API answers with: compact, non-ASCII characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Answer:
    status_code: int
    text: str  # the body, exactly as sent

    @classmethod
    def of(cls, status_code: int, body: Any) -> Answer:
        return cls(status_code, json_text(body))

    @property
    def body(self) -> Any:
        return json.loads(self.text)

    def stored(self) -> dict[str, Any]:
        """As a JSON object for a store that re-serializes what it keeps (the text survives)."""
        return {"status_code": self.status_code, "text": self.text}

    @classmethod
    def from_stored(cls, stored: dict[str, Any], status_code: int) -> Answer:
        """Back from `stored()`. Records written before the text was kept (within the idempotency
        TTL of an upgrade) held the body as an object: `{"status_code", "body"}` for ingest, the
        body itself for replays; their key order is lost, their content is not."""
        if "text" in stored:
            return cls(int(stored["status_code"]), str(stored["text"]))
        if "body" in stored and "status_code" in stored:
            return cls.of(int(stored["status_code"]), stored["body"])
        return cls.of(status_code, stored)

"""The raw store: one immutable S3 object per arrival.

Keys are Hive-style partitions that Athena can read and that contain the event time and the
entity, safely encoded:

    raw/source=<source>/event_type=<type>/event_date=<YYYY-MM-DD>/entity=<entity>/<time>_<event_id>_<arrival>.json

`source`, `event_type` and `event_id` are already restricted to `[A-Za-z0-9_.:-]` by the schema.
The entity is percent-encoded (every byte outside `[A-Za-z0-9_.-]`, so no `/`, no `~`, no `%`
survives) which is injective, so two entities never share a prefix. An encoding longer than
`_MAX_ENTITY_SEGMENT` is cut and followed by `~` and the sha256 of the entity id: `~` never
occurs in the short form, so the long form cannot collide with a short one either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from evreplay.core.errors import AWS_CALL_ERRORS, RawObjectExists, StorageUnavailable, aws_error_code

_MAX_ENTITY_SEGMENT = 120


def entity_segment(entity_id: str) -> str:
    """A safe, collision-free key segment for an entity id."""
    encoded = quote(entity_id, safe="").replace("~", "%7E")
    if len(encoded) <= _MAX_ENTITY_SEGMENT:
        return encoded
    cut = encoded[:_MAX_ENTITY_SEGMENT]
    # Do not split a %XX escape.
    tail = cut.rfind("%")
    if tail >= len(cut) - 2:
        cut = cut[:tail]
    return f"{cut}~{hashlib.sha256(entity_id.encode('utf-8')).hexdigest()}"


def raw_key(source: str, event_type: str, entity_id: str, event_time: str, event_id: str, arrival_id: str) -> str:
    """The S3 key of one arrival. `event_time` is the normalized UTC form."""
    compact = event_time.replace("-", "").replace(":", "")  # 20251228T225959.250000Z
    return (
        f"raw/source={source}/event_type={event_type}/event_date={event_time[:10]}"
        f"/entity={entity_segment(entity_id)}/{compact}_{event_id}_{arrival_id}.json"
    )


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str


class RawStore:
    """Writes (never overwrites) and reads raw event objects."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self.bucket = bucket

    def put_new(self, key: str, document: dict[str, Any]) -> StoredObject:
        """Write `document` at `key` only if nothing is there yet (conditional write)."""
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except AWS_CALL_ERRORS as exc:
            code = aws_error_code(exc)
            if code == "PreconditionFailed":
                if _retried(exc):
                    # The key embeds this arrival's random id: only an earlier attempt of this same
                    # call can have written it (its answer was lost, botocore sent the PUT again).
                    return StoredObject(self.bucket, key)
                raise RawObjectExists(f"raw object {key} already exists") from exc
            # ConditionalRequestConflict: an earlier attempt of this PUT is still being applied.
            raise StorageUnavailable(f"could not store the raw event ({code or 'error'}); retry") from exc
        return StoredObject(self.bucket, key)

    def get(self, bucket: str, key: str) -> dict[str, Any]:
        """Read one raw object. Raises the client's NoSuchKey as `RawObjectMissing`."""
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
        except AWS_CALL_ERRORS as exc:
            code = aws_error_code(exc)
            if code in ("NoSuchKey", "404", "NotFound"):
                raise RawObjectMissing(f"raw object s3://{bucket}/{key} does not exist") from exc
            raise StorageUnavailable(f"could not read s3://{bucket}/{key} ({code or 'error'})") from exc
        document: dict[str, Any] = json.loads(response["Body"].read())
        return document


def _retried(exc: Exception) -> bool:
    """Whether botocore made more than one attempt before this error answer."""
    metadata = getattr(exc, "response", {}).get("ResponseMetadata", {})
    return int(metadata.get("RetryAttempts", 0)) > 0


class RawObjectMissing(StorageUnavailable):
    """The object an index row or a replay message points at is not there."""

    code = "RawObjectMissing"

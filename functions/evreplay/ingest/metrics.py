"""Ingest metrics per stream and per rejection reason (docs/design.md §6).

IngestCount, IngestLagMs and DuplicateCount go out under two dimension sets: (service), the total
the dashboard and alarms read, and (service, source, event_type), so one stream's lag or volume can
be graphed and alarmed on by itself. InvalidCount goes out under (service) and (service, reason),
with a reason from a small fixed set (`rejection_reason`), never a raw field name a client chose.

Powertools' shared `metrics` object holds one set of dimensions for a whole invocation, and a batch
mixes streams, so each stream (and each reason) is its own EMF document here: values gather during
the invocation and `flush()` writes them at its end. Each distinct (source, event_type) is a
custom metric in CloudWatch (three per stream, plus one per reason), so cost follows how many
streams the producers send: README, "Observability", has the figure.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from evreplay.core import schemas
from evreplay.core.errors import InvalidRequest, PayloadTooLarge

STREAM_DIMENSIONS = ("source", "event_type")
INVALID_DIMENSIONS = ("reason",)

# What a rejection can be about: each top-level field of an event, the body as a whole (not JSON,
# too deep, too large), the Idempotency-Key header, and a field the schema does not know.
REASONS = (
    *sorted(schemas.load(schemas.EVENT)["properties"]),
    "body",
    "body_too_large",
    "unknown_field",
)

_BATCH_ITEM = re.compile(r"^events\[\d+\]\.?")
_FIELD_SEPARATOR = re.compile(r"[.\[]")


def rejection_reason(error: InvalidRequest) -> str:
    """The bounded `reason` dimension of an InvalidCount for this error."""
    if isinstance(error, PayloadTooLarge):
        return "body_too_large"
    field = _BATCH_ITEM.sub("", error.field or "")
    top = _FIELD_SEPARATOR.split(field, maxsplit=1)[0]
    if top in ("", "body", "events"):
        return "body"
    if top == "Idempotency-Key":
        return "idempotency_key"
    return top if top in REASONS else "unknown_field"


Dimensions = tuple[tuple[str, str], ...]


class IngestMetrics:
    """Gathers one invocation's ingest metrics; thread-safe (batch items run concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Dimensions, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))

    def stored(self, source: str, event_type: str, lag_ms: int, duplicate: bool) -> None:
        dimensions = (("source", source), ("event_type", event_type))
        self._add(dimensions, name="IngestCount", unit=MetricUnit.Count, value=1)
        self._add(dimensions, name="IngestLagMs", unit=MetricUnit.Milliseconds, value=lag_ms)
        if duplicate:
            self._add(dimensions, name="DuplicateCount", unit=MetricUnit.Count, value=1)

    def rejected(self, error: InvalidRequest) -> None:
        reason = (("reason", rejection_reason(error)),)
        self._add(reason, name="InvalidCount", unit=MetricUnit.Count, value=1)

    def _add(self, dimensions: Dimensions, name: str, unit: MetricUnit, value: float) -> None:
        with self._lock:
            self._values[dimensions][(name, unit.value)].append(value)

    def flush(self) -> None:
        """Write every gathered value as EMF documents (stdout, which Lambda sends to CloudWatch)."""
        with self._lock:
            gathered, self._values = self._values, defaultdict(lambda: defaultdict(list))
        for dimensions, metrics in gathered.items():
            document = EphemeralMetrics()
            # The first set is (service) alone, which Powertools adds; the second names the service too.
            service = {"service": document.service} if document.service else {}
            document.add_dimensions(**service, **dict(dimensions))
            for (name, unit), values in metrics.items():
                for value in values:
                    # Powertools writes the document out by itself when a metric reaches 100 values
                    # (EMF's limit per document), keeping the dimensions for the next one.
                    document.add_metric(name=name, unit=unit, value=value)
            if document.metric_set:
                document.flush_metrics()

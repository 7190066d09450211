"""EventBridge, locally, for the one kind of event the template listens to: Step Functions'
"Step Functions Execution Status Change". moto's Step Functions emits no events, and moto's
EventBridge delivers to no Lambda target, so the local stack reports each execution's end itself
(`moto_patches` hooks the interpreter where an execution ends) as AWS would: the same event shape,
matched against the template's rules (`Template.event_rules`, patterns read by moto's own
EventBridge matcher), each matching rule's Lambda targets invoked with the event. The listed
difference: only ends are reported (AWS also reports RUNNING; the template's rule ignores it), and
delivery is synchronous, right after the execution's status changes.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from evreplay.local.template import ACCOUNT_ID, EventRule

DETAIL_TYPE = "Step Functions Execution Status Change"
SOURCE = "aws.states"
_ATTEMPTS = 3  # Lambda retries a failed asynchronous invocation twice
# Not evreplay.core.observability: importing it would build the functions' Metrics before their environment is set.
log = logging.getLogger("evreplay.local.events")


def _epoch_ms(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if isinstance(moment, datetime) else None


def status_change_event(described: dict[str, Any], region: str) -> dict[str, Any]:
    """The EventBridge event for an execution, from its DescribeExecution answer."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [described["executionArn"]],
        "detail": {
            "executionArn": described["executionArn"],
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": str(described["status"]),
            "startDate": _epoch_ms(described.get("startDate")),
            "stopDate": _epoch_ms(described.get("stopDate")),
            "input": described.get("input"),
            "output": described.get("output"),
            "inputDetails": {"included": True},
            "outputDetails": {"included": True},
            "error": described.get("error"),
            "cause": described.get("cause"),
        },
    }


class LocalEventBus:
    """The template's rules, delivering to in-process Lambda targets."""

    def __init__(self, rules: list[EventRule], invoke: Callable[[str, dict[str, Any]], Any]) -> None:
        self._rules = [(rule, EventPattern(json.dumps(rule.pattern), rule.pattern)) for rule in rules]
        self._invoke = invoke

    def publish(self, event: dict[str, Any]) -> int:
        """Deliver `event` to every matching rule's targets; how many deliveries succeeded."""
        delivered = 0
        for rule, pattern in self._rules:
            if not pattern.matches_event(event):  # type: ignore[arg-type]  # moto's TypedDict of the same shape
                continue
            for function in rule.functions:
                delivered += self._deliver(rule, function, event)
        return delivered

    def _deliver(self, rule: EventRule, function: str, event: dict[str, Any]) -> int:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self._invoke(function, event)
                return 1
            except Exception as exc:  # a target's failure must never break the interpreter's thread
                if attempt == _ATTEMPTS:
                    log.warning(
                        f"{rule.logical_id}: {function} failed {_ATTEMPTS} times on "
                        f"{event['detail'].get('name')}; event dropped ({type(exc).__name__}: {exc})"
                    )
                    return 0
                time.sleep(0.05 * attempt)
        return 0

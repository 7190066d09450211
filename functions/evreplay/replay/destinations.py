"""Where a replay can send (docs/design.md §4.12): the built-in queue, named `default`, and the
destinations the template parameter `ReplayDestinations` declares as comma-separated `name=arn`.

The type follows from the ARN: an SQS queue (`.fifo` at the end of its name: a FIFO queue) or an
EventBridge event bus. Nothing else is accepted, so a deployment can only be given destinations the
senders know how to reach, and the IAM policy of the sending functions lists exactly these ARNs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT = "default"
SQS = "sqs"
SQS_FIFO = "sqs-fifo"
EVENTBRIDGE = "eventbridge"
TYPES = (SQS, SQS_FIFO, EVENTBRIDGE)

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SQS_ARN = re.compile(r"^arn:(aws[a-z-]*):sqs:([a-z0-9-]+):([0-9]{12}):([A-Za-z0-9_-]{1,80}(\.fifo)?)$")
_BUS_ARN = re.compile(r"^arn:(aws[a-z-]*):events:([a-z0-9-]+):([0-9]{12}):event-bus/([A-Za-z0-9._/-]{1,256})$")


class InvalidDestinations(ValueError):
    """`ReplayDestinations` does not describe usable destinations (a deployment error)."""


@dataclass(frozen=True)
class Destination:
    name: str
    type: str
    arn: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "arn": self.arn}

    @property
    def queue_url(self) -> str:
        """The queue's URL, built from its ARN (no sqs:GetQueueUrl permission needed)."""
        match = _SQS_ARN.match(self.arn)
        if match is None:
            raise InvalidDestinations(f"{self.name}: {self.arn} is not an SQS queue")
        partition, region, account, queue = match.group(1, 2, 3, 4)
        domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        return f"https://sqs.{region}.{domain}/{account}/{queue}"

    @property
    def bus_name(self) -> str:
        match = _BUS_ARN.match(self.arn)
        if match is None:
            raise InvalidDestinations(f"{self.name}: {self.arn} is not an EventBridge event bus")
        return match.group(4)


def destination_type(arn: str) -> str | None:
    """sqs, sqs-fifo or eventbridge for an ARN evreplay can send to; None otherwise."""
    sqs = _SQS_ARN.match(arn)
    if sqs is not None:
        return SQS_FIFO if sqs.group(5) else SQS
    return EVENTBRIDGE if _BUS_ARN.match(arn) else None


def parse_destinations(declared: str | None, default_queue_arn: str | None) -> dict[str, Destination]:
    """The destinations by name, `default` first (when the built-in queue's ARN is known)."""
    out: dict[str, Destination] = {}
    if default_queue_arn:
        out[DEFAULT] = Destination(DEFAULT, destination_type(default_queue_arn) or SQS, default_queue_arn)
    for entry in (declared or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, arn = entry.partition("=")
        name, arn = name.strip(), arn.strip()
        if not sep or not NAME.match(name):
            raise InvalidDestinations(f"ReplayDestinations entry {entry!r}: expected name=arn, name of [A-Za-z0-9_-]")
        if name == DEFAULT or name in out:
            raise InvalidDestinations(f"ReplayDestinations: the name {name!r} is taken")
        kind = destination_type(arn)
        if kind is None:
            raise InvalidDestinations(f"ReplayDestinations {name}: {arn!r} is not an SQS queue or EventBridge bus ARN")
        out[name] = Destination(name, kind, arn)
    return out


def destination_names(declared: str | None) -> frozenset[str]:
    """Every name a request may give as `destination`: `default` and the declared ones."""
    return frozenset({DEFAULT, *parse_destinations(declared, None)})

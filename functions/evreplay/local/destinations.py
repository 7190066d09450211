"""`evreplay local --destination NAME=sqs|sqs-fifo|eventbridge` (docs/design.md §4.12): a queue, a FIFO queue
(`NAME.fifo`) or an event bus named NAME, created at the local AWS endpoint and declared to the template as
ReplayDestinations, so a replay can be sent there and read back with any SQS or EventBridge client."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from evreplay.local.template import ACCOUNT_ID
from evreplay.replay.destinations import EVENTBRIDGE, NAME, SQS, SQS_FIFO, TYPES


@dataclass(frozen=True)
class LocalDestination:
    name: str
    type: str

    @property
    def resource_name(self) -> str:
        return f"{self.name}.fifo" if self.type == SQS_FIFO else self.name

    def arn(self, region: str) -> str:
        if self.type == EVENTBRIDGE:
            return f"arn:aws:events:{region}:{ACCOUNT_ID}:event-bus/{self.name}"
        return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{self.resource_name}"


def parse_local_destination(text: str) -> LocalDestination:
    """argparse type of --destination."""
    name, sep, kind = text.partition("=")
    if not sep or not NAME.match(name) or kind not in TYPES or name == "default":
        raise argparse.ArgumentTypeError(
            f"use NAME=TYPE with NAME of [A-Za-z0-9_-] (not 'default') and TYPE one of {', '.join(TYPES)}"
        )
    return LocalDestination(name, kind)


def declared(destinations: tuple[LocalDestination, ...], region: str, given: str | None = None) -> str:
    """ReplayDestinations for these destinations, after any the caller gave as --parameter."""
    entries = [entry for entry in (given or "").split(",") if entry.strip()]
    entries += [f"{destination.name}={destination.arn(region)}" for destination in destinations]
    return ",".join(entries)


def create(destinations: tuple[LocalDestination, ...], clients: dict[str, Any]) -> None:
    """Create each queue or bus at the local endpoint (clients by service name: "sqs", "events")."""
    for destination in destinations:
        if destination.type == EVENTBRIDGE:
            clients["events"].create_event_bus(Name=destination.name)
        elif destination.type == SQS:
            clients["sqs"].create_queue(QueueName=destination.resource_name)
        else:
            clients["sqs"].create_queue(QueueName=destination.resource_name, Attributes={"FifoQueue": "true"})

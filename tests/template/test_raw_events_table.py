"""The Glue table Athena reads (RawEventsTable) fits the raw objects the ingest code really writes.

Events go in through the API on moto; then every S3 key written must fall under the table's
`storage.location.template` with each projected partition value inside its projection's rules
(format, range), the values must be the stored document's own fields, and the table's columns
must be the document's fields. A key layout change in evreplay.store.raw, or a projection edit
in template.yaml, that would leave data invisible to Athena fails here."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from evreplay.local.template import Template

TABLE = "RawEventsTable"
# Java SimpleDateFormat letters Athena's date projection uses -> strftime.
_JAVA_DATE = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_RELATIVE = re.compile(r"^NOW(?:([+-])(\d+)(DAYS|DAY))?$")


class Projection:
    """Athena's partition projection as the table declares it: which keys it can see."""

    def __init__(self, table_input: dict[str, Any], today: date) -> None:
        self.params: dict[str, str] = table_input["Parameters"]
        self.partitions = [column["Name"] for column in table_input["PartitionKeys"]]
        self.location: str = table_input["StorageDescriptor"]["Location"]
        self.today = today
        pieces = re.split(r"\$\{([^}]+)\}", self.params["storage.location.template"])
        self.placeholders = pieces[1::2]
        self.pattern = re.compile(
            "^" + "".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)" for i, piece in enumerate(pieces))
        )

    def partition_of(self, uri: str) -> dict[str, str]:
        """The projected partition an object is in; AssertionError naming why Athena would miss it."""
        assert uri.startswith(self.location), f"{uri} is outside the table location {self.location}"
        match = self.pattern.match(uri)
        assert match, f"{uri} does not fit storage.location.template {self.params['storage.location.template']}"
        values = match.groupdict()
        for name, value in values.items():
            self._check(name, value)
        return values

    def _check(self, name: str, value: str) -> None:
        kind = self.params[f"projection.{name}.type"]
        if kind == "injected":
            assert value, f"{name}: empty injected value"
        elif kind == "enum":
            assert value in self.params[f"projection.{name}.values"].split(","), f"{name}={value} not in the enum"
        elif kind == "integer":
            low, high = (int(v) for v in self.params[f"projection.{name}.range"].split(","))
            assert low <= int(value) <= high, f"{name}={value} outside [{low}, {high}]"
        elif kind == "date":
            fmt = self.params[f"projection.{name}.format"]
            for java, python in _JAVA_DATE.items():
                fmt = fmt.replace(java, python)
            parsed = datetime.strptime(value, fmt).date()
            assert parsed.strftime(fmt) == value, f"{name}={value} is not in the projected format exactly"
            low, high = (self._bound(v) for v in self.params[f"projection.{name}.range"].split(","))
            assert low <= parsed <= high, f"{name}={value} outside the projected range [{low}, {high}]"
        else:
            pytest.fail(f"{name}: projection type {kind} not handled by this test")

    def _bound(self, text: str) -> date:
        relative = _RELATIVE.match(text.strip())
        if relative is None:
            return date.fromisoformat(text.strip())
        sign, amount, _ = relative.groups()
        days = int(amount or 0) * (-1 if sign == "-" else 1)
        return self.today + timedelta(days=days)


def _table_input(template: Template) -> dict[str, Any]:
    table_input: dict[str, Any] = template.resolve(template.properties(TABLE))["TableInput"]
    return table_input


@pytest.fixture
def projection(template: Template) -> Projection:
    return Projection(_table_input(template), datetime.now(UTC).date())


def test_projection_is_complete_for_athena(template: Template, projection: Projection) -> None:
    # What Athena checks before it runs a query (INVALID_TABLE_PROPERTY otherwise)
    assert projection.params["projection.enabled"] == "true"
    assert sorted(projection.placeholders) == sorted(projection.partitions) == ["event_date", "event_type", "source"]
    assert all(f"projection.{name}.type" in projection.params for name in projection.partitions)
    assert projection.params["storage.location.template"].startswith(projection.location)
    serde = _table_input(template)["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde in ("org.openx.data.jsonserde.JsonSerDe", "org.apache.hive.hcatalog.data.JsonSerDe")


def test_the_matcher_rejects_keys_athena_would_not_see(projection: Projection) -> None:
    # The checks below cannot pass vacuously: a foreign layout, a bad date and a date past the range fail.
    base = projection.location
    tomorrow_plus_one = (projection.today + timedelta(days=2)).isoformat()
    for uri in (
        f"{base}source=a/event_date=2025-01-01/entity=x/f.json",
        f"{base}source=a/event_type=b/event_date=2025-13-01/entity=x/f.json",
        f"{base}source=a/event_type=b/event_date=2025-1-01/entity=x/f.json",
        f"{base}source=a/event_type=b/event_date={tomorrow_plus_one}/entity=x/f.json",
        "s3://another-bucket/raw/source=a/event_type=b/event_date=2025-01-01/entity=x/f.json",
    ):
        with pytest.raises((AssertionError, ValueError)):
            projection.partition_of(uri)


def _event(source: str, event_type: str, entity: str, when: str, **extra: Any) -> dict[str, Any]:
    return {"source": source, "event_type": event_type, "entity_id": entity, "event_time": when,
            "payload": {"n": 1}, **extra}  # fmt: skip


def test_every_key_the_ingest_writes_is_in_a_projected_partition(stack, projection: Projection) -> None:
    # GIVEN arrivals across sources, types and days: an offset that moves the UTC day, a very old
    # event, one up to a day ahead, an entity that needs encoding, and a duplicate
    soon = (datetime.now(UTC) + timedelta(hours=20)).isoformat()
    events = [
        _event("ios_app", "purchase", "user_1", "2025-12-31T23:30:00-02:00", event_id="e-1"),
        _event("ios_app", "purchase", "user_1", "2025-12-31T23:30:00-02:00", event_id="e-1"),  # duplicate
        _event("web", "page_view", "ü/../x y%~", "2025-12-28T00:00:00.000001Z"),
        _event("pos.v2", "sale:refund", "pos-7", "1971-02-03T04:05:06+05:30"),
        _event("iot-hub", "reading_1", "sensor_" + "x" * 200, soon),
    ]
    batch = stack.gateway.request("POST", "/events/batch", {"events": events}).json()
    assert [item["status"] for item in batch["results"]] == [
        "ACCEPTED",
        "DUPLICATE",
        "ACCEPTED",
        "ACCEPTED",
        "ACCEPTED",
    ]
    single = stack.gateway.request("POST", "/events", _event("web", "click", "user_2", "2025-06-01T12:00:00Z"))
    assert single.status == 201

    keys = stack.raw_keys()
    assert len(keys) == 6

    # WHEN each key is placed in the table the way Athena's projection would
    seen = set()
    for key in keys:
        partition = projection.partition_of(f"s3://{stack.bucket}/{key}")
        body = stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        document = json.loads(body)

        # THEN its partition is its own document's source, type and UTC event day ...
        assert partition == {
            "source": document["source"],
            "event_type": document["event_type"],
            "event_date": document["event_time"][:10],
        }
        # ... and the object is one JSON document on one line, as the JSON SerDes read it
        assert b"\n" not in body.strip()
        seen.add((partition["source"], partition["event_date"]))

    assert ("ios_app", "2026-01-01") in seen  # 23:30 at -02:00 is the next UTC day
    assert ("pos.v2", "1971-02-02") in seen
    assert ("iot-hub", soon[:10]) in seen  # up to a day ahead is inside NOW+1DAYS


def test_columns_are_the_stored_document_fields(stack, template: Template) -> None:
    # GIVEN one stored event with every optional field set
    event = _event("ios_app", "purchase", "user_1", "2025-12-28T10:00:00Z", idempotency_key="k-1")
    assert stack.gateway.request("POST", "/events", event).status == 201
    (key,) = stack.raw_keys()
    document = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())

    table_input = _table_input(template)
    columns = {column["Name"]: column["Type"] for column in table_input["StorageDescriptor"]["Columns"]}
    partitions = {column["Name"] for column in table_input["PartitionKeys"]}

    # THEN the table declares every field once: as a column or as a partition (Glue allows not both);
    # the one partition that is no field, event_date, is the UTC day of event_time (checked above)
    assert set(columns) | (partitions & set(document)) == set(document)
    assert not set(columns) & partitions
    assert partitions - set(document) == {"event_date"}
    for name, column_type in columns.items():
        value = document[name]
        if column_type == "boolean":
            assert isinstance(value, bool), name
        elif name == "payload":
            assert isinstance(value, dict)  # a string column: the SerDe hands Athena the JSON text
        else:
            assert column_type == "string" and isinstance(value, str), name

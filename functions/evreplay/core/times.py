"""Time parsing and normalization.

Stored times are UTC, fixed width, microsecond precision (`2025-12-28T22:59:59.250000Z`), so
that string order is time order in DynamoDB sort keys and S3 keys.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

# RFC 3339 date-time: the offset is mandatory (Z or ±hh:mm); fractions up to nanoseconds are
# accepted and truncated to microseconds. `T` or a space may separate date and time (RFC 3339 §5.6 note).
# ASCII digits only: `\d` alone would also match other scripts' digits.
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})$",
    re.ASCII,
)


class InvalidTimestamp(ValueError):
    """Not an RFC 3339 timestamp with an offset."""


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset into an aware UTC datetime."""
    match = _RFC3339.match(value)
    if match is None:
        if re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?$", value):
            raise InvalidTimestamp("timestamp has no UTC offset; add Z or ±hh:mm")
        raise InvalidTimestamp("not an RFC 3339 timestamp (e.g. 2025-12-28T23:59:59.250+01:00)")
    frac = (match["frac"] or "").ljust(6, "0")[:6]
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    if offset in ("-00:00",):
        offset = "+00:00"
    text = f"{match['date']}T{match['time']}.{frac}{offset}"
    try:
        parsed = datetime.fromisoformat(text)
        # 0001-01-01T00:00:00+01:00 is a valid RFC 3339 time whose UTC instant is before year 1.
        return parsed.astimezone(UTC)
    except ValueError as exc:
        raise InvalidTimestamp(f"not a valid date or time: {exc}") from exc
    except OverflowError as exc:
        raise InvalidTimestamp("time is outside years 0001-9999 once converted to UTC") from exc


def format_utc(moment: datetime) -> str:
    """Fixed-width UTC form used everywhere we store or compare times."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    # Not strftime("%Y"): it gives "99", not "0099", for years before 1000 on Linux.
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        f".{utc.microsecond:06d}Z"
    )


def normalize(value: str) -> str:
    """RFC 3339 with offset -> fixed-width UTC string."""
    return format_utc(parse_rfc3339(value))


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_day(normalized: str) -> str:
    """The UTC date (YYYY-MM-DD) of a normalized timestamp."""
    return normalized[:10]


def utc_days(start_time: str, end_time: str) -> list[str]:
    """The UTC days (YYYY-MM-DD) a half-open window of normalized times touches, in order."""
    first = date.fromisoformat(utc_day(start_time))
    # The last instant inside the window is just before end_time: end_time at midnight adds no day.
    last_moment = parse_rfc3339(end_time) - timedelta(microseconds=1)
    last = last_moment.astimezone(UTC).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]

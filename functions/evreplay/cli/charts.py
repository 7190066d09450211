"""Terminal charts drawn with text: horizontal bars for a table column, a strip of buckets, durations.

rich has no chart widget, so a bar is a string of block characters in an ordinary table cell.
Output that may not render Unicode (a console whose encoding is not UTF-*) gets ASCII instead;
meaning never rides on colour alone (flags are words), so piped output reads the same.
"""

from __future__ import annotations

_EIGHTHS = " ▏▎▍▌▋▊▉"  # index n = n/8 of a cell
FULL = "█"
ASCII_FULL = "#"


def bar(value: float, maximum: float, width: int, unicode: bool = True) -> str:
    """`value` as a bar of at most `width` cells, scaled so that `maximum` fills them all.

    Any value above zero shows at least a sliver, so a small count never looks like an empty one."""
    if value <= 0 or maximum <= 0 or width <= 0:
        return ""
    cells = min(value / maximum, 1.0) * width
    if not unicode:
        return ASCII_FULL * max(1, round(cells))
    full, eighths = divmod(round(cells * 8), 8)
    text = FULL * full + (_EIGHTHS[eighths] if eighths else "")
    return text or _EIGHTHS[1]


def strip(filled: list[bool], unicode: bool = True) -> str:
    """One character per bucket: a block for a bucket with events, a dot for an empty one."""
    on, off = (FULL, "·") if unicode else (ASCII_FULL, ".")
    return "".join(on if value else off for value in filled)


def duration(milliseconds: int | float | None) -> str:
    """A lag as a person reads it: 850 ms, 12.3 s, 4m 05s, 3h 07m, 2d 01h."""
    if milliseconds is None:
        return "-"
    ms = int(milliseconds)
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    if ms < 1000:
        return f"{sign}{ms} ms"
    if ms < 60_000:
        return f"{sign}{ms / 1000:.1f} s"
    seconds = ms // 1000
    if seconds < 3600:
        return f"{sign}{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86_400:
        return f"{sign}{seconds // 3600}h {(seconds % 3600) // 60:02d}m"
    return f"{sign}{seconds // 86_400}d {(seconds % 86_400) // 3600:02d}h"


def bound(milliseconds: int) -> str:
    """A histogram bound in its natural unit: 1 s, 10 min, 6 h, 24 h."""
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if milliseconds >= size and milliseconds % size == 0:
            return f"{milliseconds // size} {unit}"
    return f"{milliseconds} ms"

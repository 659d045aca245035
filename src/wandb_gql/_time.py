"""W&B's time formats and durations, shared by the client and the server.

W&B writes timestamps as UTC without a zone suffix, to the second ("2024-01-31T12:00:00"), and
compares them as strings: every timestamp this project stores, sends or compares has that form.
Stdlib only: the CLI imports it before anything heavy.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
# y is 365 days: "older than a year" is a retention rule people write; months are left out
# because "m" already means minutes.
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE,
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$")


def utc_naive(when: datetime | None = None) -> datetime:
    """`when` (default: now) in UTC without tzinfo; a naive `when` is taken as UTC already."""
    if when is None:
        when = datetime.now(timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def format_time(when: datetime) -> str:
    """A datetime as W&B writes it (aware datetimes are converted to UTC first)."""
    return utc_naive(when).strftime(TIME_FORMAT)


def now() -> str:
    return format_time(datetime.now(timezone.utc))


def parse_iso(text: str) -> str | None:
    """An ISO date or datetime (any zone) -> W&B's UTC form; None if `text` is not one.

    A bare date is midnight; fractions of a second are dropped (W&B stores whole seconds).
    Raises ValueError for something shaped like a date that is not one (2024-02-30).
    """
    m = _ISO.fullmatch(text.strip())
    if m is None:
        return None
    y, mo, d, hh, mm, ss, _frac, tz = m.groups()
    when = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
    if tz and tz.upper() != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        try:
            when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        except OverflowError:  # 0001-01-01T00:00+01:00 is before datetime.min in UTC
            raise ValueError(f"date {text!r} is out of range") from None
    return when.strftime(TIME_FORMAT)


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '30m', '90s', '2w', '1y', '1.5h' -> timedelta; ValueError says what is accepted."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, like 7d, 12h, 30m, 90s, 2w or 1y")
    try:
        return timedelta(seconds=float(m.group(1)) * UNITS[m.group(2)])
    except OverflowError:
        raise ValueError(f"duration {text!r} is out of range") from None


def ago(duration: timedelta, now: datetime | None = None) -> str:
    """The W&B timestamp `duration` before `now` (default: the current time)."""
    return format_time(utc_naive(now) - duration)

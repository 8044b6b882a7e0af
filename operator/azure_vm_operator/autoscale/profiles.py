"""Which profile is in force at an instant: a fixed date, else a recurrence, else the default profile (Azure's
precedence); among windows of one kind, the first listed.

A recurrence is wall-clock time in its own zone (zoneinfo, with the tzdata package where the system has no
database), DST included: a window boundary is the first instant at which the zone's clock reads that time or
later. So on the night clocks spring forward, 02:30 in Europe/Berlin is 03:00 CEST, the moment of the jump; on the
night they fall back, it is the first 02:30 (CEST). A window whose end is not after its start runs past midnight
and belongs to the day it starts: Friday 22:00-06:00 is Friday night into Saturday morning.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from .spec import DAYS, AutoscaleSpec, FixedDate, Profile, Recurrence


def require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"the autoscaler needs timezone-aware instants, not {now!r}")
    return now


def first_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock of ``zone`` reads ``day`` ``at`` or later."""
    wall = datetime.combine(day, at)
    instant = wall.replace(tzinfo=zone).astimezone(timezone.utc)  # fold 0: the first of two readings
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # In the gap the clock skips: the answer is the jump, between the readings with the offsets either side.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(instant.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, timezone.utc)


def recurrence_window(recurrence: Recurrence, day: date) -> tuple[datetime, datetime] | None:
    """The window that starts on ``day`` (a date of the recurrence's zone), as UTC instants; None if ``day`` is
    not one of its days."""
    if DAYS[day.weekday()] not in recurrence.days:
        return None
    zone = recurrence.zone
    end_day = day if recurrence.end > recurrence.start else day + timedelta(days=1)
    return first_instant(day, recurrence.start, zone), first_instant(end_day, recurrence.end, zone)


def in_recurrence(recurrence: Recurrence, now: datetime) -> bool:
    instant = require_aware(now).astimezone(timezone.utc)
    today = instant.astimezone(recurrence.zone).date()
    for day in (today, today - timedelta(days=1)):  # a window is at most a day long
        window = recurrence_window(recurrence, day)
        if window and window[0] <= instant < window[1]:
            return True
    return False


def in_fixed_date(fixed: FixedDate, now: datetime) -> bool:
    return fixed.start <= require_aware(now) < fixed.end


def active_profile(spec: AutoscaleSpec, now: datetime) -> Profile:
    """The profile in force at ``now`` (timezone-aware): fixed date > recurrence > default."""
    require_aware(now)
    for profile in spec.profiles:
        if profile.fixed_date is not None and in_fixed_date(profile.fixed_date, now):
            return profile
    for profile in spec.profiles:
        if profile.recurrence is not None and in_recurrence(profile.recurrence, now):
            return profile
    return spec.default

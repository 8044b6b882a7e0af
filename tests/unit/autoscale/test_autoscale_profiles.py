"""The profile in force at an instant: fixed date > recurrence > default, recurrences on their zone's clock (DST
included), windows across midnight belonging to the day they start."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from azure_vm_operator.autoscale.profiles import active_profile, first_instant, recurrence_window
from azure_vm_operator.autoscale.spec import parse_autoscale

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def weekly(name: str, days: list[str], start: str, end: str, zone: str = "Europe/Berlin", **extra) -> dict:
    return {"name": name, "recurrence": {"days": days, "start": start, "end": end, "timeZone": zone}, **extra}


def fixed(name: str, start: str, end: str, **extra) -> dict:
    return {"name": name, "fixedDate": {"start": start, "end": end}, **extra}


def spec(*profiles: dict):
    return parse_autoscale({"maxReplicas": 10, "profiles": list(profiles)})


def active(s, instant: datetime) -> str:
    return active_profile(s, instant).name


def window(profile: dict, day: date) -> tuple[datetime, datetime] | None:
    return recurrence_window(spec(profile).profiles[0].recurrence, day)


def test_without_profiles_the_default_is_in_force():
    s = spec()
    assert active_profile(s, utc(2024, 1, 1)) is s.default and s.default.name == "default"


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        active_profile(spec(), datetime(2024, 1, 1))


@pytest.mark.parametrize("local, name", [
    (datetime(2024, 1, 8, 8, 59, 59), "default"),  # Monday, winter (CET, UTC+1)
    (datetime(2024, 1, 8, 9, 0), "business"),
    (datetime(2024, 1, 8, 16, 59, 59), "business"),
    (datetime(2024, 1, 8, 17, 0), "default"),  # the end is exclusive
    (datetime(2024, 1, 12, 12, 0), "business"),  # Friday
    (datetime(2024, 1, 9, 12, 0), "default"),  # Tuesday is not one of its days
    (datetime(2024, 1, 13, 12, 0), "default"),  # Saturday
])
def test_business_hours_on_the_zones_clock(local, name):
    s = spec(weekly("business", ["Monday", "Friday"], "09:00", "17:00"))
    assert active(s, local.replace(tzinfo=BERLIN)) == name
    assert active(s, local.replace(tzinfo=BERLIN).astimezone(timezone.utc)) == name  # any zone for "now"


def test_the_same_window_is_an_hour_earlier_in_utc_in_summer():
    s = spec(weekly("business", ["Monday"], "09:00", "17:00"))
    assert active(s, utc(2024, 1, 8, 7, 59)) == "default" and active(s, utc(2024, 1, 8, 8, 0)) == "business"
    assert active(s, utc(2024, 7, 8, 6, 59)) == "default" and active(s, utc(2024, 7, 8, 7, 0)) == "business"
    assert active(s, utc(2024, 7, 8, 15, 0)) == "default"  # 17:00 CEST


def test_days_are_the_zones_days():
    # Monday 00:00-01:00 at UTC+14 is Sunday 10:00-11:00 UTC
    s = spec(weekly("dawn", ["Monday"], "00:00", "01:00", "Pacific/Kiritimati"))
    assert active(s, utc(2024, 1, 7, 10, 30)) == "dawn"  # a Sunday in UTC
    assert active(s, utc(2024, 1, 8, 10, 30)) == "default"  # Monday in UTC, Tuesday there


@pytest.mark.parametrize("instant, name", [
    (utc(2024, 1, 12, 21, 59), "default"),  # Friday
    (utc(2024, 1, 12, 22, 0), "night"),
    (utc(2024, 1, 12, 23, 59), "night"),
    (utc(2024, 1, 13, 0, 0), "night"),  # Saturday morning belongs to Friday's window
    (utc(2024, 1, 13, 5, 59, 59), "night"),
    (utc(2024, 1, 13, 6, 0), "default"),
    (utc(2024, 1, 13, 23, 0), "default"),  # Saturday night: Saturday is not one of its days
    (utc(2024, 1, 11, 23, 0), "default"),  # Thursday night
    (utc(2024, 1, 12, 3, 0), "default"),  # Friday morning is Thursday's window, which there is not
])
def test_a_window_across_midnight_belongs_to_the_day_it_starts(instant, name):
    assert active(spec(weekly("night", ["Friday"], "22:00", "06:00", "UTC")), instant) == name


def test_sunday_night_runs_into_monday():
    s = spec(weekly("night", ["Sunday"], "22:00", "06:00", "UTC"))
    assert active(s, utc(2024, 1, 8, 3, 0)) == "night" and active(s, utc(2024, 1, 9, 3, 0)) == "default"


def test_equal_start_and_end_is_a_whole_day_as_is_00_00_to_24_00():
    for start, end in (("00:00", "24:00"), ("00:00", "00:00")):
        s = spec(weekly("monday", ["Monday"], start, end, "UTC"))
        assert active(s, utc(2024, 1, 8, 0, 0)) == "monday" and active(s, utc(2024, 1, 8, 23, 59, 59)) == "monday"
        assert active(s, utc(2024, 1, 9, 0, 0)) == "default" and active(s, utc(2024, 1, 7, 23, 59)) == "default"
    noon = spec(weekly("noon", ["Monday"], "12:00", "12:00", "UTC"))
    assert active(noon, utc(2024, 1, 9, 11, 59)) == "noon" and active(noon, utc(2024, 1, 9, 12, 0)) == "default"


# --- DST: Europe/Berlin springs forward on Sunday 2024-03-31 at 01:00 UTC (02:00 CET -> 03:00 CEST) and falls
# back on Sunday 2024-10-27 at 01:00 UTC (03:00 CEST -> 02:00 CET).

def test_spring_forward_a_window_over_the_jump_is_an_hour_shorter():
    profile = weekly("night", ["Sunday"], "01:00", "04:00")
    assert window(profile, date(2024, 3, 31)) == (utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 2, 0))
    s = spec(profile)
    assert active(s, utc(2024, 3, 30, 23, 59)) == "default"
    assert active(s, utc(2024, 3, 31, 0, 0)) == "night" and active(s, utc(2024, 3, 31, 1, 59)) == "night"
    assert active(s, utc(2024, 3, 31, 2, 0)) == "default"


def test_spring_forward_a_boundary_in_the_skipped_hour_is_the_jump():
    assert window(weekly("p", ["Sunday"], "02:30", "05:00"), date(2024, 3, 31))[0] == utc(2024, 3, 31, 1, 0)
    assert window(weekly("p", ["Sunday"], "01:00", "02:30"), date(2024, 3, 31))[1] == utc(2024, 3, 31, 1, 0)
    start, end = window(weekly("p", ["Sunday"], "02:00", "03:00"), date(2024, 3, 31))
    assert start == end  # that hour does not exist that night
    s = spec(weekly("p", ["Sunday"], "02:30", "05:00"))
    assert active(s, utc(2024, 3, 31, 0, 59, 59)) == "default" and active(s, utc(2024, 3, 31, 1, 0)) == "p"


def test_fall_back_a_window_over_the_repeated_hour_is_an_hour_longer():
    profile = weekly("night", ["Sunday"], "01:00", "03:00")
    assert window(profile, date(2024, 10, 27)) == (utc(2024, 10, 26, 23, 0), utc(2024, 10, 27, 2, 0))
    s = spec(profile)
    assert active(s, utc(2024, 10, 27, 0, 30)) == "night"  # the first 02:30 (CEST)
    assert active(s, utc(2024, 10, 27, 1, 30)) == "night"  # the second 02:30 (CET)


def test_fall_back_a_boundary_in_the_repeated_hour_is_its_first_reading():
    start, end = window(weekly("p", ["Sunday"], "02:00", "02:30"), date(2024, 10, 27))
    assert (start, end) == (utc(2024, 10, 27, 0, 0), utc(2024, 10, 27, 0, 30))
    assert active(spec(weekly("p", ["Sunday"], "02:00", "02:30")), utc(2024, 10, 27, 1, 15)) == "default"


def test_a_window_across_midnight_and_the_jump():
    start, end = window(weekly("p", ["Saturday"], "22:00", "06:00"), date(2024, 3, 30))
    assert (start, end) == (utc(2024, 3, 30, 21, 0), utc(2024, 3, 31, 4, 0))
    assert end - start == timedelta(hours=7)


def test_new_york_business_hours_follow_its_own_dst_date():
    s = spec(weekly("business", ["Monday"], "09:00", "17:00", "America/New_York"))
    assert active(s, utc(2024, 3, 4, 13, 30)) == "default" and active(s, utc(2024, 3, 4, 14, 0)) == "business"
    assert active(s, utc(2024, 3, 11, 13, 0)) == "business"  # EDT since Sunday 2024-03-10


def test_a_half_hour_dst_shift():
    # Lord Howe Island moves from +10:30 to +11 on Sunday 2024-10-06 at 02:00 local (15:30 UTC the day before).
    start, end = window(weekly("p", ["Sunday"], "02:00", "03:00", "Australia/Lord_Howe"), date(2024, 10, 6))
    assert (start, end) == (utc(2024, 10, 5, 15, 30), utc(2024, 10, 5, 16, 0))


def test_first_instant_of_an_ordinary_time_is_that_time():
    assert first_instant(date(2024, 6, 1), time(12, 34), BERLIN) == utc(2024, 6, 1, 10, 34)


# --- fixed dates and precedence

def test_a_fixed_date_is_in_force_from_its_start_to_before_its_end():
    s = spec(fixed("sale", "2024-11-29T00:00:00+01:00", "2024-12-02T00:00:00+01:00"))
    assert active(s, utc(2024, 11, 28, 22, 59)) == "default"
    assert active(s, utc(2024, 11, 28, 23, 0)) == "sale"
    assert active(s, utc(2024, 12, 1, 22, 59, 59)) == "sale" and active(s, utc(2024, 12, 1, 23, 0)) == "default"


def test_precedence_fixed_date_over_recurrence_over_default():
    s = spec(weekly("business", ["Friday"], "09:00", "17:00"),
             fixed("sale", "2024-11-29T00:00:00Z", "2024-11-30T00:00:00Z"))
    assert active(s, utc(2024, 11, 29, 10, 0)) == "sale"  # a Friday, within business hours too
    assert active(s, utc(2024, 12, 6, 10, 0)) == "business"
    assert active(s, utc(2024, 12, 6, 20, 0)) == "default"


def test_among_overlapping_windows_of_one_kind_the_first_listed_wins():
    s = spec(fixed("a", "2024-01-01T00:00:00Z", "2024-01-10T00:00:00Z"),
             fixed("b", "2024-01-05T00:00:00Z", "2024-01-20T00:00:00Z"),
             weekly("c", ["Monday"], "00:00", "24:00", "UTC"), weekly("d", ["Monday"], "12:00", "13:00", "UTC"))
    assert [active(s, utc(2024, 1, d, 12, 30)) for d in (4, 8, 15, 22)] == ["a", "a", "b", "c"]


def test_the_active_profile_carries_its_bounds():
    s = parse_autoscale({"minReplicas": 1, "maxReplicas": 10, "profiles": [
        fixed("sale", "2024-11-29T00:00:00Z", "2024-11-30T00:00:00Z", minReplicas=8, maxReplicas=40)]})
    sale = active_profile(s, utc(2024, 11, 29, 1))
    assert (sale.min_replicas, sale.max_replicas, sale.default_replicas) == (8, 40, 8)

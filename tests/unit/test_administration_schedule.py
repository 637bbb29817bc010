"""The administration schedule (issue 17) driven on plain entries: every dosage kind lands on
the right day and round, across the daylight-saving changes; as-needed, free text and pauses
are said, never guessed. Plain domain calls, no mocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pll.domain import multidose
from pll.domain.administration import (
    OSLO,
    Given,
    Schedule,
    Slot,
    Source,
    day_bounds,
    schedule,
    schedule_list,
)
from pll.domain.errors import InvalidInput
from pll.domain.model import Author, Entry, MedicationList, Pause, Role
from tests.unit.content import NOW, PATIENT_ID

GP = Author("Kari Fastlege", Role.DOCTOR, hpr="565501872")
MONDAY = date(2026, 3, 2)
SPRING = date(2026, 3, 29)  # last Sunday of March: 02:00 -> 03:00
AUTUMN = date(2026, 10, 25)  # last Sunday of October: 03:00 -> 02:00


def dose(value: float = 1, unit: str = "tablett", **repeat: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}
    if repeat:
        element["timing"] = {"repeat": repeat}
    return element


def entry(
    *dosage: dict[str, Any],
    eid: str = "e1",
    start: str | None = None,
    end: str | None = None,
    status: str = "active",
    packed: bool = False,
    version: int = 1,
) -> Entry:
    content: dict[str, Any] = {"status": status, "dosage": list(dosage)}
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period:
        content["effectivePeriod"] = period
    if packed:
        content["extension"] = [
            {
                "url": multidose.ADMINISTRATION,
                "extension": [{"url": multidose.PACKED, "valueBoolean": True}],
            }
        ]
    return Entry(eid, version, content, NOW, GP)


def planned(result: Schedule) -> list[tuple[date, Slot, str]]:
    """(day, round, local clock time) of every planned dose, in order."""
    return [(d.day, d.slot, f"{d.at:%H:%M}") for day in result.days for d in day.doses]


def dosing_days(result: Schedule) -> list[date]:
    return [day.day for day in result.days if day.doses]


def days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=k) for k in range(n)]


# --- fixed times of day ---------------------------------------------------------------------


def test_fixed_times_land_in_their_rounds_with_amount_unit_and_version() -> None:
    morning_and_night = entry(
        {**dose(2, when=["MORN"]), "sequence": 1},
        {**dose(1, when=["EVE", "HS"]), "sequence": 1},
        version=4,
    )
    day = schedule([morning_and_night], MONDAY).days[0]
    assert [(d.slot, f"{d.at:%H:%M}", d.amount, d.unit, d.when) for d in day.doses] == [
        (Slot.MORGEN, "08:00", Decimal(2), "tablett", "MORN"),
        (Slot.KVELD, "20:00", Decimal(1), "tablett", "EVE"),
        (Slot.NATT, "22:00", Decimal(1), "tablett", "HS"),
    ]
    assert {(d.entry_id, d.entry_version, d.day) for d in day.doses} == {("e1", 4, MONDAY)}
    assert day.doses[0].at == datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
    assert day.doses[0].at.utcoffset() == timedelta(hours=1)


def test_noon_and_afternoon_and_night_codes() -> None:
    result = schedule([entry(dose(when=["NOON", "AFT", "NIGHT"]))], MONDAY)
    assert planned(result) == [
        (MONDAY, Slot.MIDDAG, "14:00"),
        (MONDAY, Slot.ETTERMIDDAG, "17:00"),
        (MONDAY, Slot.NATT, "22:00"),
    ]


def test_the_unit_sets_its_own_clock_times() -> None:
    result = schedule(
        [entry(dose(when=["MORN", "EVE"]))],
        MONDAY,
        slots={Slot.MORGEN: time(7, 30), "kveld": time(21)},
    )
    assert planned(result) == [(MONDAY, Slot.MORGEN, "07:30"), (MONDAY, Slot.KVELD, "21:00")]


def test_a_slot_table_out_of_order_or_unknown_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        schedule([], MONDAY, slots={Slot.MIDDAG: time(7)})
    assert caught.value.expression == "slots.middag"
    with pytest.raises(InvalidInput) as caught:
        schedule([], MONDAY, slots={"lunsj": time(12)})
    assert caught.value.expression == "slots.lunsj"


def test_times_a_day_without_when_take_the_standard_rounds() -> None:
    result = schedule([entry(dose(frequency=3, period=1, periodUnit="d"))], MONDAY)
    assert [s for _, s, _ in planned(result)] == [Slot.MORGEN, Slot.MIDDAG, Slot.KVELD]


# --- days: weekly, interval, monthly ----------------------------------------------------------


def test_weekly_on_the_named_weekday() -> None:
    methotrexate = entry(dose(2, frequency=1, period=1, periodUnit="wk", dayOfWeek=["thu"]))
    result = schedule([methotrexate], MONDAY, MONDAY + timedelta(days=13))
    assert dosing_days(result) == [date(2026, 3, 5), date(2026, 3, 12)]
    assert {s for _, s, _ in planned(result)} == {Slot.MORGEN}


def test_weekly_without_a_weekday_falls_on_the_weekday_the_treatment_started() -> None:
    started_wednesday = entry(dose(frequency=1, period=1, periodUnit="wk"), start="2026-02-25")
    result = schedule([started_wednesday], MONDAY, MONDAY + timedelta(days=13))
    assert dosing_days(result) == [date(2026, 3, 4), date(2026, 3, 11)]


def test_every_other_week_on_two_weekdays_counts_weeks_from_the_start() -> None:
    fortnightly = entry(
        dose(frequency=2, period=2, periodUnit="wk", dayOfWeek=["mon", "fri"]),
        start="2026-02-23",
    )
    result = schedule([fortnightly], MONDAY, MONDAY + timedelta(days=13))
    assert dosing_days(result) == [date(2026, 3, 9), date(2026, 3, 13)]


def test_every_other_day_from_the_start() -> None:
    every_other = entry(dose(when=["MORN"], period=2, periodUnit="d"), start="2026-03-01")
    result = schedule([every_other], MONDAY, MONDAY + timedelta(days=5))
    assert dosing_days(result) == [date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 7)]


def test_every_third_day_without_when_twice_on_its_day() -> None:
    every_third = entry(dose(frequency=2, period=3, periodUnit="d"), start="2026-03-02")
    result = schedule([every_third], MONDAY, MONDAY + timedelta(days=6))
    assert planned(result) == [
        (date(2026, 3, 2), Slot.MORGEN, "08:00"),
        (date(2026, 3, 2), Slot.KVELD, "20:00"),
        (date(2026, 3, 5), Slot.MORGEN, "08:00"),
        (date(2026, 3, 5), Slot.KVELD, "20:00"),
        (date(2026, 3, 8), Slot.MORGEN, "08:00"),
        (date(2026, 3, 8), Slot.KVELD, "20:00"),
    ]


def test_monthly_on_the_day_of_the_month_it_started() -> None:
    monthly = entry(dose(frequency=1, period=1, periodUnit="mo"), start="2026-02-05")
    result = schedule([monthly], MONDAY, MONDAY + timedelta(days=13))
    assert dosing_days(result) == [date(2026, 3, 5)]


def test_every_eight_hours_as_clock_times_from_the_first_round() -> None:
    result = schedule([entry(dose(period=8, periodUnit="h"))], MONDAY)
    assert planned(result) == [
        (MONDAY, Slot.NATT, "00:00"),
        (MONDAY, Slot.MORGEN, "08:00"),
        (MONDAY, Slot.MIDDAG, "16:00"),  # middag starts 14:00, ettermiddag 17:00
    ]


def test_every_five_hours_continues_from_the_start_day() -> None:
    result = schedule(
        [entry(dose(period=5, periodUnit="h"), start="2026-03-02")], MONDAY, MONDAY + timedelta(1)
    )
    # 08, 13, 18, 23 on the first day; 04, 09, 14, 19 on the next
    assert [t for _, _, t in planned(result)] == [
        "08:00", "13:00", "18:00", "23:00", "04:00", "09:00", "14:00", "19:00",
    ]  # fmt: skip


# --- tapering and time-limited --------------------------------------------------------------


def test_a_tapering_that_ends_mid_week() -> None:
    # Prednisolon: 4 tablets for 3 days, 2 for 3 days, 1 for 2 days, then stop (Thursday)
    tapering = entry(
        {**dose(4, when=["MORN"], boundsDuration={"value": 3, "code": "d"}), "sequence": 1},
        {**dose(2, when=["MORN"], boundsDuration={"value": 3, "code": "d"}), "sequence": 2},
        {**dose(1, when=["MORN"], boundsDuration={"value": 2, "code": "d"}), "sequence": 3},
        start="2026-03-02",
    )
    result = schedule([tapering], MONDAY, MONDAY + timedelta(days=13))
    amounts = [(d.day, d.amount, d.sequence) for day in result.days for d in day.doses]
    assert amounts == [
        (date(2026, 3, 2), 4, 1), (date(2026, 3, 3), 4, 1), (date(2026, 3, 4), 4, 1),
        (date(2026, 3, 5), 2, 2), (date(2026, 3, 6), 2, 2), (date(2026, 3, 7), 2, 2),
        (date(2026, 3, 8), 1, 3), (date(2026, 3, 9), 1, 3),
    ]  # fmt: skip


def test_the_last_step_of_a_tapering_is_open_ended() -> None:
    tapering = entry(
        {**dose(2, when=["MORN"], boundsDuration={"value": 1, "code": "wk"}), "sequence": 1},
        {**dose(1, when=["MORN"]), "sequence": 2},
        start="2026-02-20",
    )
    result = schedule([tapering], MONDAY, MONDAY + timedelta(days=13))
    assert {d.amount for day in result.days for d in day.doses} == {Decimal(1)}
    assert len(dosing_days(result)) == 14


def test_a_time_limited_course_ends_on_its_last_day() -> None:
    antibiotic = entry(dose(when=["MORN", "EVE"]), start="2026-03-01", end="2026-03-07")
    result = schedule([antibiotic], MONDAY, MONDAY + timedelta(days=13))
    assert dosing_days(result) == days(MONDAY, 6)


def test_a_course_bounded_by_its_duration_ends_after_it() -> None:
    course = entry(
        dose(when=["MORN"], boundsDuration={"value": 5, "unit": "dager"}), start="2026-03-04"
    )
    result = schedule([course], MONDAY, MONDAY + timedelta(days=13))
    assert dosing_days(result) == days(date(2026, 3, 4), 5)


def test_a_start_and_end_moment_leave_out_rounds_outside_them() -> None:
    started_at_noon = entry(
        dose(when=["MORN", "EVE"]),
        start="2026-03-02T12:00:00+01:00",
        end="2026-03-03T12:00:00+01:00",
    )
    result = schedule([started_at_noon], MONDAY, MONDAY + timedelta(days=2))
    assert planned(result) == [
        (MONDAY, Slot.KVELD, "20:00"),
        (date(2026, 3, 3), Slot.MORGEN, "08:00"),
    ]


# --- daylight saving time ---------------------------------------------------------------------


def test_spring_day_has_23_hours_and_a_0230_round_moves_to_0330() -> None:
    start, end = day_bounds(SPRING, OSLO)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    result = schedule(
        [entry(dose(when=["MORN", "NIGHT"]))],
        SPRING,
        SPRING + timedelta(days=1),
        slots={Slot.NATT: time(23)},
    )
    first = result.days[0].doses
    assert [f"{d.at:%H:%M%z}" for d in first] == ["08:00+0200", "23:00+0200"]
    night = schedule(
        [entry(dose(when=["NIGHT"]))],
        SPRING,
        slots={
            Slot.MORGEN: time(0, 10), Slot.FORMIDDAG: time(0, 20), Slot.MIDDAG: time(0, 30),
            Slot.ETTERMIDDAG: time(0, 40), Slot.KVELD: time(1), Slot.NATT: time(2, 30),
        },
    )  # fmt: skip
    (moved,) = night.days[0].doses
    assert moved.at.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert f"{moved.at:%H:%M%z}" == "03:30+0200"


def test_autumn_day_has_25_hours_and_the_doubled_hour_is_given_once() -> None:
    start, end = day_bounds(AUTUMN, OSLO)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    hourly = schedule([entry(dose(period=1, periodUnit="h"))], AUTUMN)
    times = [d.at for d in hourly.days[0].doses]
    assert len(times) == 24
    two = [t for t in times if t.hour == 2]
    assert len(two) == 1
    assert two[0].utcoffset() == timedelta(hours=2)  # the first 02:00, in summer time
    spring = schedule([entry(dose(period=1, periodUnit="h"))], SPRING)
    assert len(spring.days[0].doses) == 23
    assert len({d.at for d in spring.days[0].doses}) == 23


def test_the_morning_round_keeps_its_clock_time_across_the_change() -> None:
    result = schedule([entry(dose(when=["MORN"]))], SPRING - timedelta(1), SPRING + timedelta(1))
    assert [f"{d.at:%H:%M%z}" for day in result.days for d in day.doses] == [
        "08:00+0100", "08:00+0200", "08:00+0200",
    ]  # fmt: skip


# --- paused, free text, as needed, multidose --------------------------------------------------


def test_a_paused_entry_has_no_planned_doses_and_is_named() -> None:
    result = schedule(
        [entry(dose(when=["MORN"]), status="on-hold"), entry(dose(when=["EVE"]), eid="e2")],
        MONDAY,
    )
    day = result.days[0]
    assert [d.entry_id for d in day.doses] == ["e2"]
    assert day.paused_entries == ("e1",)


def test_ended_entries_are_not_planned() -> None:
    result = schedule([entry(dose(when=["MORN"]), status="stopped")], MONDAY)
    assert result.days[0].doses == ()
    assert result.days[0].paused_entries == ()


def test_a_paused_list_plans_nothing_and_says_so() -> None:
    lst = MedicationList("list-1", PATIENT_ID, 3, NOW, NOW, GP)
    lst.entries["e1"] = entry(dose(when=["MORN"]))
    assert planned(schedule_list(lst, MONDAY)) == [(MONDAY, Slot.MORGEN, "08:00")]
    lst.pause = Pause(GP, NOW, "Innlagt på sykehus")
    result = schedule_list(lst, MONDAY, MONDAY + timedelta(days=2))
    assert result.paused == lst.pause
    assert [day.doses + day.as_needed + day.assess for day in result.days] == [(), (), ()]


def test_free_text_is_listed_as_must_assess_with_its_text() -> None:
    result = schedule([entry({"text": "1 tablett morgen, ved smerter 2"})], MONDAY)
    day = result.days[0]
    assert day.doses == ()
    (item,) = day.assess
    assert (item.entry_id, item.text) == ("e1", "1 tablett morgen, ved smerter 2")
    assert "fritekst" in item.reason


def test_what_would_need_a_guess_is_must_assess_not_planned() -> None:
    twice_a_week = entry(dose(frequency=2, period=1, periodUnit="wk"), start="2026-03-01")
    every_other_day_no_start = entry(dose(when=["MORN"], period=2, periodUnit="d"), eid="e2")
    result = schedule([twice_a_week, every_other_day_no_start], MONDAY)
    day = result.days[0]
    assert day.doses == ()
    assert [(a.entry_id, a.text) for a in day.assess] == [
        ("e1", "1 tablett 2 ganger i uken"),
        ("e2", "1 tablett morgen annenhver dag"),
    ]


def test_as_needed_with_its_remaining_daily_maximum() -> None:
    paracetamol = entry(
        {
            **dose(2, frequency=1, period=1, periodUnit="d"),
            "asNeededBoolean": True,
            "maxDosePerPeriod": {
                "numerator": {"value": 6},
                "denominator": {"value": 1, "unit": "døgn"},
            },
        }
    )
    given = [
        Given("e1", datetime(2026, 3, 2, 7, 0, tzinfo=UTC), Decimal(2), "tabletter"),
        Given("e1", datetime(2026, 3, 2, 13, 0, tzinfo=UTC), Decimal(2), "tablett"),
        # 23:30 local, the day before
        Given("e1", datetime(2026, 3, 1, 22, 30, tzinfo=UTC), Decimal(2), "tablett"),
    ]  # fmt: skip
    result = schedule([paracetamol], MONDAY - timedelta(1), MONDAY + timedelta(1), given=given)
    assert [day.doses for day in result.days] == [(), (), ()]
    remaining = [
        (i.day, i.given, i.remaining, i.daily_max) for d in result.days for i in d.as_needed
    ]
    assert remaining == [
        (date(2026, 3, 1), Decimal(2), Decimal(4), Decimal(6)),
        (MONDAY, Decimal(4), Decimal(2), Decimal(6)),
        (date(2026, 3, 3), Decimal(0), Decimal(6), Decimal(6)),
    ]
    assert result.days[1].as_needed[0].text == "2 tabletter daglig ved behov, maks 6 per døgn"


def test_as_needed_without_a_daily_maximum_has_no_remaining() -> None:
    result = schedule([entry({**dose(1), "asNeededBoolean": True})], MONDAY)
    (item,) = result.days[0].as_needed
    assert (item.daily_max, item.remaining) == (None, None)


def test_multidose_entries_come_from_the_bag_others_from_a_package() -> None:
    result = schedule(
        [entry(dose(when=["MORN"]), packed=True), entry(dose(when=["MORN"]), eid="e2")], MONDAY
    )
    assert {(d.entry_id, d.source) for d in result.days[0].doses} == {
        ("e1", Source.MULTIDOSE),
        ("e2", Source.PACKAGE),
    }


# --- the range ----------------------------------------------------------------------------------


def test_at_most_fourteen_days() -> None:
    assert len(schedule([], MONDAY, MONDAY + timedelta(days=13)).days) == 14
    with pytest.raises(InvalidInput) as caught:
        schedule([], MONDAY, MONDAY + timedelta(days=14))
    assert caught.value.expression == "end"
    with pytest.raises(InvalidInput):
        schedule([], MONDAY, MONDAY - timedelta(days=1))


# -- a planned dose's identity and two elements in one round (review of issue 17) ----------------


def test_a_planned_doses_key_names_the_round_and_ordinal_not_the_clock_time() -> None:
    """Two units that give the morning round at 07:30 and 08:00 name the same dose."""
    at_eight = schedule([entry(dose(when=["MORN"]))], MONDAY).days[0].doses
    early = schedule([entry(dose(when=["MORN"]))], MONDAY, slots={"morgen": time(7, 30)})
    (mine,), (theirs,) = at_eight, early.days[0].doses
    assert mine.key == theirs.key == f"e1/{MONDAY}/morgen/1"
    assert (f"{mine.at:%H:%M}", f"{theirs.at:%H:%M}") == ("08:00", "07:30")


def test_every_n_hours_twice_in_one_round_are_numbered_by_time() -> None:
    every_four = entry(dose(frequency=1, period=4, periodUnit="h"))
    night = [d for d in schedule([every_four], MONDAY).days[0].doses if d.slot is Slot.NATT]
    assert [(f"{d.at:%H:%M}", d.key.rsplit("/", 1)[1]) for d in night] == [
        ("00:00", "1"),
        ("04:00", "2"),
    ]
    assert len({d.key for day in schedule([every_four], MONDAY).days for d in day.doses}) == 6


def test_two_dosage_elements_in_one_round_are_one_dose_summed() -> None:
    twice = dose(frequency=2, period=1, periodUnit="d")
    morning = dose(when=["MORN"])
    day = schedule([entry(twice | {"sequence": 1}, morning | {"sequence": 1})], MONDAY).days[0]
    assert [(d.slot, d.amount, d.parts, d.key) for d in day.doses] == [
        (Slot.MORGEN, Decimal(2), (Decimal(1), Decimal(1)), f"e1/{MONDAY}/morgen/1"),
        (Slot.KVELD, Decimal(1), (), f"e1/{MONDAY}/kveld/1"),
    ]


def test_two_dosage_elements_in_one_round_in_different_units_must_be_assessed() -> None:
    tablets = dose(frequency=2, period=1, periodUnit="d") | {"sequence": 1}
    millilitres = dose(5, "ml", when=["MORN"]) | {"sequence": 1}
    day = schedule([entry(tablets, millilitres)], MONDAY).days[0]
    assert day.doses == ()
    assert [a.reason for a in day.assess] == ["to doseringer i morgen med ulike enheter"]


def test_days_outside_the_charts_years_are_refused() -> None:
    for first, last in ((date(9999, 12, 31), None), (date(1, 1, 1), None)):
        with pytest.raises(InvalidInput):
            schedule([entry(dose(when=["MORN"]))], first, last)
    assert schedule([], date(2999, 12, 31)).days[0].doses == ()

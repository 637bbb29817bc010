"""The rules of the rollout team's reports (issue 19), pure: periods, first-list credit,
which office a list belongs to, the order of the offices, what a refusal counts as."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pll.domain.errors import (
    ChecksRefused,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    VersionConflict,
)
from pll.domain.model import Role
from pll.stats import organisations
from pll.stats import rollout as rules

KARI = {"name": "Kari", "role": "doctor", "hpr": "1", "org_id": "974600951", "org_name": "B"}


def test_a_month_is_its_norwegian_month_in_utc() -> None:
    start, end = rules.month_span("2026-10")
    assert start == datetime(2026, 9, 30, 22, tzinfo=UTC)  # summer time: UTC+2
    assert end == datetime(2026, 10, 31, 23, tzinfo=UTC)  # winter time: UTC+1
    assert rules.month_span("2026-12")[1] == datetime(2026, 12, 31, 23, tzinfo=UTC)


def test_a_week_is_its_norwegian_iso_week_in_utc() -> None:
    # 19 to 25 October 2026: the clocks go back on its Sunday, so it lasts 169 hours
    start, end = rules.week_span("2026-W43")
    assert start == datetime(2026, 10, 18, 22, tzinfo=UTC)
    assert end == datetime(2026, 10, 25, 23, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-10", "2026-1", "oktober", "1999-01"])
def test_a_bad_month_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.month_span(bad)
    assert caught.value.expression == "month"


@pytest.mark.parametrize("bad", ["2026-W54", "2026-W00", "2026-41", "W41"])
def test_a_bad_week_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.week_span(bad)
    assert caught.value.expression == "week"


def test_first_lists_are_credited_per_prescriber_and_organisation() -> None:
    day = datetime(2026, 10, 5, 23, 30, tzinfo=UTC)  # 6 October in Norway
    system = {"name": "PLL", "role": "system"}
    imported = {"name": "Johan", "role": "doctor", "hpr": "2", "org_name": "Østmarka"}
    report = rules.first_lists(
        "2026-10",
        [(day, KARI), (day, KARI), (day, system), (day, imported)],
        {"974600951": "Bergen legesenter"},
    )
    assert report["patients"] == 3  # PLL's own version is never credited
    assert [(p["hpr"], p["organisation"], p["dates"]) for p in report["prescribers"]] == [
        ("1", "Bergen legesenter", ["2026-10-06", "2026-10-06"]),
        ("2", "Østmarka", ["2026-10-06"]),
    ]


def test_a_list_belongs_to_the_office_that_last_confirmed_it_else_the_baton_holder() -> None:
    tove = {"name": "Tove", "role": "doctor", "org_id": "911222337"}
    assert rules.responsible_office({"by": tove, "at": "2026-10-07"}, KARI) == "911222337"
    assert rules.responsible_office(None, KARI) == "974600951"
    assert rules.responsible_office(None, {"name": "Johan", "role": "doctor"}) == ""


def test_the_office_furthest_behind_comes_first() -> None:
    behind = rules.Office("1", "A", "4601", 1000, with_pll=10)
    ahead = rules.Office("2", "B", "4601", 100, with_pll=50)
    unknown = rules.Office("3", "C", "4601", None, with_pll=0)
    tied = rules.Office("4", "D", "4601", 1000, with_pll=10, confirmed_12m=5)
    rows = rules.furthest_behind([unknown, ahead, tied, behind])
    assert [r["orgnr"] for r in rows] == ["1", "4", "2", "3"]
    assert (rows[0]["share_with_pll_pct"], rows[-1]["share_with_pll_pct"]) == (1.0, None)


def test_what_a_refusal_counts_as_for_its_client() -> None:
    assert rules.measure_of(VersionConflict("stale")) == rules.CONFLICTS
    assert rules.measure_of(Conflict("has a list")) == rules.CONFLICTS
    assert rules.measure_of(Forbidden("no")) == rules.REFUSALS
    assert rules.measure_of(ChecksRefused("override needed")) == rules.REFUSALS
    assert rules.measure_of(InvalidInput("bad")) == rules.FAILED_SENDS
    assert rules.measure_of(NotFound("gone")) is None


def test_a_register_may_give_the_offices_list_patients() -> None:
    header = "orgnr,name,kommunenummer,actor_type,her_id"
    with_list = organisations.parse(
        "t", f"{header},list_patients\n974600951,Bergen,4601,fastlege,,1200\n"
    )
    assert with_list[0].list_patients == 1200
    without = organisations.parse("t", f"{header}\n974600951,Bergen,4601,fastlege,\n")
    assert without[0].list_patients is None
    with pytest.raises(ValueError, match="list_patients 'mange' is not a whole number"):
        organisations.parse("t", f"{header},list_patients\n974600951,B,4601,fastlege,,mange\n")


def test_an_absurd_number_of_list_patients_is_refused_by_the_parser() -> None:
    """A GP office's list patients from the register file is 0–10,000,000: 99999999999 is
    refused naming the line, the same on both databases (it would load on SQLite only)."""
    text = (
        "orgnr,name,kommunenummer,actor_type,her_id,list_patients\n"
        "974600951,Bergen legesenter,4601,fastlege,,99999999999\n"
    )
    with pytest.raises(ValueError, match="list_patients"):
        organisations.parse("test", text)


def test_one_organisation_number_is_one_office_however_its_tokens_spell_its_name() -> None:
    """One orgnr is one office, even one not (yet) in the register whose GPs' tokens spell its
    name differently; it is named as the most recent token names it."""
    at = datetime(2026, 10, 6, 8, tzinfo=UTC)
    doctor = Role.DOCTOR.value
    made = [
        (at, {"role": doctor, "hpr": "1001", "name": "A", "org_id": "912345678",
              "org_name": "Fjordbyen legesenter AS"}),
        (at, {"role": doctor, "hpr": "1002", "name": "B", "org_id": "912345678",
              "org_name": "Fjordbyen Legesenter"}),
    ]  # fmt: skip
    report = rules.first_lists("2026-10", made, {})
    assert [(o["orgnr"], o["organisation"], o["patients"]) for o in report["organisations"]] == [
        ("912345678", "Fjordbyen Legesenter", 2)
    ]
    assert {p["organisation"] for p in report["prescribers"]} == {"Fjordbyen Legesenter"}
    named = rules.first_lists("2026-10", made, {"912345678": "Fjordbyen legesenter"})
    assert named["organisations"][0]["organisation"] == "Fjordbyen legesenter"


def test_an_author_without_an_orgnr_is_credited_to_the_office_of_their_her_id() -> None:
    at = datetime(2026, 10, 6, 8, tzinfo=UTC)
    johan = {"role": "doctor", "hpr": "7", "name": "Johan", "her": "8093556", "org_name": "Ø"}
    report = rules.first_lists("2026-10", [(at, johan)], {}, {"8093556": "974600951"})
    assert report["prescribers"][0]["orgnr"] == "974600951"
    assert rules.responsible_office(None, johan, {"8093556": "974600951"}) == "974600951"
    assert rules.responsible_office(None, johan, {}) == ""


@pytest.mark.parametrize(
    "month", ["1999-12", "3000-01", "9999-12", "2026-00", "2026-13", "\u0662\u0660\u0662\u0666-10"]
)
def test_a_month_is_ascii_in_the_years_2000_to_2999(month: str) -> None:
    with pytest.raises(InvalidInput):
        rules.month_span(month)


def test_the_last_month_and_week_of_2999_have_an_end() -> None:
    assert rules.month_span("2999-12")[1] > rules.month_span("2999-12")[0]
    assert rules.week_span("2999-W52")[1] > rules.week_span("2999-W52")[0]


@pytest.mark.parametrize("week", ["2025-W53", "2026-W00", "3000-W01", "9999-W52", "2026-W4\x00"])
def test_a_week_is_an_iso_week_of_its_year(week: str) -> None:
    with pytest.raises(InvalidInput):
        rules.week_span(week)
    assert rules.week_span("2026-W53")  # 2026 has 53 ISO weeks, 2025 has 52

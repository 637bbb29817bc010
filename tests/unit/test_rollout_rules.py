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

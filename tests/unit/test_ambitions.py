"""The ambition matrix (issue 8): the 2026 mandate's table as a versioned data file, and
actual shares held against it."""

from __future__ import annotations

from datetime import date

import pytest

from pll.stats.ambitions import ACTOR_TYPES, REGIONS, Status, current, expected, parse, status


def test_the_2026_table_is_the_current_one_and_says_what_the_mandate_says() -> None:
    matrix = current()
    assert matrix.name == "ambitions-2026.csv"
    # the mandate's 2026 text: 60 % of GPs in Vest, 80 % in Nord, 30 % in Sør-Øst and Midt
    assert matrix.target("Vest", "fastlege", 2026) == 60
    assert matrix.target("Nord", "fastlege", 2026) == 80
    assert matrix.target("Sør-Øst", "fastlege", 2026) == 30
    assert matrix.target("Midt-Norge", "fastlege", 2026) == 30
    assert matrix.years() == [2025, 2026, 2027, 2028, 2029]
    regions = {t.region for t in matrix.targets}
    assert set(REGIONS) <= regions
    assert {t.actor_type for t in matrix.targets if t.region in REGIONS} <= set(ACTOR_TYPES)


def test_the_target_by_a_day_runs_from_last_years_to_this_years() -> None:
    matrix = current()
    # Vest GPs: 45 % at the end of 2025, 60 % at the end of 2026
    assert expected(matrix, "Vest", "fastlege", date(2026, 1, 1)) == 45
    assert expected(matrix, "Vest", "fastlege", date(2026, 12, 31)) == 60
    assert expected(matrix, "Vest", "fastlege", date(2026, 7, 2)) == pytest.approx(52.5, abs=0.1)
    assert expected(matrix, "Vest", "apotek", date(2026, 7, 2)) is None


@pytest.mark.parametrize(
    ("actual", "expected_status"),
    [
        (60, Status.REACHED),
        (53, Status.ON_TRACK),
        (45, Status.LATE),  # 45 ≥ 0.8 × 52.5
        (41, Status.BEHIND),
    ],
)
def test_an_actual_share_is_reached_on_track_late_or_behind(
    actual: float, expected_status: Status
) -> None:
    assert status(current(), "Vest", "fastlege", date(2026, 7, 2), actual) is expected_status


def test_no_target_is_said_so() -> None:
    assert status(current(), "Vest", "apotek", date(2026, 7, 2), 10) is Status.NO_TARGET


@pytest.mark.parametrize(
    "text",
    [
        "region,actor,year,target_pct\nVest,fastlege,2026,60\n",
        "region,actor_type,year,target_pct\nVest,fastlege,2026,160\n",
        "region,actor_type,year,target_pct\nVest,fastlege,x,60\n",
        "region,actor_type,year,target_pct\nVest,fastlege,2026,60\nVest,fastlege,2026,70\n",
    ],
)
def test_a_broken_table_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"broken\.csv"):
        parse("broken.csv", text)

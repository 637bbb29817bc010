"""Counting events into the indicators, and suppressing small counts (issue 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pll.stats import disclosure
from pll.stats import indicators as ind
from pll.stats.disclosure import HIDDEN as H
from pll.stats.disclosure import SUPPRESSED as S
from pll.stats.indicators import Home, ListChange, Tally

BERGEN = Home("Vest", "4601")
# Sunday 22 November 2026 at 23:30 UTC is already 00:30 on Monday of week 48 in Oslo
LATE_SUNDAY = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)


def change(at: datetime, *activities: str, **kw: Any) -> ListChange:
    facts: dict[str, Any] = {
        "actor_type": "fastlege",
        "home": BERGEN,
        "paper": False,
        "emultidose": False,
    } | kw
    return ListChange("p1", "l1", at, frozenset(activities), **facts)


def test_periods_are_norwegian_weeks_and_months() -> None:
    assert ind.week(LATE_SUNDAY) == "2026-W48"
    assert ind.week(LATE_SUNDAY - timedelta(hours=1)) == "2026-W47"
    assert ind.month(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-12"
    assert ind.day(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-12-01"
    assert ind.week(datetime(2027, 1, 1, 12, tzinfo=UTC)) == "2026-W53"


def test_a_new_list_is_counted_once_and_its_changes_every_time() -> None:
    tally = Tally()
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    state = ind.list_changed(tally, None, change(at, "create-list"))
    state = ind.list_changed(tally, state, change(at, "add-entry", actor_type="sykehus"))
    assert tally.nonzero() == {
        ("lists", "now", "now", "Vest", "4601", ""): 1,
        ("new_lists", "week", "2026-W45", "Vest", "4601", "fastlege"): 1,
        ("new_lists", "month", "2026-11", "Vest", "4601", "fastlege"): 1,
        ("changes", "week", "2026-W45", "Vest", "4601", "fastlege"): 1,
        ("changes", "month", "2026-11", "Vest", "4601", "fastlege"): 1,
        ("changes", "week", "2026-W45", "Vest", "4601", "sykehus"): 1,
        ("changes", "month", "2026-11", "Vest", "4601", "sykehus"): 1,
    }
    assert state.created_at == at


def test_a_list_stays_where_it_was_made_when_the_patient_moves() -> None:
    tally = Tally()
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    state = ind.list_changed(tally, None, change(at, "create-list"))
    moved = ind.list_changed(tally, state, change(at, "confirm", home=Home("Nord", "5501")))
    assert moved.home == BERGEN
    assert all(key[3] == "Vest" for key in tally.nonzero())


def test_a_confirmation_moves_the_list_to_its_new_day() -> None:
    tally = Tally()
    first, second = datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 11, 3, 9, tzinfo=UTC)
    state = ind.list_changed(tally, None, change(first, "create-list", "confirm"))
    state = ind.list_changed(tally, state, change(second, "confirm"))
    confirmed = {k[2]: v for k, v in tally.counts.items() if k[0] == "confirmed"}
    assert confirmed == {"2026-03-02": 0, "2026-11-03": 1}
    assert state.confirmed_at == second


def test_multidose_flags_count_only_when_they_flip() -> None:
    tally = Tally()
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    state = ind.list_changed(tally, None, change(at, "create-list"))
    state = ind.list_changed(tally, state, change(at, "x", paper=True, emultidose=True))
    state = ind.list_changed(tally, state, change(at, "y", paper=True, emultidose=True))
    state = ind.list_changed(tally, state, change(at, "z", paper=False, emultidose=True))
    now = {k[0]: v for k, v in tally.counts.items() if k[1] == "now"}
    assert now == {"lists": 1, "paper_multidose": 0, "emultidose": 1}
    assert (state.paper, state.emultidose) == (False, True)


def test_cases_are_counted_open_closed_and_how_long() -> None:
    tally = Tally()
    reported = datetime(2026, 11, 2, 9, tzinfo=UTC)
    ind.case_changed(tally, "case-reported", reported, reported, BERGEN, "sykehus")
    ind.case_changed(tally, "case-taken", reported, reported, BERGEN, "sykehus")
    ind.case_changed(
        tally, "case-resolved", reported + timedelta(days=2), reported, BERGEN, "sykehus"
    )
    weekly = {k[0]: v for k, v in tally.counts.items() if k[1] == "week"}
    assert weekly == {"cases_opened": 1, "cases_closed": 1, "case_seconds": 2 * 86400}
    assert tally.counts[("cases_open", "now", "now", "Vest", "4601", "")] == 0


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ([], Home()),
        ([{"district": "Bergen"}], Home()),  # a name alone is not a code
        ([{"_district": {"extension": [{"url": ind.MUNICIPALITY_EXTENSION}]}}], Home()),
        (
            [
                {
                    "use": "temp",
                    "_district": {
                        "extension": [
                            {"url": ind.MUNICIPALITY_EXTENSION, "valueCoding": {"code": "0301"}}
                        ]
                    },
                },
                {
                    "use": "home",
                    "_district": {
                        "extension": [
                            {"url": ind.MUNICIPALITY_EXTENSION, "valueCoding": {"code": "5501"}}
                        ]
                    },
                },
            ],
            Home("Nord", "5501"),
        ),
        (
            [
                {
                    "_district": {
                        "extension": [
                            {"url": ind.MUNICIPALITY_EXTENSION, "valueCoding": {"code": "9999"}}
                        ]
                    }
                }
            ],
            Home(),
        ),
    ],
)
def test_the_home_comes_from_the_municipality_code(
    address: list[dict[str, Any]], expected: Home
) -> None:
    assert ind.home_of({"resourceType": "Patient", "address": address}) == expected


# -- suppression -----------------------------------------------------------------------------


def region_rows(**values: int) -> list[dict[str, Any]]:
    return [{"period": "2026-W47", "region": r, "lists": v} for r, v in values.items()]


def test_counts_under_five_are_suppressed_zero_included() -> None:
    rows = disclosure.suppress(
        region_rows(Nord=0, Midt=4, Vest=5, SorOst=120), ["lists"], {}, lambda r: r["period"]
    )
    assert [r["lists"] for r in rows] == [S, S, 5, 120]


def test_one_suppressed_cell_takes_the_next_smallest_with_it() -> None:
    """Otherwise the country's total minus the shown regions gives it back."""
    rows = disclosure.suppress(
        region_rows(Nord=3, Midt=40, Vest=12, SorOst=120), ["lists"], {}, lambda r: r["period"]
    )
    assert [r["lists"] for r in rows] == [S, 40, H, 120]


def test_groups_are_protected_each_on_their_own() -> None:
    rows = [
        {"region": "Vest", "municipality": "4601", "lists": 50},
        {"region": "Vest", "municipality": "4602", "lists": 2},
        {"region": "Vest", "municipality": "4603", "lists": 9},
        {"region": "Nord", "municipality": "5501", "lists": 30},
        {"region": "Nord", "municipality": "1804", "lists": 8},
    ]
    out = disclosure.suppress(rows, ["lists"], {}, lambda r: r["region"])
    assert [r["lists"] for r in out] == [50, S, H, 30, 8]


def test_figures_from_a_suppressed_count_are_suppressed() -> None:
    rows = [
        {"conflicts": 3, "changes": 900, "rate": 3.3, "none": None},
        {"conflicts": 7, "changes": 900, "rate": 7.8, "none": None},
    ]
    out = disclosure.suppress(
        rows, ["conflicts", "changes"], {"rate": ("conflicts", "changes")}, id
    )
    assert (out[0]["rate"], out[1]["rate"]) == (H, 7.8)
    assert rows[0]["rate"] == 3.3  # the input is left as it was


def test_parts_of_a_shown_total_are_protected_too() -> None:
    rows = [{"lists": 40, "new": 20, "old": 17, "never": 3}]
    out = disclosure.suppress(
        rows, ["lists", "new", "old", "never"], {}, id, parts=[("new", "old", "never")]
    )
    assert out[0] == {"lists": 40, "new": 20, "old": H, "never": S}


def test_shown_in_csv() -> None:
    assert [disclosure.shown(v) for v in (S, H, None, 12, 2.25)] == [
        "<5",
        "skjult",
        "",
        "12",
        "2.2",
    ]

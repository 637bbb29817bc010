"""An as-needed maximum over a rolling period (issue 17, review): every window of the
period's length around a new dose counts, not the calendar day. Plain domain calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pll.domain.administration.as_needed import Dose, Maximum, given_in, maximum, peak_with

TWO_PER_DAY = Maximum(Decimal(2), "tablett", timedelta(hours=24))
T = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)  # 23:30 in Norway


def two(at: datetime) -> Dose:
    return Dose(at, Decimal(2), "tablett")


def test_a_dose_after_midnight_counts_the_one_before_it() -> None:
    peak, start = peak_with(TWO_PER_DAY, [two(T)], T + timedelta(hours=1))
    assert (peak, start) == (Decimal(2), T)


def test_a_dose_a_whole_period_later_is_in_another_window() -> None:
    assert peak_with(TWO_PER_DAY, [two(T)], T + timedelta(hours=24))[0] == 0
    assert peak_with(TWO_PER_DAY, [two(T)], T + timedelta(hours=23, minutes=59))[0] == 2


def test_a_backdated_dose_counts_the_ones_after_it() -> None:
    assert peak_with(TWO_PER_DAY, [two(T)], T - timedelta(hours=3))[0] == 2


def test_doses_in_other_units_are_not_counted() -> None:
    assert peak_with(TWO_PER_DAY, [Dose(T, Decimal(5), "ml")], T)[0] == 0
    assert given_in(TWO_PER_DAY, [Dose(T, Decimal(5), "ml")], T) == (Decimal(0), False)


def test_what_was_given_is_over_the_period_ending_then() -> None:
    doses = [two(T - timedelta(hours=25)), Dose(T - timedelta(hours=2), Decimal(1), "tablett")]
    assert given_in(TWO_PER_DAY, doses, T) == (Decimal(1), True)


def test_periods_of_hours_days_and_weeks_are_counted_months_are_not() -> None:
    def ratio(value: int, code: str) -> dict[str, object]:
        return {
            "maxDosePerPeriod": {
                "numerator": {"value": 4, "unit": "tablett"},
                "denominator": {"value": value, "code": code},
            }
        }

    assert maximum(ratio(8, "h"), "tablett") == Maximum(Decimal(4), "tablett", timedelta(hours=8))
    assert maximum(ratio(1, "d"), "tablett") == Maximum(Decimal(4), "tablett", timedelta(days=1))
    assert maximum(ratio(1, "wk"), "tablett") == Maximum(Decimal(4), "tablett", timedelta(days=7))
    assert maximum(ratio(1, "mo"), "tablett") is None

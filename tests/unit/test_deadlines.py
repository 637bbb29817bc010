"""Deadlines of cases (pll.domain.deadlines): working days skip weekends and Norway's public
holidays; the configuration is checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pll.domain.deadlines import OSLO, Deadlines, holidays, overdue, working_day


def _oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def test_norwegian_public_holidays() -> None:
    assert holidays(2026) == {
        date(2026, 1, 1),
        date(2026, 4, 2),  # skjærtorsdag
        date(2026, 4, 3),  # langfredag
        date(2026, 4, 5),  # 1. påskedag
        date(2026, 4, 6),  # 2. påskedag
        date(2026, 5, 1),
        date(2026, 5, 14),  # Kristi himmelfartsdag
        date(2026, 5, 17),
        date(2026, 5, 24),  # 1. pinsedag
        date(2026, 5, 25),  # 2. pinsedag
        date(2026, 12, 25),
        date(2026, 12, 26),
    }
    assert _easter_sunday(2025) == date(2025, 4, 20)
    assert not working_day(date(2026, 12, 26))
    assert working_day(date(2026, 12, 24))  # julaften is not a public holiday


def _easter_sunday(year: int) -> date:
    return next(d for d in holidays(year) if d.month in (3, 4) and d.weekday() == 6)


def test_working_days_skip_weekends_and_holidays() -> None:
    rules = Deadlines.parse("clinical=3wd,technical=1wd")
    # Friday 10:00 + 3 working days: Wednesday 10:00
    assert rules.due("clinical", _oslo(2026, 11, 27, 10)) == _oslo(2026, 12, 2, 10)
    # Wednesday before Easter + 1 working day: Tuesday after Easter (Thu, Fri, Mon are off)
    assert rules.due("technical", _oslo(2026, 4, 1, 9, 30)) == _oslo(2026, 4, 7, 9, 30)
    # reported on a Saturday: counted from Monday's start
    assert rules.due("technical", _oslo(2026, 11, 28, 15)) == _oslo(2026, 12, 1, 0)
    # the answer keeps the zone it was asked in
    at = datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert rules.due("technical", at).tzinfo is UTC


def test_hours_and_days_and_defaults() -> None:
    rules = Deadlines.parse("technical=4h, administration=2d")
    start = datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert rules.due("technical", start) == start + timedelta(hours=4)
    assert rules.due("administration", start) == start + timedelta(days=2)
    # a kind not named keeps its default: clinical 3 working days
    assert rules.by_kind["clinical"].text() == "3wd"
    assert Deadlines.parse(None) == Deadlines()


@pytest.mark.parametrize(
    "raw", ["clinical=3", "clinical=0wd", "surgery=3wd", "clinical=3w", "clinical 3wd"]
)
def test_a_bad_configuration_says_what_is_wrong(raw: str) -> None:
    with pytest.raises(ValueError, match="PLL_CASE_DEADLINES"):
        Deadlines.parse(raw)


def test_overdue_only_when_open_past_the_deadline() -> None:
    due = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert overdue(due, closed=False, now=due + timedelta(seconds=1))
    assert not overdue(due, closed=False, now=due)
    assert not overdue(due, closed=True, now=due + timedelta(days=9))
    assert not overdue(None, closed=False, now=due)

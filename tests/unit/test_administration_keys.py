"""A planned dose's key and the chart's days (issue 17, review): the key names entry, day,
round and ordinal; the old shape with a clock time and days outside 1900–2999 are refused
with a clear message. Plain domain calls."""

from __future__ import annotations

from datetime import date

import pytest

from pll.domain.administration import Slot
from pll.domain.administration.keys import PlannedKey, parse_key
from pll.domain.errors import InvalidInput


def test_a_key_is_entry_day_round_and_ordinal() -> None:
    key = parse_key("e1/2026-03-02/natt/2")
    assert key == PlannedKey("e1", date(2026, 3, 2), Slot.NATT, 2)
    assert str(key) == "e1/2026-03-02/natt/2"


def test_the_old_shape_with_a_clock_time_is_refused_saying_so() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_key("e1/2026-03-02/morgen/08:00")
    assert "clock time" in refused.value.message
    assert refused.value.norwegian is not None


@pytest.mark.parametrize(
    "key",
    [
        "e1/9999-12-31/morgen/1",
        "e1/0001-01-01/morgen/1",
        "e1/1899-12-31/morgen/1",
        "e1/2026-02-30/morgen/1",
        "e1/2026-03-02/lunsj/1",
        "e1/2026-03-02/morgen/0",
        "e1/2026-03-02/morgen/25",
        "e1/2026-03-02/morgen/+1",
        "/2026-03-02/morgen/1",
        "e1/2026-03-02/morgen",
    ],
)
def test_what_is_not_a_planned_doses_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidInput):
        parse_key(key, "Task.focus")

"""A care unit's settings as pure rules (issue 17): who sets them, from which day they
apply, how a range is cut where they change, and which drugs need a second signer."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from pll.domain.administration import DEFAULT_TIMES, Slot
from pll.domain.administration import unit_settings as rules
from pll.domain.errors import Forbidden, InvalidInput
from pll.domain.model import Author, Role

UNIT = "883416031"
NURSE = Author("Nora", Role.NURSE, "9144935", UNIT)
# 23:30 UTC on 6 December is 00:30 on the 7th in Oslo
LATE = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)


def test_settings_apply_from_the_next_local_day() -> None:
    made = rules.make(UNIT, {"morgen": time(7, 30)}, True, NURSE, LATE, "organization")
    assert made.valid_from == date(2026, 12, 8)
    assert made.times[Slot.MORGEN] == time(7, 30)
    assert made.times[Slot.NATT] == DEFAULT_TIMES[Slot.NATT]
    assert made.group_b_second_signature is True


@pytest.mark.parametrize(
    ("actor", "text"),
    [
        (Author("Hege", Role.CARE_WORKER, "9144943", UNIT), "nurse or doctor"),
        (Author("Per", Role.PHARMACIST, "9144919", UNIT), "nurse or doctor"),
        (Author("Siri", Role.NURSE, "9144900", "964338531"), "not for the care unit"),
    ],
)
def test_only_the_units_nurses_and_doctors_set_them(actor: Author, text: str) -> None:
    with pytest.raises(Forbidden, match=text):
        rules.make(UNIT, {}, False, actor, LATE, "organization")


def test_rounds_out_of_order_are_refused_at_the_round() -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.make(UNIT, {"kveld": time(13)}, False, NURSE, LATE, "organization")
    assert refused.value.expression == "slots.kveld"


def test_a_range_is_cut_where_the_settings_change() -> None:
    early = rules.make(
        UNIT, {"morgen": time(7)}, False, NURSE, datetime(2026, 3, 1, tzinfo=UTC), "o"
    )
    later = rules.make(
        UNIT, {"morgen": time(9)}, True, NURSE, datetime(2026, 3, 4, tzinfo=UTC), "o"
    )
    history = [early, later]  # from 2 March and from 5 March
    cut = rules.periods(history, date(2026, 3, 1), date(2026, 3, 6), UNIT)
    assert [(a.day, b.day, s.times[Slot.MORGEN]) for a, b, s in cut] == [
        (1, 1, time(8)),
        (2, 4, time(7)),
        (5, 6, time(9)),
    ]
    assert rules.in_force(history, date(2026, 3, 4), UNIT) is early
    assert rules.in_force([], date(2026, 3, 4), UNIT).times == DEFAULT_TIMES


@pytest.mark.parametrize(
    ("group", "chosen", "needed"),
    [
        ("A", False, True),
        ("a", False, True),
        ("B", False, False),
        ("B", True, True),
        ("C", True, False),
        (None, True, False),
    ],
)
def test_which_drugs_need_a_second_signer(group: str | None, chosen: bool, needed: bool) -> None:
    settings = rules.UnitSettings(UNIT, date.min, DEFAULT_TIMES, chosen)
    assert rules.needs_second_signature(group, settings) is needed

"""The size of one list is bounded (issue 15, DESIGN §3 rule 8): a change that would take it
past ``MAX_LIST_ENTRIES`` medicines is refused; one that does not grow it never is."""

from __future__ import annotations

import pytest

from pll.domain import changes
from pll.domain.changes import ListChange, list_size
from pll.domain.errors import RuleRefused
from tests.unit.test_changes import (
    GP,
    LATER,
    list_with,
    one_change,
    prescription,
    statement,
    with_status,
)


@pytest.fixture(autouse=True)
def limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(changes, "MAX_LIST_ENTRIES", 3)


def test_what_counts_entries_shown_and_prescriptions_without_an_entry() -> None:
    lst = list_with(
        {"e1": statement(based_on=("rx1",)), "e2": statement("Ibux", "M01AE01")},
        {"rx1": prescription(), "rx2": prescription("Ibux", "M01AE01")},
    )
    assert list_size(lst, LATER) == 3  # two entries, and rx2 that no entry holds
    one_change(
        lst,
        lambda c: c.update_entry(
            "e2", with_status(statement("Ibux", "M01AE01"), "stopped", "Bivirkning"), 1
        ),
    )
    assert list_size(lst, LATER) == 3  # discontinued, and still shown for 90 days
    one_change(
        lst,
        lambda c: c.update_entry(
            "e2", with_status(statement("Ibux", "M01AE01"), "entered-in-error", "Feil"), 2
        ),
    )
    assert list_size(lst, LATER) == 2


def test_past_the_limit_is_refused_at_the_limit_is_not() -> None:
    lst = list_with({"e1": statement(), "e2": statement("Ibux", "M01AE01")})
    assert one_change(lst, lambda c: c.add_entry("e3", statement("Zocor", "C10AA01"))) is not None
    change = ListChange(lst, GP, LATER)
    change.add_entry("e4", statement("Marevan", "B01AA03"))
    with pytest.raises(RuleRefused) as caught:
        change.finish()
    assert caught.value.details == {"limit": "3", "size": "4"}
    assert "a list holds at most 3" in caught.value.message


def test_a_change_that_does_not_grow_a_list_over_the_limit_goes_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A list already past a (since lowered) limit can still be changed, only not grown."""
    lst = list_with({"e1": statement(), "e2": statement("Ibux", "M01AE01")})
    monkeypatch.setattr(changes, "MAX_LIST_ENTRIES", 1)
    stopped = with_status(statement(), "stopped", "Ikke lenger behov")
    assert one_change(lst, lambda c: c.update_entry("e1", stopped, 1)) is not None

"""Bringing in a list another system kept (``pll import sfm``): the rules the domain keeps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pll.domain.changes import ListChange, start_list
from pll.domain.errors import Conflict, InvalidInput
from tests.unit.content import NOW, PATIENT_ID
from tests.unit.test_changes import GP, LIST_ID, list_with, prescription, statement

ENDED = NOW - timedelta(days=30)


def new_change() -> ListChange:
    return ListChange(start_list(LIST_ID, PATIENT_ID, GP, NOW, exists=False), GP, NOW)


def test_stopped_entries_and_recalled_prescriptions_come_in_as_they_were() -> None:
    change = new_change()
    rx = prescription()
    rx["status"] = "stopped"
    change.import_prescription("rx-1", rx)
    entry = change.import_entry("e-1", statement(status="stopped", based_on=("rx-1",)), ENDED)
    record = change.finish()
    assert record is not None
    assert record.activity == "create-list+import"
    assert entry.ended_at == ENDED  # the 90 days count from when it really ended (rule 3)
    assert not entry.visible_at(ENDED + timedelta(days=91))


def test_an_ended_entry_must_say_when_it_ended() -> None:
    with pytest.raises(InvalidInput, match="when it ended"):
        new_change().import_entry("e-1", statement(status="completed"), None)


def test_only_a_new_list_is_brought_in() -> None:
    lst = list_with()
    with pytest.raises(Conflict, match="only a new list"):
        ListChange(lst, GP, NOW).import_entry("e-1", statement(), None)
    with pytest.raises(Conflict, match="only a new list"):
        ListChange(lst, GP, NOW).import_prescription("rx-1", prescription())


def test_a_prescription_is_never_on_two_entries_in_use() -> None:
    change = new_change()
    change.import_prescription("rx-1", prescription())
    change.import_entry("e-1", statement(based_on=("rx-1",)), None)
    with pytest.raises(Conflict, match="two entries in use"):
        change.import_entry("e-2", statement(based_on=("rx-1",)), None)


def test_links_and_chains_name_what_is_brought_in() -> None:
    change = new_change()
    with pytest.raises(InvalidInput, match="not part of what is brought in"):
        change.import_entry("e-1", statement(based_on=("rx-x",)), None)
    with pytest.raises(InvalidInput, match="not part of what is brought in"):
        change.import_prescription("rx-2", prescription(prior="rx-1"))
    rx = prescription()
    rx["status"] = "draft"
    with pytest.raises(InvalidInput, match="Unknown prescription status"):
        change.import_prescription("rx-3", rx)

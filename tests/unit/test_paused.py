"""The rule that a whole list sent to a paused PLL is refused unless it resumes it
(:func:`pll.domain.paused.check_change_of_paused`)."""

from __future__ import annotations

import pytest

from pll.domain.errors import Conflict
from pll.domain.model import Author, Pause, Role
from pll.domain.paused import check_change_of_paused
from tests.unit.content import NOW

HOSPITAL_DOCTOR = Author(
    "Ola Overlege", Role.DOCTOR, hpr="565505933", org_id="983974899", org_name="Sykehuset Vest"
)
PAUSE = Pause(HOSPITAL_DOCTOR, NOW, "Innlagt på sykehus")


def test_a_change_of_a_paused_list_is_refused_with_since_by_and_why() -> None:
    with pytest.raises(Conflict) as refused:
        check_change_of_paused(PAUSE, resumes=False, expression="Bundle.entry[0]")
    err = refused.value
    assert err.expression == "Bundle.entry[0]"
    assert "Innlagt på sykehus" in err.message
    assert "565505933" in err.message
    assert NOW.isoformat(timespec="minutes") in err.message
    assert err.norwegian is not None
    assert "pauset" in err.norwegian


def test_a_change_that_resumes_or_a_list_not_paused_passes() -> None:
    check_change_of_paused(PAUSE, resumes=True, expression="x")
    check_change_of_paused(None, resumes=False, expression="x")

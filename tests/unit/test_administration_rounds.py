"""Where a round stands (pll.domain.administration.rounds): due from an hour before the
planned time, late an hour after it, a standing record settles the dose either way."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from pll.domain.administration import OSLO, PlannedDose, Slot, Source
from pll.domain.administration.rounds import DoseState, dose_state, round_state

DAY = date(2026, 3, 2)


def dose(hour: int, entry: str = "e1", slot: Slot = Slot.MORGEN) -> PlannedDose:
    at = datetime(2026, 3, 2, hour, 0, tzinfo=OSLO)
    return PlannedDose(entry, 1, DAY, slot, at, Decimal(1), "tablett", Source.PACKAGE)


def moment(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=OSLO)


def test_the_window_of_a_dose_not_recorded() -> None:
    morning = dose(8)
    assert dose_state(morning, {}, moment(6, 59)) is DoseState.LATER
    assert dose_state(morning, {}, moment(7, 0)) is DoseState.DUE
    assert dose_state(morning, {}, moment(9, 0)) is DoseState.DUE
    assert dose_state(morning, {}, moment(9, 0) + timedelta(seconds=1)) is DoseState.LATE


def test_a_standing_record_settles_the_dose_whatever_the_time() -> None:
    morning = dose(8)
    assert dose_state(morning, {morning.key: "completed"}, moment(23)) is DoseState.GIVEN
    assert dose_state(morning, {morning.key: "not-done"}, moment(23)) is DoseState.NOT_GIVEN
    assert dose_state(morning, {"other/key": "completed"}, moment(23)) is DoseState.LATE


def test_the_round_lists_due_and_late_in_planned_order() -> None:
    doses = [dose(20, "e1", Slot.KVELD), dose(8, "e2"), dose(8, "e1"), dose(11, "e3")]
    state = round_state(doses, {doses[1].key: "completed"}, moment(10, 30))
    assert [d.key for d in state.late] == [doses[2].key]
    assert [d.key for d in state.due] == [doses[3].key]

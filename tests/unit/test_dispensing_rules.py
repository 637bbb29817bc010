"""Dispensing on a prescription: what it allows, what remains, the last dispensing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pll.domain.dispensing import check_dispense, moment, record_dispense, summarise
from pll.domain.errors import Conflict, InvalidInput
from pll.domain.model import Author, MedicationList, Prescription, Role
from tests.unit.content import NOW

GP = Author("Kari Fastlege", Role.DOCTOR, hpr="565501872")
PHARMACIST = Author("Per Farmasøyt", Role.PHARMACIST, hpr="565508011", org_id="985563756")


def rx(status: str = "active", quantity: float | None = 100, repeats: int = 1) -> Prescription:
    content: dict[str, Any] = {"status": status, "intent": "order"}
    if quantity is not None:
        content["dispenseRequest"] = {
            "quantity": {"value": quantity, "unit": "tablett"},
            "numberOfRepeatsAllowed": repeats,
        }
    return Prescription("rx1", 1, content, NOW, GP)


def handed(amount: float, when: str = "2026-03-01T10:00:00Z", unit: str = "tablett") -> dict:
    return {"quantity": {"value": amount, "unit": unit}, "whenHandedOver": when}


def test_moments_take_partial_dates_and_zones() -> None:
    assert moment("2026") == datetime(2026, 1, 1, tzinfo=UTC)
    assert moment("2026-03") == datetime(2026, 3, 1, tzinfo=UTC)
    assert moment("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert moment("not a date") is None


def test_a_prescription_allows_its_quantity_and_its_repeats() -> None:
    check_dispense(rx(), handed(100)["quantity"], NOW, NOW, [handed(100)])
    with pytest.raises(Conflict, match="200 tablett in all; 150 has been dispensed, so 50"):
        check_dispense(rx(), handed(60)["quantity"], NOW, NOW, [handed(100), handed(50)])


def test_a_prescription_that_says_no_quantity_is_not_limited() -> None:
    check_dispense(rx(quantity=None), handed(1000)["quantity"], NOW, NOW, [])


@pytest.mark.parametrize("status", ["stopped", "completed", "on-hold"])
def test_only_an_active_prescription_is_dispensed(status: str) -> None:
    with pytest.raises(Conflict, match=status):
        check_dispense(rx(status), handed(1)["quantity"], NOW, NOW, [])


def test_an_expired_prescription_is_not_dispensed() -> None:
    expired = rx()
    expired.content["dispenseRequest"]["validityPeriod"] = {"end": "2020-01-01"}
    with pytest.raises(Conflict, match="expired on 2020-01-01"):
        check_dispense(expired, handed(1)["quantity"], NOW, NOW, [])
    valid = rx()
    valid.content["dispenseRequest"]["validityPeriod"] = {"end": NOW.date().isoformat()}
    check_dispense(valid, handed(1)["quantity"], NOW, NOW, [])  # still valid on its last day


def test_bad_dispensings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="above zero"):
        check_dispense(rx(), {"value": 0}, NOW, NOW, [])
    with pytest.raises(InvalidInput, match="future"):
        check_dispense(rx(), handed(1)["quantity"], NOW + timedelta(hours=1), NOW, [])
    with pytest.raises(InvalidInput, match="same unit"):
        check_dispense(rx(), handed(1, unit="pakning")["quantity"], NOW, NOW, [])


def test_the_summary_shows_the_last_dispensing_and_what_remains() -> None:
    found = summarise(
        rx().content,
        [("d2", handed(60, "2026-04-01")), ("d1", handed(100, "2026-03-01T10:00:00+01:00"))],
    )
    assert found is not None
    assert (found.last, found.handed_over, found.quantity) == ("d2", "2026-04-01", 60)
    assert (found.total, found.count, found.remaining, found.unit) == (160, 2, 40, "tablett")
    assert summarise(rx().content, []) is None
    mixed = summarise(rx().content, [("d1", handed(1, unit="pakning"))])
    assert mixed is not None
    assert mixed.remaining is None  # not in the prescription's unit: unknown


def test_a_dispensing_is_a_list_version_that_leaves_the_baton() -> None:
    lst = MedicationList("list-1", "patient-1", 5, NOW, NOW, GP, prescriptions={"rx1": rx()})
    record = record_dispense(lst, "rx1", "d1", handed(100), [], PHARMACIST, NOW)
    assert (record.version, record.activity, record.author) == (6, "dispense", PHARMACIST)
    assert lst.baton == GP
    assert lst.dispensed["rx1"].remaining == 100
    with pytest.raises(InvalidInput, match="not a prescription of this patient"):
        record_dispense(lst, "rx9", "d2", handed(1), [], PHARMACIST, NOW)

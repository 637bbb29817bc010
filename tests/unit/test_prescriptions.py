"""A prescription's validity, expiry, quantity and reit (pll.domain.prescriptions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pll.domain.changes import ListChange
from pll.domain.dispensing import check_dispense
from pll.domain.errors import Conflict, InvalidInput
from pll.domain.model import Prescription
from pll.domain.prescriptions import (
    add_duration,
    end_of,
    expires_at,
    is_expired,
    issue,
    local_day,
    maximum_end,
    next_expiry,
    validity_end,
)
from tests.unit.content import NOW
from tests.unit.test_changes import (
    GP,
    LATER,
    edited,
    list_with,
    one_change,
    prescription,
    recalled,
)

ISSUED = date(2026, 3, 2)


def test_the_default_validity_is_one_year_from_issue() -> None:
    assert validity_end(ISSUED, None, None) == date(2027, 3, 2)
    assert maximum_end(date(2024, 2, 29), None) == date(2025, 2, 28)


def test_a_shorter_fest_validity_shortens_it_and_a_longer_one_does_not_lengthen_it() -> None:
    assert validity_end(ISSUED, "P10D", None) == date(2026, 3, 12)
    assert validity_end(ISSUED, "P3M", None) == date(2026, 6, 2)
    assert validity_end(ISSUED, "P2Y", None) == date(2027, 3, 2)
    # a value PLL cannot read is the default, never longer
    assert validity_end(ISSUED, "forever", None) == date(2027, 3, 2)


def test_a_prescriber_may_give_an_earlier_end_but_not_a_later_one() -> None:
    assert validity_end(ISSUED, None, date(2026, 9, 1)) == date(2026, 9, 1)
    assert validity_end(ISSUED, None, date(2027, 3, 2)) == date(2027, 3, 2)
    with pytest.raises(InvalidInput, match="2027-03-02 at the latest") as exc:
        validity_end(ISSUED, None, date(2027, 3, 3))
    assert exc.value.expression == "MedicationRequest.dispenseRequest.validityPeriod.end"
    with pytest.raises(InvalidInput, match="FEST: P10D"):
        validity_end(ISSUED, "P10D", date(2026, 3, 13))
    with pytest.raises(InvalidInput, match="before it was issued"):
        validity_end(ISSUED, None, date(2026, 3, 1))


def test_durations_add_as_the_calendar_does() -> None:
    assert add_duration(date(2026, 1, 31), "P1M") == date(2026, 2, 28)
    assert add_duration(date(2026, 3, 2), "P2W") == date(2026, 3, 16)
    assert add_duration(date(2026, 3, 2), "P1Y2M3D") == date(2027, 5, 5)
    for bad in ("P", "1Y", "PT1H", ""):
        with pytest.raises(ValueError, match="ISO 8601"):
            add_duration(ISSUED, bad)


def test_a_prescription_stored_without_validity_is_valid_one_year_from_authored_on() -> None:
    old = {"authoredOn": "2023-07-19T10:00:00+02:00"}
    assert end_of(old) == date(2024, 7, 19)
    assert not is_expired(old, date(2024, 7, 19))
    assert is_expired(old, date(2024, 7, 20))
    stated = {
        "authoredOn": "2023-07-19",
        "dispenseRequest": {"validityPeriod": {"end": "2023-08-01"}},
    }
    assert end_of(stated) == date(2023, 8, 1)
    assert end_of({}) is None
    assert not is_expired({}, ISSUED)


def test_it_expires_at_midnight_norwegian_time() -> None:
    content = {"dispenseRequest": {"validityPeriod": {"end": "2026-07-19"}}}
    # 20.07 00:00 in Oslo (summer time) is 22:00 UTC on the 19th
    assert expires_at(content) == datetime(2026, 7, 19, 22, 0, tzinfo=UTC)
    assert local_day(datetime(2026, 7, 19, 21, 59, tzinfo=UTC)) == date(2026, 7, 19)
    assert local_day(datetime(2026, 7, 19, 22, 0, tzinfo=UTC)) == date(2026, 7, 20)
    later = {"dispenseRequest": {"validityPeriod": {"end": "2026-08-01"}}}
    at = datetime(2026, 7, 1, tzinfo=UTC)
    shown = [_rx(later), _rx(content), _rx({})]
    assert next_expiry(shown, at) == datetime(2026, 7, 19, 22, 0, tzinfo=UTC)
    assert next_expiry([_rx(content)], datetime(2026, 7, 20, tzinfo=UTC)) is None


def _rx(content: dict[str, Any], recorded: datetime | None = None) -> Prescription:
    return Prescription("rx1", 1, {"status": "active", **content}, NOW, GP, recorded)


def test_a_prescription_with_no_date_of_its_own_is_valid_a_year_from_when_pll_recorded_it() -> None:
    """The old REST API and imports stored prescriptions with neither ``authoredOn`` nor a
    validity: they expire a year after PLL first recorded them, never stay valid for ever."""
    recorded = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)  # 2 March in Oslo
    undated = _rx({}, recorded)
    assert end_of(undated.content, recorded) == date(2026, 3, 2)
    assert not is_expired(undated.content, date(2026, 3, 2), recorded)
    assert is_expired(undated.content, date(2026, 3, 3), recorded)
    assert next_expiry([undated], datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 3, 2, 23, 0, tzinfo=UTC
    )
    # its own dates, when it has them, decide
    assert end_of({"authoredOn": "2025-06-01"}, recorded) == date(2026, 6, 1)
    later = NOW + timedelta(days=400)
    with pytest.raises(Conflict, match="expired on 2026-03-02"):
        check_dispense(undated, {"value": 1}, later, later, [])
    check_dispense(undated, {"value": 1}, NOW, NOW, [])


def test_a_change_keeps_when_pll_first_recorded_the_prescription() -> None:
    lst = list_with(prescriptions={"rx1": prescription()})
    first = lst.prescriptions["rx1"]
    assert first.recorded is not None
    stopped = recalled(first.content, "Feil")
    one_change(lst, lambda c: c.update_prescription("rx1", stopped, 1), now=LATER)
    assert lst.prescriptions["rx1"].version == 2
    assert lst.prescriptions["rx1"].recorded == first.recorded == NOW


def test_issuing_states_authored_on_and_the_validity_period() -> None:
    out = issue({"status": "active"}, ISSUED, None)
    assert out["authoredOn"] == "2026-03-02"
    assert out["dispenseRequest"]["validityPeriod"] == {"start": "2026-03-02", "end": "2027-03-02"}
    shorter = issue(
        {"authoredOn": "2026-03-01", "dispenseRequest": {"validityPeriod": {"end": "2026-03-05"}}},
        ISSUED,
        "P10D",
    )
    assert shorter["authoredOn"] == "2026-03-01"
    assert shorter["dispenseRequest"]["validityPeriod"] == {
        "start": "2026-03-01",
        "end": "2026-03-05",
    }
    assert issue({}, ISSUED, "P10D")["dispenseRequest"]["validityPeriod"]["end"] == "2026-03-12"


def _issue_refused(content: dict[str, Any], match: str, where: str) -> None:
    with pytest.raises(InvalidInput, match=match) as exc:
        issue(content, ISSUED, None)
    assert exc.value.expression == where


def test_what_cannot_be_issued() -> None:
    rq = "MedicationRequest.dispenseRequest"
    _issue_refused({"authoredOn": "2026-03-03"}, "in the future", "MedicationRequest.authoredOn")
    # an old prescription's end copied into a renewal: a renewal is issued today
    _issue_refused({"authoredOn": "2024-01-10"}, "expired already", f"{rq}.validityPeriod.end")
    _issue_refused(
        {"dispenseRequest": {"validityPeriod": {"end": "9999-12-31"}}},
        "at the latest",
        f"{rq}.validityPeriod.end",
    )
    _issue_refused(
        {"dispenseRequest": {"numberOfRepeatsAllowed": 5000}},
        "from 0 to 99",
        f"{rq}.numberOfRepeatsAllowed",
    )
    _issue_refused(
        {"dispenseRequest": {"numberOfRepeatsAllowed": -1}},
        "from 0 to 99",
        f"{rq}.numberOfRepeatsAllowed",
    )
    _issue_refused(
        {"dispenseRequest": {"quantity": {"value": -2, "unit": "pakning"}}},
        "from 0 to 99",
        f"{rq}.quantity.value",
    )
    _issue_refused(
        {"dispenseRequest": {"quantity": {"value": 0, "unit": "ml"}}},
        "above 0",
        f"{rq}.quantity.value",
    )
    _issue_refused(
        {"dispenseRequest": {"quantity": {"value": 250, "unit": "pakning"}}},
        "packages must be from 0 to 99",
        f"{rq}.quantity.value",
    )


def test_a_new_prescription_on_the_list_gets_its_validity() -> None:
    lst = list_with(prescriptions={"rx1": prescription()})
    content = lst.prescriptions["rx1"].content
    assert content["authoredOn"] == "2026-03-02"
    assert content["dispenseRequest"]["validityPeriod"]["end"] == "2027-03-02"


def test_a_renewal_of_an_expired_prescription_is_a_new_one_with_a_fresh_validity() -> None:
    lst = list_with(prescriptions={"rx1": prescription()})
    much_later = NOW + timedelta(days=500)
    assert is_expired(lst.prescriptions["rx1"].content, local_day(much_later))
    one_change(lst, lambda c: c.add_prescription("rx2", prescription(prior="rx1")), now=much_later)
    renewal = lst.prescriptions["rx2"].content
    assert renewal["dispenseRequest"]["validityPeriod"]["start"] == "2027-07-15"
    assert not is_expired(renewal, local_day(much_later))
    assert lst.prescriptions["rx1"].status == "completed"


def test_an_update_cannot_extend_an_expired_prescription() -> None:
    lst = list_with(prescriptions={"rx1": prescription()})
    old = lst.prescriptions["rx1"].content
    longer = edited(
        old, dispenseRequest={"validityPeriod": {"start": "2026-03-02", "end": "2028-03-02"}}
    )
    change = ListChange(lst, GP, LATER + timedelta(days=500))
    with pytest.raises(InvalidInput, match="cannot be edited"):
        change.update_prescription("rx1", longer, 1)


def test_an_expired_prescription_stored_without_validity_is_not_dispensed() -> None:
    old = Prescription("rx1", 1, {"status": "active", "authoredOn": "2025-01-10"}, NOW, GP)
    with pytest.raises(Conflict, match="expired on 2026-01-10"):
        check_dispense(old, {"value": 1}, NOW, NOW, [])
    fresh = Prescription("rx2", 1, {"status": "active", "authoredOn": "2025-03-02"}, NOW, GP)
    check_dispense(fresh, {"value": 1}, NOW, NOW, [])


@pytest.mark.parametrize(
    ("form", "unit"),
    [
        ("Tablett", "stk"),  # as the national $getMedication gives a tablet prescription
        ("Tablett", "tabletter"),
        ("Kapsel, hard", "stk"),
        ("Kapsel, hard", "kapsel"),
        ("Krem", "g"),
        ("Liniment", "ml"),
        ("Mikstur", "ml"),
        ("Granulat", "g"),
        ("Granulat", "pose"),
        ("Injeksjonsvæske, oppløsning", "stk"),
        ("Injeksjonsvæske, oppløsning", "IE"),
        ("Depotplaster", "stk"),
        ("Inhalasjonspulver", "dose"),
        ("Inhalasjonspulver", "stk"),
        ("Stikkpille", "stk"),
        ("Krem", "pakning"),
        ("Noe PLL ikke kjenner", "flasker"),  # an unsorted form takes any unit
    ],
)
def test_a_quantity_is_counted_in_what_the_form_is_dispensed_in(form: str, unit: str) -> None:
    content = {"dispenseRequest": {"quantity": {"value": 92.0, "unit": unit}}}
    assert issue(content, date(2026, 3, 2), None, form)["dispenseRequest"]["quantity"] == {
        "value": 92.0,
        "unit": unit,
    }


@pytest.mark.parametrize(
    ("form", "unit"),
    [("Krem", "tablett"), ("Krem", "påføring"), ("Tablett", "ml"), ("Mikstur", "stk")],
)
def test_a_quantity_in_what_the_form_is_not_dispensed_in_is_refused(form: str, unit: str) -> None:
    content = {"dispenseRequest": {"quantity": {"value": 2, "unit": unit}}}
    with pytest.raises(InvalidInput, match="does not fit the drug's form") as refused:
        issue(content, date(2026, 3, 2), None, form)
    assert refused.value.expression == "MedicationRequest.dispenseRequest.quantity.unit"
    assert f"ikke i «{unit}»" in (refused.value.norwegian or "")

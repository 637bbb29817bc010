"""The access policy for care units (issue 17; DESIGN §3 rules 4, 5): the care worker reads
and gives only for patients registered with their unit and never changes the list; nurses
give only at a unit the patient is registered with; the registration itself is a nurse's
or doctor's of that very unit (pll.domain.care_units)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pll.auth.access import Access, Basis, PatientFacts, Verb, in_norwegian
from pll.domain import care_units as rules
from pll.domain.care_units import CareUnit, UnitKind
from pll.domain.errors import Conflict, Forbidden, InvalidInput
from pll.domain.model import Author, Role

HOME = "883416031"  # Oslo kommune sykehjem Ullern (the care-worker persona's unit)
OTHER = "964338531"  # Bergen kommune hjemmetjeneste
T = Basis.TREATMENT
NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def worker(role: Role, org: str = HOME) -> Author:
    return Author(name="x", role=role, hpr="9144943", org_id=org)


def facts(*, cared: bool = False, blocked: bool = False) -> PatientFacts:
    return PatientFacts("p1", "17855116340", blocked=blocked, in_callers_care=cared)


CARE = worker(Role.CARE_WORKER)
NURSE = worker(Role.NURSE)
CASES = [
    # who, basis, verb, facts, allowed
    (CARE, T, Verb.READ, facts(cared=True), True),
    (CARE, T, Verb.READ, facts(), False),
    (CARE, None, Verb.READ, facts(cared=True), False),
    (CARE, T, Verb.READ, facts(cared=True, blocked=True), False),
    (CARE, Basis.EMERGENCY, Verb.READ, facts(), False),
    (CARE, T, Verb.FOLLOW, facts(), False),
    (CARE, T, Verb.REPORT, facts(cared=True), True),
    (CARE, T, Verb.ADMINISTER, facts(cared=True), True),
    (CARE, T, Verb.ADMINISTER, facts(), False),
    (CARE, T, Verb.WRITE, facts(cared=True), False),
    (CARE, T, Verb.PROPOSE, facts(cared=True), False),
    (CARE, T, Verb.DISPENSE, facts(cared=True), False),
    (CARE, T, Verb.DECIDE, facts(cared=True), False),
    (CARE, T, Verb.HANDLE, facts(cared=True), False),
    (NURSE, T, Verb.ADMINISTER, facts(cared=True), True),
    (NURSE, T, Verb.ADMINISTER, facts(), False),
    (NURSE, None, Verb.ADMINISTER, facts(cared=True), False),
    (NURSE, T, Verb.ADMINISTER, facts(cared=True, blocked=True), False),
    # a nurse still reads any patient with a basis, as before care units
    (NURSE, T, Verb.READ, facts(), True),
    (NURSE, T, Verb.CARE_UNIT, facts(), True),
    (worker(Role.DOCTOR), T, Verb.ADMINISTER, facts(cared=True), False),
    (worker(Role.PHARMACIST), T, Verb.ADMINISTER, facts(cared=True), False),
    (Author("p", Role.PATIENT, pid="17855116340"), None, Verb.ADMINISTER, facts(), False),
    (Author("p", Role.PATIENT, pid="17855116340"), None, Verb.CARE_UNIT, facts(), False),
    # a change is taken in by a nurse of a unit caring for the patient, not a care worker
    (NURSE, T, Verb.ACKNOWLEDGE, facts(cared=True), True),
    (NURSE, T, Verb.ACKNOWLEDGE, facts(), False),
    (NURSE, None, Verb.ACKNOWLEDGE, facts(cared=True), False),
    (NURSE, T, Verb.ACKNOWLEDGE, facts(cared=True, blocked=True), False),
    (CARE, T, Verb.ACKNOWLEDGE, facts(cared=True), False),
    (worker(Role.DOCTOR), T, Verb.ACKNOWLEDGE, facts(cared=True), False),
    (Author("p", Role.PATIENT, pid="17855116340"), None, Verb.ACKNOWLEDGE, facts(), False),
]


@pytest.mark.parametrize(("actor", "basis", "verb", "given", "allowed"), CASES)
def test_decide(
    actor: Author, basis: Basis | None, verb: Verb, given: PatientFacts, allowed: bool
) -> None:
    decision = Access(actor, basis).decide(verb, given)
    assert decision.allowed == allowed, decision.message
    assert decision.allowed or decision.message


def test_a_care_workers_read_is_never_compiled_into_the_one_statement_read() -> None:
    """The fast read does not know the unit's registrations: the general path decides."""
    assert Access(CARE, T).read_rule() is None
    assert Access(NURSE, T).read_rule() is not None


def test_every_care_refusal_is_in_norwegian() -> None:
    for actor, basis, verb, given in [
        (CARE, T, Verb.READ, facts()),
        (CARE, T, Verb.WRITE, facts(cared=True)),
        (NURSE, T, Verb.ADMINISTER, facts()),
        (worker(Role.DOCTOR), T, Verb.ADMINISTER, facts(cared=True)),
        (NURSE, T, Verb.ACKNOWLEDGE, facts()),
        (CARE, T, Verb.ACKNOWLEDGE, facts(cared=True)),
    ]:
        decision = Access(actor, basis).decide(verb, given)
        assert not decision.allowed
        assert in_norwegian(decision.message), decision.message


UNIT = CareUnit(HOME, UnitKind.NURSING_HOME, "Ullern")


def test_a_nurse_or_doctor_of_the_unit_registers_and_ends() -> None:
    for who in (NURSE, worker(Role.DOCTOR)):
        made = rules.register([], "p1", UNIT, who, NOW, "r1", "here")
        assert made is not None
        assert made.open
        assert made.started_by == who
        ended = rules.end([made], HOME, who, NOW, "here")
        assert not ended.open
        assert ended.ended_by == who


@pytest.mark.parametrize(
    "who",
    [worker(Role.NURSE, OTHER), worker(Role.CARE_WORKER), worker(Role.PHARMACIST)],
)
def test_no_one_else_registers_or_ends(who: Author) -> None:
    with pytest.raises(Forbidden) as refused:
        rules.register([], "p1", UNIT, who, NOW, "r1", "here")
    assert refused.value.norwegian
    made = rules.register([], "p1", UNIT, NURSE, NOW, "r1", "here")
    assert made is not None
    with pytest.raises(Forbidden):
        rules.end([made], HOME, who, NOW, "here")


def test_registering_twice_changes_nothing_and_another_kind_is_a_conflict() -> None:
    made = rules.register([], "p1", UNIT, NURSE, NOW, "r1", "here")
    assert made is not None
    assert rules.register([made], "p1", UNIT, NURSE, NOW, "r2", "here") is None
    home_care = CareUnit(HOME, UnitKind.HOME_CARE)
    with pytest.raises(Conflict):
        rules.register([made], "p1", home_care, NURSE, NOW, "r2", "here")


def test_a_patient_may_be_in_the_care_of_two_units() -> None:
    first = rules.register([], "p1", UNIT, NURSE, NOW, "r1", "here")
    assert first is not None
    other_nurse = worker(Role.NURSE, OTHER)
    second = rules.register(
        [first], "p1", CareUnit(OTHER, UnitKind.HOME_CARE), other_nurse, NOW, "r2", "here"
    )
    assert second is not None
    assert second.unit.orgnr == OTHER


def test_ending_where_there_is_no_registration_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        rules.end([], HOME, NURSE, NOW, "here")


@pytest.mark.parametrize(
    ("orgnr", "kind"), [("883416032", "sykehjem"), ("12345", "sykehjem"), (HOME, "sykehus")]
)
def test_a_bad_unit_is_refused(orgnr: str, kind: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.parse_unit(orgnr, kind, None, "org", "kind")
    assert refused.value.norwegian

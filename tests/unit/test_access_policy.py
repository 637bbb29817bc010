"""The access policy on its own: every role, verb and patient fact (DESIGN §3 rules 4, 5)."""

from __future__ import annotations

import pytest

from pll.auth.access import (
    EMERGENCY_OVERRIDE,
    Access,
    Basis,
    PatientFacts,
    ReadRule,
    Verb,
    parse_basis,
)
from pll.domain.errors import InvalidInput
from pll.domain.model import Author, Role

ME = "17855116340"
PHARMACY = "985563756"


def person(role: Role, org: str | None = "974600951", pid: str | None = None) -> Author:
    hpr = None if role is Role.PATIENT else "9144889"
    return Author(name="x", role=role, hpr=hpr, org_id=org if hpr else None, pid=pid)


def facts(**kw: object) -> PatientFacts:
    return PatientFacts("p1", ME, **kw)  # type: ignore[arg-type]


T = Basis.TREATMENT
CASES = [
    # who, basis, verb, facts, allowed, flag
    (person(Role.DOCTOR), T, Verb.WRITE, facts(), True, None),
    (person(Role.DOCTOR), T, Verb.READ, facts(), True, None),
    (person(Role.DOCTOR), None, Verb.READ, facts(), False, None),
    (person(Role.DOCTOR), None, Verb.WRITE, facts(), False, None),
    (person(Role.DOCTOR), T, Verb.READ, facts(blocked=True), False, None),
    (
        person(Role.DOCTOR),
        Basis.EMERGENCY,
        Verb.READ,
        facts(blocked=True),
        True,
        EMERGENCY_OVERRIDE,
    ),
    (
        person(Role.DOCTOR),
        Basis.EMERGENCY,
        Verb.WRITE,
        facts(blocked=True),
        True,
        EMERGENCY_OVERRIDE,
    ),
    (person(Role.DOCTOR), Basis.EMERGENCY, Verb.READ, facts(), True, None),
    (person(Role.DOCTOR), T, Verb.OWN, facts(), False, None),
    (person(Role.NURSE), Basis.CONSENT, Verb.READ, facts(), True, None),
    (person(Role.NURSE), T, Verb.WRITE, facts(), False, None),
    (person(Role.NURSE), T, Verb.REPORT, facts(), True, None),
    (person(Role.NURSE), None, Verb.REPORT, facts(), False, None),
    (person(Role.NURSE), T, Verb.REPORT, facts(blocked=True), False, None),
    (person(Role.PHARMACIST, PHARMACY), T, Verb.REPORT, facts(), True, None),
    (person(Role.DOCTOR), T, Verb.REPORT, facts(), True, None),
    # handling a discrepancy case: doctors (which cases: the receiving organisation's, a
    # rule of the case, pll.domain.cases)
    (person(Role.DOCTOR), T, Verb.HANDLE, facts(), True, None),
    (person(Role.DOCTOR), None, Verb.HANDLE, facts(), False, None),
    (person(Role.DOCTOR), T, Verb.HANDLE, facts(blocked=True), False, None),
    (person(Role.NURSE), T, Verb.HANDLE, facts(), False, None),
    (person(Role.PHARMACIST, PHARMACY), T, Verb.HANDLE, facts(), False, None),
    (person(Role.PHARMACIST, PHARMACY), T, Verb.READ, facts(), True, None),
    (person(Role.PHARMACIST, PHARMACY), T, Verb.WRITE, facts(), False, None),
    (
        person(Role.PHARMACIST, PHARMACY),
        T,
        Verb.PROPOSE,
        facts(multidose_pharmacy=PHARMACY),
        True,
        None,
    ),
    (
        person(Role.PHARMACIST, "987654325"),
        T,
        Verb.PROPOSE,
        facts(multidose_pharmacy=PHARMACY),
        False,
        None,
    ),
    (person(Role.PHARMACIST, PHARMACY), T, Verb.PROPOSE, facts(), False, None),
    (
        person(Role.DOCTOR, PHARMACY),
        T,
        Verb.PROPOSE,
        facts(multidose_pharmacy=PHARMACY),
        False,
        None,
    ),
    (
        person(Role.PHARMACIST, PHARMACY),
        T,
        Verb.PROPOSE,
        facts(multidose_pharmacy=PHARMACY, blocked=True),
        False,
        None,
    ),
    # packing reports (M25.3): the responsible pharmacy only
    (
        person(Role.PHARMACIST, PHARMACY),
        T,
        Verb.PACK,
        facts(multidose_pharmacy=PHARMACY),
        True,
        None,
    ),
    (
        person(Role.PHARMACIST, "987654325"),
        T,
        Verb.PACK,
        facts(multidose_pharmacy=PHARMACY),
        False,
        None,
    ),
    (person(Role.PHARMACIST, PHARMACY), T, Verb.PACK, facts(), False, None),
    (person(Role.DOCTOR), T, Verb.PACK, facts(multidose_pharmacy="974600951"), False, None),
    (
        person(Role.PHARMACIST, PHARMACY),
        None,
        Verb.PACK,
        facts(multidose_pharmacy=PHARMACY),
        False,
        None,
    ),
    # decisions on proposals and ending the registration: the responsible doctor only
    (person(Role.DOCTOR), T, Verb.DECIDE, facts(multidose_doctor="9144889"), True, None),
    (person(Role.DOCTOR), T, Verb.DECIDE, facts(multidose_doctor="9144897"), False, None),
    (person(Role.DOCTOR), T, Verb.DECIDE, facts(), False, None),
    (
        person(Role.PHARMACIST, PHARMACY),
        T,
        Verb.DECIDE,
        facts(multidose_doctor="9144889"),
        False,
        None,
    ),
    (
        person(Role.DOCTOR),
        T,
        Verb.DECIDE,
        facts(multidose_doctor="9144889", blocked=True),
        False,
        None,
    ),
    # dispensing: any pharmacy, not doctors
    (person(Role.PHARMACIST, "987654325"), T, Verb.DISPENSE, facts(), True, None),
    (person(Role.DOCTOR), T, Verb.DISPENSE, facts(), False, None),
    (person(Role.NURSE), T, Verb.DISPENSE, facts(), False, None),
    (person(Role.PATIENT, pid=ME), None, Verb.PACK, facts(), False, None),
    (person(Role.PATIENT, pid=ME), None, Verb.DECIDE, facts(), False, None),
    (person(Role.PATIENT, pid=ME), None, Verb.DISPENSE, facts(), False, None),
    (person(Role.PATIENT, pid=ME), None, Verb.READ, facts(), True, None),
    (person(Role.PATIENT, pid=ME), None, Verb.OWN, facts(), True, None),
    (person(Role.PATIENT, pid=ME), None, Verb.REPORT, facts(), True, None),
    (person(Role.PATIENT, pid=ME), None, Verb.HANDLE, facts(), False, None),
    (person(Role.PATIENT, pid="09857215521"), None, Verb.REPORT, facts(), False, None),
    (person(Role.PATIENT, pid="09857215521"), None, Verb.REPORT, facts(proxy=True), True, None),
    (person(Role.PATIENT, pid=ME), None, Verb.WRITE, facts(), False, None),
    (person(Role.PATIENT, pid=ME), None, Verb.PROPOSE, facts(), False, None),
    (person(Role.PATIENT, pid="09857215521"), None, Verb.READ, facts(), False, None),
    (person(Role.PATIENT, pid="09857215521"), None, Verb.READ, facts(proxy=True), True, None),
    (person(Role.PATIENT, pid="09857215521"), None, Verb.OWN, facts(proxy=True), True, None),
    (person(Role.PATIENT, pid="09857215521"), None, Verb.WRITE, facts(proxy=True), False, None),
    # a block is on a health worker, never on the patient themself
    (person(Role.PATIENT, pid=ME), None, Verb.READ, facts(blocked=True), True, None),
]


@pytest.mark.parametrize(("actor", "basis", "verb", "given", "allowed", "flag"), CASES)
def test_decide(
    actor: Author,
    basis: Basis | None,
    verb: Verb,
    given: PatientFacts,
    allowed: bool,
    flag: str | None,
) -> None:
    decision = Access(actor, basis).decide(verb, given)
    assert (decision.allowed, decision.flag) == (allowed, flag), decision.message
    assert decision.allowed or decision.message  # a refusal always says why
    assert decision.outcome.value == ("0" if allowed else "4")


@pytest.mark.parametrize(
    ("actor", "basis", "given"),
    [(a, b, f) for a, b, v, f, _, _ in CASES if v is Verb.READ],
)
def test_the_compiled_read_rule_agrees_with_decide(
    actor: Author, basis: Basis | None, given: PatientFacts
) -> None:
    """The one-statement read on PostgreSQL applies ``read_rule``; it must say what
    ``decide`` says, or refuse nothing it would allow."""
    access = Access(actor, basis)
    decision = access.decide(Verb.READ, given)
    rule = access.read_rule()
    if rule is None:
        assert not decision.allowed
        return
    assert _admits(rule, given) == decision.allowed
    if decision.allowed:
        assert (rule.flag_if_blocked if given.blocked else None) == decision.flag


def _admits(rule: ReadRule, given: PatientFacts) -> bool:
    """The SQL condition of pll.store.audited_read, in Python."""
    own = given.identifier == rule.pid or given.proxy
    blocked = given.blocked and rule.hpr is not None
    return (not rule.own_only or own) and (not blocked or rule.allow_blocked)


def test_bases() -> None:
    assert parse_basis(" hpakutt ") is Basis.EMERGENCY
    assert parse_basis("") is None
    assert parse_basis(None) is None
    with pytest.raises(InvalidInput, match="HPUNNTAK"):
        parse_basis("JUST-CURIOUS")
    assert all(b.display for b in Basis)


def test_every_refusal_a_page_can_show_has_a_norwegian_text() -> None:
    """The web UI shows the policy's refusals to people; each has a bokmål version (the
    responsible-doctor refusal names an HPR number and is shown as it is)."""
    from pll.auth.access import PatientFacts, in_norwegian

    facts = [
        PatientFacts("p", "01010112345"),
        PatientFacts("p", "01010112345", blocked=True),
        PatientFacts("p", "01010112345", multidose_pharmacy="999999999"),
    ]
    people = [
        Author("Lege", Role.DOCTOR, hpr="1"),
        Author("Sykepleier", Role.NURSE, hpr="2"),
        Author("Farmasøyt", Role.PHARMACIST, hpr="3", org_id="123456785"),
        Author("Pasient", Role.PATIENT, pid="01010112345"),
        Author("Annen", Role.PATIENT, pid="02020212345"),
    ]
    seen = set()
    for who in people:
        access = Access(who, None if who.hpr is None else Basis.TREATMENT, "c")
        for verb in Verb:
            for fact in facts:
                decision = access.decide(verb, fact)
                if not decision.allowed and verb is not Verb.DECIDE:
                    seen.add(decision.message)
    missing = [m for m in seen if in_norwegian(m) is None]
    assert not missing, missing
    assert len(seen) >= 6


@pytest.mark.parametrize("verb", list(Verb))
@pytest.mark.parametrize("basis", [None, Basis.TREATMENT, Basis.EMERGENCY])
def test_an_operator_never_reaches_a_patients_data(verb: Verb, basis: Basis | None) -> None:
    operator = Access(Author("Drift", Role.OPERATOR, org_id="999000010"), basis)
    decision = operator.decide(verb, facts())
    assert not decision.allowed
    assert operator.read_rule() is None

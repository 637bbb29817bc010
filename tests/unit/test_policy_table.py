"""The access-policy table in docs/access.md is the one the code keeps (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pll.auth.access import Access, Basis, PatientFacts, in_norwegian
from pll.auth.policy import POLICY, ROLES, Grant, Verb, grant
from pll.domain.model import Author, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "access.md"


def documented() -> tuple[list[str], dict[str, list[str]]]:
    """The table between the policy-table markers: its header and its rows by verb."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- policy-table -->")
    end = text.index("<!-- /policy-table -->")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text[start:end].splitlines()
        if line.startswith("|")
    ]
    header, _rule, *body = rows
    return header, {row[0]: row[1:] for row in body}


def test_the_documented_table_is_the_policy() -> None:
    header, rows = documented()
    assert header == ["verb", *(r.value for r in ROLES)]
    assert set(rows) == {v.value for v in Verb}, "every verb documented, no other"
    for verb, cells in rows.items():
        assert len(cells) == len(ROLES), verb
        for role, cell in zip(ROLES, cells, strict=True):
            assert grant(role, Verb(verb)) is Grant(cell), f"{verb} × {role.value}: doc {cell}"


def test_every_verb_and_role_has_a_cell() -> None:
    assert set(POLICY) == set(Verb)
    for row in POLICY.values():
        assert set(row) == set(ROLES)


def person(role: Role) -> Author:
    if role is Role.PATIENT:
        return Author("p", role, pid="17855116340")
    return Author("x", role, hpr="9144951", org_id="991000100")


def facts() -> PatientFacts:
    return PatientFacts(
        "p1",
        "17855116340",
        multidose_pharmacy="991000100",
        multidose_doctor="9144951",
        in_callers_care=True,
    )


@pytest.mark.parametrize("verb", list(Verb))
@pytest.mark.parametrize("role", ROLES)
def test_access_decides_as_the_table_says(role: Role, verb: Verb) -> None:
    """With every condition met (own list, the responsible pharmacy and doctor, the unit's
    patient), a cell admits exactly when it is not ``no``."""
    decision = Access(person(role), Basis.TREATMENT).decide(verb, facts())
    assert decision.allowed is (grant(role, verb) is not Grant.NO), decision.message


@pytest.mark.parametrize("role", [Role.DENTIST, Role.MIDWIFE, Role.HEALTH_WORKER, Role.NURSE])
def test_other_health_personnel_read_with_a_basis_and_never_write(role: Role) -> None:
    assert Access(person(role), Basis.TREATMENT).decide(Verb.READ, facts()).allowed
    assert not Access(person(role), None).decide(Verb.READ, facts()).allowed
    assert Access(person(role), Basis.TREATMENT).decide(Verb.REPORT, facts()).allowed
    write = Access(person(role), Basis.TREATMENT).decide(Verb.WRITE, facts())
    assert not write.allowed
    assert "Only doctors" in write.message


def test_a_blocked_dentist_prescribes_only_in_an_emergency() -> None:
    blocked = PatientFacts("p1", "17855116340", blocked=True)
    dentist = person(Role.DENTIST)
    assert not Access(dentist, Basis.TREATMENT).decide(Verb.PRESCRIBE, blocked).allowed
    assert Access(dentist, Basis.EMERGENCY).decide(Verb.PRESCRIBE, blocked).allowed


def test_the_refusals_have_norwegian() -> None:
    for role in (Role.NURSE, Role.HEALTH_WORKER, Role.PHARMACIST):
        message = Access(person(role), Basis.TREATMENT).refusal(Verb.PRESCRIBE)
        assert message is not None
        assert in_norwegian(message), message
    message = Access(person(Role.DENTIST), Basis.TREATMENT).refusal(Verb.WRITE)
    assert message is not None
    assert "own entries" in message
    assert in_norwegian(message)

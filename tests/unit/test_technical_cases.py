"""Technical cases without I/O (pll.domain.technical_cases): the register's checks, routing
to the operator or PLL's operations, who may do what, the lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pll.domain.cases import Action, Status
from pll.domain.errors import Conflict, Forbidden, InvalidInput
from pll.domain.model import Author, Role
from pll.domain.technical_cases import (
    DEFAULT_OPERATIONS,
    act,
    allowed,
    client_system,
    report,
    route,
    valid_orgnr,
)

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
DUE = NOW + timedelta(days=1)
VENDOR = client_system(
    "dips", "DIPS Arena", "DIPS AS", "drift@dips.test", "+47 12345678", "999000010"
)
DOCTOR = Author("Kari", Role.DOCTOR, hpr="9144889", org_id="974600951")
NURSE = Author("Siri", Role.NURSE, hpr="9144900", org_id="964338531")
OPERATOR = Author("DIPS drift", Role.OPERATOR, org_id="999000010")
OTHER_OPERATOR = Author("Annen drift", Role.OPERATOR, org_id="999000029")


def test_the_register_checks_what_it_keeps() -> None:
    assert valid_orgnr("974600951")
    assert not valid_orgnr("974600952")
    assert not valid_orgnr("97460095")
    for bad, where in [
        ({"client_id": "has space"}, "client_id"),
        ({"name": " "}, "name"),
        ({"email": "not-mail"}, "email"),
        ({"phone": "ring meg"}, "phone"),
        ({"operator_orgnr": "123456789"}, "orgnr"),
        ({"name": "Demo\x00"}, "name"),
        ({"vendor": "Journal\x1bAS"}, "vendor"),
        ({"email": "drift\x00@dips.test"}, "email"),
    ]:
        given = {"client_id": "c", "name": "N", "vendor": "V"} | bad
        with pytest.raises(InvalidInput) as refused:
            client_system(**given)  # type: ignore[arg-type]
        assert refused.value.expression == where


def test_no_text_of_a_technical_case_holds_a_control_character() -> None:
    """Whichever way a case comes (the API, a web form, the command line), a control
    character other than tab, line feed, carriage return is refused, before any lookup."""
    for text, client, where in [
        ("Feil\x00", "dips", "Task.description"),
        ("Fe\x0cil", "dips", "Task.description"),
        ("Feil", "dips\x00", "Task.focus"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            report("t1", VENDOR, client, DOCTOR, text, DEFAULT_OPERATIONS, NOW, DUE)
        assert refused.value.expression == where
    case, _ = report("t1", VENDOR, "dips", DOCTOR, "A\tB\r\nC", DEFAULT_OPERATIONS, NOW, DUE)
    assert case.description == "A\tB\r\nC"
    with pytest.raises(InvalidInput, match="control character U\\+0000"):
        act(case, Action.COMMENT, DOCTOR, "Ny\x00", NOW)


def test_a_case_goes_to_the_operator_else_to_pll_operations() -> None:
    assert route(VENDOR, DEFAULT_OPERATIONS).org_id == "999000010"
    assert route(None, DEFAULT_OPERATIONS).org_id == DEFAULT_OPERATIONS.orgnr
    no_orgnr = client_system("x", "X", "X AS")
    assert route(no_orgnr, DEFAULT_OPERATIONS).org_name == DEFAULT_OPERATIONS.name


def test_the_lifecycle_and_who_may_do_what() -> None:
    case, step = report(
        "t1", VENDOR, "dips", DOCTOR, " Sending feilet ", DEFAULT_OPERATIONS, NOW, DUE
    )
    assert (case.status, case.description, case.due_at, step.action) == (
        Status.OPEN,
        "Sending feilet",
        DUE,
        Action.REPORT,
    )
    assert allowed(case, DOCTOR) == {Action.COMMENT, Action.WITHDRAW}
    assert allowed(case, OPERATOR) == {Action.TAKE, Action.COMMENT, Action.RESOLVE, Action.REJECT}
    assert allowed(case, NURSE) == frozenset()
    assert allowed(case, OTHER_OPERATOR) == frozenset()
    with pytest.raises(Forbidden):
        act(case, Action.RESOLVE, DOCTOR, None, NOW)
    taken, _ = act(case, Action.TAKE, OPERATOR, None, NOW)
    assert taken.handler == OPERATOR
    assert Action.TAKE not in allowed(taken, OPERATOR)
    with pytest.raises(Conflict):
        act(taken, Action.TAKE, OPERATOR, None, NOW)
    with pytest.raises(InvalidInput):
        act(taken, Action.REJECT, OPERATOR, " ", NOW)
    done, last = act(taken, Action.RESOLVE, OPERATOR, "Rettet", NOW)
    assert (done.status, done.version, last.comment) == (Status.RESOLVED, 3, "Rettet")
    assert allowed(done, OPERATOR) == frozenset()
    with pytest.raises(Conflict):
        act(done, Action.COMMENT, DOCTOR, "Fortsatt feil", NOW)


def test_a_case_pll_opened_is_handled_by_the_operator_only() -> None:
    pll = Author("PLL (automatisk)", Role.SYSTEM)
    case, _ = report(
        "t2", None, "ukjent", pll, "Feiler", DEFAULT_OPERATIONS, NOW, DUE, subscription_id="s1"
    )
    queue = Author("PLL drift", Role.OPERATOR, org_id=DEFAULT_OPERATIONS.orgnr)
    assert Action.RESOLVE in allowed(case, queue)
    assert allowed(case, DOCTOR) == frozenset()
    assert Action.WITHDRAW not in allowed(case, OPERATOR)

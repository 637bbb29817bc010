"""Technical cases (*feilhåndtering*, issue 18) and the register of client systems, without
any I/O.

A technical case says that something went wrong in a client system's part of the chain: a
send that failed, a list that looks wrong after a journal system wrote to it, a subscription
that keeps failing. It is about a **client system** (the ``client_id`` its tokens carry),
optionally about one patient, and goes to that system's **operator** (:func:`route`): the
organisation that runs it, from the register of client systems (``pll clients add``). A
client system that is not registered, or whose operator has no organisation number, sends
its cases to PLL's own operations (the *national queue*).

Status, comments and history are those of every case (:mod:`pll.domain.cases`): ``open`` →
``in-progress`` → ``resolved`` / ``rejected``, or ``withdrawn`` by the reporter; a closed case
stays closed. Who may do what (:func:`refusal`):

| action | who |
| --- | --- |
| take (or take over), resolve, reject | an operator acting for the receiving organisation |
| comment | the reporter, and operators of the receiving organisation |
| withdraw | the reporter |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pll.domain.cases import MAX_TEXT, Action, Recipient, Status, Step, advance, same_person
from pll.domain.deadlines import Deadlines
from pll.domain.errors import Forbidden, InvalidInput
from pll.domain.model import Author, Role
from pll.domain.text import plain

#: What a technical case is called where it is shown.
TITLE = "Teknisk feil i kjeden"
#: A client id as HelseID issues them: letters, digits and ``-_.:``, at most 100.
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}")
_ORGNR = re.compile(r"[0-9]{9}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 ]{5,20}")


@dataclass(frozen=True)
class ClientSystem:
    """A registered client system: what its tokens' ``client_id`` names, and who runs it."""

    client_id: str
    name: str
    vendor: str
    email: str | None = None
    phone: str | None = None
    #: the operator's organisation number; ``None``: its cases go to the national queue
    operator_orgnr: str | None = None


@dataclass(frozen=True)
class Operations:
    """PLL's own operations: the national queue for cases no registered operator takes."""

    orgnr: str
    name: str


def client_system(
    client_id: str,
    name: str,
    vendor: str,
    email: str | None = None,
    phone: str | None = None,
    operator_orgnr: str | None = None,
) -> ClientSystem:
    """A client system to register, checked; :class:`InvalidInput` says what is wrong."""
    client_id = client_id.strip()
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidInput(
            f"{client_id!r} is not a client id (letters, digits and . _ : -, at most 100).",
            "client_id",
        )
    for what, value in (("name", name), ("vendor", vendor)):
        plain(value, what)
        if not value.strip() or len(value) > 200:
            raise InvalidInput(f"Give the client system's {what} (at most 200 characters).", what)
    if email is not None and not _EMAIL.fullmatch(plain(email.strip(), "email")):
        raise InvalidInput(f"{email!r} is not an e-mail address.", "email")
    if phone is not None and not _PHONE.fullmatch(phone.strip()):
        raise InvalidInput(f"{phone!r} is not a telephone number.", "phone")
    if operator_orgnr is not None and not valid_orgnr(operator_orgnr):
        raise InvalidInput(
            f"{operator_orgnr!r} is not an organisation number (nine digits, mod 11).", "orgnr"
        )
    return ClientSystem(
        client_id,
        name.strip(),
        vendor.strip(),
        email.strip() if email else None,
        phone.strip() if phone else None,
        operator_orgnr,
    )


def valid_orgnr(value: str) -> bool:
    """Nine digits whose last is the mod-11 check digit (weights 3 2 7 6 5 4 3 2)."""
    if not _ORGNR.fullmatch(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:8], (3, 2, 7, 6, 5, 4, 3, 2), strict=True))
    check = 11 - total % 11
    return check != 10 and (check % 11) == int(value[8])


@dataclass(frozen=True)
class TechnicalCase:
    """A technical case as it stands now (its history is a list of :class:`Step`)."""

    id: str
    client_id: str
    status: Status
    version: int
    reporter: Author
    recipient: Recipient
    description: str
    reported_at: datetime
    updated_at: datetime
    #: when it is overdue if still open (from the technical deadline when reported)
    due_at: datetime
    #: the patient it is about, if any (then the patient's access rules decide who sees it)
    patient_id: str | None = None
    handler: Author | None = None
    #: the subscription whose failures opened it, when PLL opened it
    subscription_id: str | None = None


def route(client: ClientSystem | None, operations: Operations) -> Recipient:
    """Where a case about a client system goes: its operator's organisation, else PLL's
    operations (an unregistered client, or one whose operator has no organisation number)."""
    if client is not None and client.operator_orgnr is not None:
        person = Author(client.vendor, Role.OPERATOR, org_id=client.operator_orgnr)
        return Recipient(person, client.operator_orgnr, client.vendor)
    person = Author(operations.name, Role.OPERATOR, org_id=operations.orgnr)
    return Recipient(person, operations.orgnr, operations.name)


def described(description: str | None) -> str:
    """The description of a new case, checked: given, not too long, no control character."""
    text = plain((description or "").strip(), "Task.description")
    if not text:
        raise InvalidInput("Say what went wrong: Task.description is required.", "Task.description")
    if len(text) > MAX_TEXT:
        raise InvalidInput(
            f"The description is {len(text)} characters; at most {MAX_TEXT}.",
            "Task.description",
        )
    return text


def reported_client(client_id: str) -> str:
    """The client id a case is about, checked before anything looks it up: the register's
    form (no control character, nothing a text column of either database refuses)."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidInput(f"{client_id[:120]!r} is not a client id.", "Task.focus")
    return client_id


def report(
    case_id: str,
    client: ClientSystem | None,
    client_id: str,
    reporter: Author,
    description: str | None,
    operations: Operations,
    now: datetime,
    due: datetime,
    patient_id: str | None = None,
    subscription_id: str | None = None,
) -> tuple[TechnicalCase, Step]:
    """A new technical case about ``client_id`` (registered as ``client``, or not), routed
    to its operator."""
    text = described(description)
    reported_client(client_id)
    case = TechnicalCase(
        id=case_id,
        client_id=client_id,
        status=Status.OPEN,
        version=1,
        reporter=reporter,
        recipient=route(client, operations),
        description=text,
        reported_at=now,
        updated_at=now,
        due_at=due,
        patient_id=patient_id,
        subscription_id=subscription_id,
    )
    return case, Step(1, now, reporter, Action.REPORT, Status.OPEN)


NOT_OPERATOR = (
    "Only operators acting for the organisation the case was sent to take it, resolve it or "
    "reject it."
)
NOT_PARTY = (
    "Only the reporter and operators of the organisation the case was sent to comment on it."
)
NOT_REPORTER = "Only the person who reported the case withdraws it."


def at_operator(case: TechnicalCase, actor: Author) -> bool:
    """Whether ``actor`` is an operator acting for the organisation the case went to."""
    return actor.role is Role.OPERATOR and actor.org_id == case.recipient.org_id


def _reporter(case: TechnicalCase, actor: Author) -> bool:
    if actor.role is Role.OPERATOR or case.reporter.role in (Role.OPERATOR, Role.SYSTEM):
        return actor.role is case.reporter.role and actor.org_id == case.reporter.org_id
    return same_person(actor, case.reporter)


def refusal(case: TechnicalCase, action: Action, actor: Author) -> str | None:
    """Why ``actor`` may not do ``action`` on this case, or ``None`` when they may."""
    if action in (Action.TAKE, Action.RESOLVE, Action.REJECT):
        return None if at_operator(case, actor) else NOT_OPERATOR
    if action is Action.COMMENT:
        return None if _reporter(case, actor) or at_operator(case, actor) else NOT_PARTY
    if action is Action.WITHDRAW:
        return None if _reporter(case, actor) else NOT_REPORTER
    raise ValueError(f"{action} is not an action on a reported case")


def allowed(case: TechnicalCase, actor: Author) -> frozenset[Action]:
    """What ``actor`` may do with this case now."""
    if case.status.closed:
        return frozenset()
    out = {a for a in Action if a is not Action.REPORT and refusal(case, a, actor) is None}
    if case.handler is not None and same_person(case.handler, actor):
        out.discard(Action.TAKE)
    return frozenset(out)


def act(
    case: TechnicalCase,
    action: Action,
    actor: Author,
    comment: str | None,
    now: datetime,
    expected: int | None = None,
) -> tuple[TechnicalCase, Step]:
    """The case after ``actor`` does ``action``, and its history step (the lifecycle of
    :func:`pll.domain.cases.act`)."""
    why = refusal(case, action, actor)
    if why is not None:
        raise Forbidden(why)
    text = plain((comment or "").strip(), "comment") or None
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidInput(f"The comment is {len(text)} characters; at most {MAX_TEXT}.", "comment")
    return advance(case, action, actor, text, now, expected, "error")


#: PLL's own operations when nothing else is configured (``PLL_OPERATIONS_ORGNR``); an
#: invented organisation number, as the demo's are.
DEFAULT_OPERATIONS = Operations("999000002", "PLL drift (nasjonal kø)")


@dataclass(frozen=True)
class CaseRules:
    """The configured rules of case handling: each kind's deadline
    (``PLL_CASE_DEADLINES``), how long a subscription fails before PLL opens a technical
    case (``PLL_SUBSCRIPTION_CASE_AFTER``), and PLL's own operations (the national queue)."""

    deadlines: Deadlines = field(default_factory=Deadlines)
    subscription_case_after: timedelta = timedelta(hours=1)
    operations: Operations = DEFAULT_OPERATIONS

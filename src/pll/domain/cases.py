"""Discrepancy cases (*avvik*, case handling), without any I/O (DESIGN §1, §3 rule 4).

Anyone with access to a patient's list may report that something on it is wrong: the list
as a whole, or one entry. The case goes to the responsible prescriber's organisation and is
tracked there until it is closed; nothing on the list changes by it (only doctors change the
list, through the ordinary changes).

**Routing** (:func:`route`). A case on an entry goes to the entry's last author (who last
changed it, and so answers for it); a case on the list goes to the baton holder (who made
the last accepted change). The case records the organisation and the person. When the entry's
last author is PLL itself or names no organisation, the baton holder is asked instead; when
no one with an organisation is known, the person alone.

**Status.** ``open`` → ``in-progress`` (taken) → ``resolved`` or ``rejected``; the reporter
may withdraw a case that is not closed (``withdrawn``). A closed case stays closed: if the
discrepancy is still there, report it again.

**Who may do what** (:func:`refusal`):

| action | who |
| --- | --- |
| take (or take over), resolve, reject | a doctor of the receiving organisation |
| comment | the reporter, and health personnel of the receiving organisation |
| withdraw | the reporter |

Rejecting needs a comment (the reporter must learn why); commenting needs one too. Every
report, status change and comment is one step of the case's history, which is only ever
added to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar

from pll.domain.errors import Conflict, Forbidden, InvalidInput, VersionConflict
from pll.domain.model import Author, MedicationList, Role
from pll.domain.prescribers import PRESCRIBERS

#: The longest description or comment PLL keeps.
MAX_TEXT = 4000
#: What every case is called where it is shown.
TITLE = "Avvik i legemiddellisten"


class Kind(StrEnum):
    """What a case is about: the list (or an entry) is wrong or unclear, or something went
    wrong in giving the medicines (a missed or wrong administration, issue 17)."""

    DISCREPANCY = "discrepancy"
    ADMINISTRATION = "administration"

    @property
    def shown(self) -> str:
        return TITLE if self is Kind.DISCREPANCY else ADMINISTRATION_TITLE


#: What a case about giving the medicines is called.
ADMINISTRATION_TITLE = "Avvik ved utdeling av legemidler"


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in-progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"

    @property
    def closed(self) -> bool:
        return self not in (Status.OPEN, Status.IN_PROGRESS)

    @property
    def norwegian(self) -> str:
        return _STATUS_NB[self]


_STATUS_NB = {
    Status.OPEN: "Åpen",
    Status.IN_PROGRESS: "Under behandling",
    Status.RESOLVED: "Løst",
    Status.REJECTED: "Avvist",
    Status.WITHDRAWN: "Trukket tilbake",
}
#: The statuses a case is shown on the list in.
OPEN = frozenset({Status.OPEN, Status.IN_PROGRESS})


class Action(StrEnum):
    REPORT = "report"
    TAKE = "take"
    COMMENT = "comment"
    RESOLVE = "resolve"
    REJECT = "reject"
    WITHDRAW = "withdraw"

    @property
    def event(self) -> str:
        """The kind of the outgoing event this action writes (``case-...``)."""
        return f"{EVENT_PREFIX}{_PAST[self]}"


#: Every event about a case has a kind that starts so; the list itself did not change.
EVENT_PREFIX = "case-"
_PAST = {
    Action.REPORT: "reported",
    Action.TAKE: "taken",
    Action.COMMENT: "commented",
    Action.RESOLVE: "resolved",
    Action.REJECT: "rejected",
    Action.WITHDRAW: "withdrawn",
}
#: What each action leaves the case in (``None``: as it was).
_TO: dict[Action, Status | None] = {
    Action.TAKE: Status.IN_PROGRESS,
    Action.COMMENT: None,
    Action.RESOLVE: Status.RESOLVED,
    Action.REJECT: Status.REJECTED,
    Action.WITHDRAW: Status.WITHDRAWN,
}
#: Actions that cannot go without a comment.
_NEEDS_COMMENT = frozenset({Action.COMMENT, Action.REJECT})


@dataclass(frozen=True)
class Recipient:
    """Where a case went: the responsible prescriber's organisation, and the person."""

    person: Author
    org_id: str | None
    org_name: str | None

    def label(self) -> str:
        org = self.org_name or (f"orgnr {self.org_id}" if self.org_id else None)
        return f"{org} ({self.person.name})" if org else self.person.label()


@dataclass(frozen=True)
class Case:
    """A reported discrepancy as it stands now (its history is a list of :class:`Step`)."""

    id: str
    patient_id: str
    list_id: str
    #: the entry reported, or ``None`` for the list as a whole
    entry_id: str | None
    #: the version of the entry (or of the list) the reporter saw
    focus_version: int
    status: Status
    version: int
    reporter: Author
    recipient: Recipient
    description: str
    reported_at: datetime
    updated_at: datetime
    #: who took it (and so handles it), once someone has
    handler: Author | None = None
    kind: Kind = Kind.DISCREPANCY
    #: a case about an administration: the record reported (``focus_version`` is its
    #: version), or the key of the planned dose reported missed
    administration_id: str | None = None
    planned_dose: str | None = None
    #: when it is overdue if still open (:mod:`pll.domain.deadlines`); ``None`` for a case
    #: reported before deadlines were kept
    due_at: datetime | None = None

    @property
    def deadline_kind(self) -> str:
        """The name of its kind in the configured deadlines (``PLL_CASE_DEADLINES``)."""
        return "clinical" if self.kind is Kind.DISCREPANCY else self.kind.value


@dataclass(frozen=True)
class Step:
    """One line of a case's history: a report, a status change or a comment."""

    version: int
    at: datetime
    by: Author
    action: Action
    status: Status
    comment: str | None = None


#: Health personnel a case can go to or be commented on by (a care worker acts for a unit).
_HEALTH_WORKERS = frozenset(
    {
        Role.DOCTOR,
        Role.DENTIST,
        Role.MIDWIFE,
        Role.NURSE,
        Role.HEALTH_WORKER,
        Role.PHARMACIST,
    }
)


def _health_worker(author: Author) -> bool:
    return author.role in _HEALTH_WORKERS and bool(author.hpr)


def route(lst: MedicationList, entry_id: str | None) -> Recipient:
    """The responsible prescriber a case goes to: the entry's last author (a case on an
    entry), else the baton holder; the first of them with an organisation, else the first
    health worker of them."""
    candidates = [lst.baton]
    if entry_id is not None:
        candidates.insert(0, lst.entries[entry_id].changed_by)
    workers = [a for a in candidates if _health_worker(a)]
    chosen = next((a for a in workers if a.org_id), workers[0] if workers else None)
    if chosen is None:
        raise Conflict(
            "No responsible prescriber is known for this list (no health worker has changed "
            "it), so a case has no one to go to.",
            "Task.focus",
        )
    return Recipient(chosen, chosen.org_id, chosen.org_name)


def described(description: str | None) -> str:
    """The description a report must have."""
    text = _text(description, "Task.description", "The description")
    if text is None:
        raise InvalidInput("Say what is wrong: Task.description is required.", "Task.description")
    return text


def _text(value: str | None, where: str, what: str) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{what} is {len(text)} characters; at most {MAX_TEXT}.", where)
    return text


def report(
    case_id: str,
    lst: MedicationList,
    entry_id: str | None,
    seen: int | None,
    reporter: Author,
    description: str | None,
    now: datetime,
) -> tuple[Case, Step]:
    """A new case on the list, or on one of its entries (on the version the reporter saw:
    ``seen``, else the current one), routed to the responsible prescriber."""
    text = described(description)
    if entry_id is None:
        current = lst.version
    else:
        found = lst.entries.get(entry_id)
        if found is None or not found.visible_at(now):
            raise Conflict(
                f"MedicationStatement/{entry_id} is not on the list; report the discrepancy "
                f"on the list as a whole (List/{lst.id}).",
                "Task.focus",
            )
        current = found.version
    if seen is not None and not 1 <= seen <= current:
        raise InvalidInput(
            f"Version {seen} does not exist; the current version is {current}.", "Task.focus"
        )
    recipient = route(lst, entry_id)
    case = Case(
        id=case_id,
        patient_id=lst.patient_id,
        list_id=lst.id,
        entry_id=entry_id,
        focus_version=seen or current,
        status=Status.OPEN,
        version=1,
        reporter=reporter,
        recipient=recipient,
        description=text,
        reported_at=now,
        updated_at=now,
    )
    return case, Step(1, now, reporter, Action.REPORT, Status.OPEN)


# -- who may do what -----------------------------------------------------------------------

NOT_RECEIVER = (
    "Only prescribers (doctors, and dentists and midwives) at the organisation the case was "
    "sent to take it, resolve it or reject it."
)
NOT_PARTY = (
    "Only the person who reported the case and health personnel at the organisation it was "
    "sent to comment on it."
)
NOT_REPORTER = "Only the person who reported the case withdraws it."
#: The refusals in Norwegian (bokmål), for people reading a page rather than an API answer.
_NORWEGIAN = {
    NOT_RECEIVER: (
        "Bare forskrivere (leger, tannleger og jordmødre) ved virksomheten avviket er sendt "
        "til tar, løser eller avviser det."
    ),
    NOT_PARTY: (
        "Bare den som meldte avviket og helsepersonell ved virksomheten det er sendt til, "
        "kommenterer det."
    ),
    NOT_REPORTER: "Bare den som meldte avviket, kan trekke det tilbake.",
}


def in_norwegian(message: str) -> str | None:
    """A refusal of these rules in Norwegian, if ``message`` is one."""
    return _NORWEGIAN.get(message)


def same_person(a: Author, b: Author) -> bool:
    """The same health worker (HPR number), the same person (fødselsnummer), or — for a
    system acting with neither, such as a client system's operator — the same author."""
    if a.hpr or b.hpr:
        return a.hpr == b.hpr
    if a.pid or b.pid:
        return a.pid == b.pid
    return a == b


def at_receiver(case: Case, actor: Author) -> bool:
    """Whether ``actor`` works at the organisation the case went to (or is the person it
    went to, when no organisation was known)."""
    if not _health_worker(actor):
        return False
    if case.recipient.org_id is not None:
        return actor.org_id == case.recipient.org_id
    return same_person(actor, case.recipient.person)


def refusal(case: Case, action: Action, actor: Author) -> str | None:
    """Why ``actor`` may not do ``action`` on this case, or ``None`` when they may."""
    if action in (Action.TAKE, Action.RESOLVE, Action.REJECT):
        # the prescribers at the receiving organisation: a case about a dentist's entry
        # goes to the dental clinic, whose dentist holds the baton for it
        ok = actor.role in PRESCRIBERS and at_receiver(case, actor)
        return None if ok else NOT_RECEIVER
    if action is Action.COMMENT:
        ok = same_person(actor, case.reporter) or at_receiver(case, actor)
        return None if ok else NOT_PARTY
    if action is Action.WITHDRAW:
        return None if same_person(actor, case.reporter) else NOT_REPORTER
    raise ValueError(f"{action} is not an action on a reported case")


def allowed(case: Case, actor: Author) -> frozenset[Action]:
    """What ``actor`` may do with this case now (what a page offers them)."""
    if case.status.closed:
        return frozenset()
    out = {a for a in _TO if refusal(case, a, actor) is None}
    if case.handler is not None and same_person(case.handler, actor):
        out.discard(Action.TAKE)
    return frozenset(out)


def act(
    case: Case,
    action: Action,
    actor: Author,
    comment: str | None,
    now: datetime,
    expected: int | None = None,
) -> tuple[Case, Step]:
    """The case after ``actor`` does ``action`` (with a comment), and its history step.
    ``expected`` is the case version the actor saw, if they name one."""
    why = refusal(case, action, actor)
    if why is not None:
        raise Forbidden(why)
    text = _text(comment, "comment", "The comment")
    return advance(case, action, actor, text, now, expected, "discrepancy")


class Lifecycle(Protocol):
    """What :func:`advance` needs of a case: a discrepancy case, or a technical case
    (:mod:`pll.domain.technical_cases`), which share the lifecycle."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def status(self) -> Status: ...
    @property
    def handler(self) -> Author | None: ...


_C = TypeVar("_C", bound=Lifecycle)


def advance(
    case: _C,
    action: Action,
    actor: Author,
    text: str | None,
    now: datetime,
    expected: int | None,
    what: str,
) -> tuple[_C, Step]:
    """The lifecycle step every kind of case shares, after the kind's own refusal and text
    checks: a comment where one is needed, the version the actor saw, a closed case stays
    closed, who handles it, and the new status (``what`` names the kind's problem in the
    message about a closed case)."""
    if text is None and action in _NEEDS_COMMENT:
        need = "why the case is rejected" if action is Action.REJECT else "the comment"
        raise InvalidInput(f"Give {need} in the parameter 'comment'.", "comment")
    if expected is not None and expected != case.version:
        raise VersionConflict(
            f"Task/{case.id} is at version {case.version}; you hold version {expected}. Read "
            "it again and act on the current version.",
            "If-Match",
            {"currentVersion": str(case.version), "yourVersion": str(expected)},
        )
    if case.status.closed:
        raise Conflict(
            f"The case is closed ({case.status.value}); if the {what} is still there, report "
            "it again.",
            "Task.status",
        )
    handler = case.handler
    if action is Action.TAKE:
        if handler is not None and same_person(handler, actor):
            raise Conflict("You have already taken this case.", "Task.status")
        handler = actor
    elif action in (Action.RESOLVE, Action.REJECT) and handler is None:
        handler = actor
    status = _TO[action] or case.status
    version = case.version + 1
    after = replace(case, status=status, version=version, updated_at=now, handler=handler)
    return after, Step(version, now, actor, action, status, text)

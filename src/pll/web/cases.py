"""Discrepancy cases (*avvik*) on the doctor's and nurse's list page.

A thin adapter, like the FHIR handlers: reporting builds the ``Task`` a journal system would
send and hands it to :class:`~pll.services.cases.CaseService`; taking, commenting, resolving,
rejecting and withdrawing are the API's operations with the form's comment as their
``Parameters``. What the page shows is read from the stored Tasks, and the buttons offered
are what the case's rules allow the caller (:func:`pll.domain.cases.allowed`); the service
decides again on every post.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response
from starlette.routing import Route

from pll.domain import cases as rules
from pll.domain.cases import Action
from pll.domain.errors import DomainError, VersionConflict
from pll.fhir import cases as fhir_cases
from pll.fhir.validate import validate
from pll.services.cases import CaseService, Shown
from pll.web.edge import Web, doctors, require, whole

#: The buttons of a case's form (``handling``), in Norwegian, and what each does.
HANDLINGS = {
    "ta": Action.TAKE,
    "kommenter": Action.COMMENT,
    "los": Action.RESOLVE,
    "avvis": Action.REJECT,
    "trekk": Action.WITHDRAW,
}
_DONE = {
    Action.TAKE: "Du har tatt avviket.",
    Action.COMMENT: "Kommentaren er lagt til avviket.",
    Action.RESOLVE: "Avviket er løst og lukket.",
    Action.REJECT: "Avviket er avvist og lukket.",
    Action.WITHDRAW: "Avviket er trukket tilbake.",
}
#: What a note on a case came with, as the page names it.
NOTE_NAMES = {
    Action.TAKE: "tok saken",
    Action.COMMENT: "kommentar",
    Action.RESOLVE: "løst",
    Action.REJECT: "avvist",
    Action.WITHDRAW: "trukket tilbake",
}


@dataclass(frozen=True)
class Note:
    who: str
    when: str
    what: str
    text: str


@dataclass(frozen=True)
class CaseView:
    """An open case as the list page shows it."""

    id: str
    version: int
    about: str
    #: the entry reported, or ``None`` for the list as a whole
    entry_id: str | None
    description: str
    status: str
    reporter: str
    reported: str
    owner: str
    recipient: str
    handler: str | None
    notes: list[Note]
    #: the caller's buttons: take, comment, resolve, reject, withdraw
    actions: frozenset[str]
    #: when it is due (ISO instant; empty for a case from before deadlines were kept), and
    #: whether it is still open past that (issue 18)
    due: str = ""
    overdue: bool = False


def _display(ref: Any) -> str:
    if not isinstance(ref, dict):
        return ""
    return str(ref.get("display") or (ref.get("identifier") or {}).get("value") or "")


def _extension(task: dict[str, Any], url: str) -> str | None:
    found = next((e for e in task.get("extension") or [] if e.get("url") == url), None)
    if found is None:
        return None
    return _display(found.get("valueReference")) or None


def case_view(shown: Shown, drugs: dict[str, str]) -> CaseView:
    """``drugs``: the list's entries by id, named as the list names them."""
    task = shown.task
    focus = str((task.get("focus") or {}).get("reference", "")).split("/_history/")[0]
    rtype, _, rid = focus.partition("/")
    if rtype == "List":
        about = "Hele listen"
    else:
        about = drugs.get(rid) or _display(task.get("focus")) or "Et legemiddel"
    owner = _display(task.get("owner"))
    # the person as the owner's reader needs them: their organisation is named already
    recipient = (_extension(task, fhir_cases.EXT_RECIPIENT) or "").removesuffix(f", {owner}")
    return CaseView(
        id=task["id"],
        version=int(task["meta"]["versionId"]),
        about=about,
        entry_id=rid if rtype == "MedicationStatement" else None,
        description=str(task.get("description", "")),
        status=str((task.get("businessStatus") or {}).get("text", "")),
        reporter=_display(task.get("requester")),
        reported=str(task.get("authoredOn", "")),
        owner=owner,
        recipient=recipient,
        handler=_extension(task, fhir_cases.EXT_HANDLER),
        notes=[
            Note(
                _display(n.get("authorReference")),
                str(n.get("time", "")),
                NOTE_NAMES.get(fhir_cases.action_of(n) or Action.COMMENT, "kommentar"),
                str(n.get("text", "")),
            )
            for n in task.get("note") or []
        ],
        actions=frozenset(a.value for a in shown.actions),
        due=str(((task.get("restriction") or {}).get("period") or {}).get("end", "")),
        overdue=any(
            t.get("code") == fhir_cases.OVERDUE_TAG["code"]
            for t in (task.get("meta") or {}).get("tag") or []
        ),
    )


def open_cases(web: Web, pid: str, drugs: dict[str, str]) -> list[CaseView]:
    """The patient's cases that are not closed, as the list page shows them."""
    found = CaseService(web.service).on_list(web.access(pid), pid)
    return [case_view(s, drugs) for s in found]


def _norwegian(error: DomainError) -> DomainError:
    """A refusal of the case's rules shown in Norwegian, as the policy's are."""
    error.message = rules.in_norwegian(error.message) or error.message
    return error


def report(web: Web) -> Response:
    """Report a discrepancy on the list or one entry (the version the page showed)."""
    pid = web.path_id("pid")
    focus = web.field("gjelder")
    text = web.field("beskrivelse")
    require(bool(focus), "Velg hva avviket gjelder.", "gjelder")
    require(bool(text), "Skriv hva som er feil.", "beskrivelse")
    require(len(text) <= rules.MAX_TEXT, f"Skriv høyst {rules.MAX_TEXT} tegn.", "beskrivelse")
    task = validate(
        {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "code": fhir_cases.CODE,
            "focus": {"reference": focus},
            "for": {"reference": f"Patient/{pid}"},
            "description": text,
        },
        "Task",
    )
    try:
        stored = CaseService(web.service).report(web.access(pid), task)
    except DomainError as exc:
        raise _norwegian(exc) from None
    shown = case_view(Shown(orjson.loads(stored.text), frozenset()), {})
    web.notice(f"Avviket er meldt til {shown.owner} ({shown.recipient}).")
    return web.redirect(f"/lege/pasient/{pid}#avvik")


def act(web: Web) -> Response:
    """Take, comment on, resolve, reject or withdraw a case, on the version the page
    showed."""
    pid, case_id = web.path_id("pid"), web.path_id("cid")
    handling = web.field("handling")
    require(handling in HANDLINGS, "Ukjent handling.", "handling")
    action = HANDLINGS[handling]
    comment = web.field("kommentar")
    if action is Action.REJECT:
        require(bool(comment), "Skriv hvorfor avviket avvises.", "kommentar")
    if action is Action.COMMENT:
        require(bool(comment), "Skriv en kommentar.", "kommentar")
    require(len(comment) <= rules.MAX_TEXT, f"Skriv høyst {rules.MAX_TEXT} tegn.", "kommentar")
    seen = web.field("versjon")
    expected = whole(seen, "versjon") if seen else None
    params = None
    if comment:
        params = {
            "resourceType": "Parameters",
            "parameter": [{"name": "comment", "valueString": comment}],
        }
    try:
        CaseService(web.service).act(
            web.access(pid), case_id, action, params, expected, patient_id=pid
        )
    except VersionConflict:
        web.notice("Avviket er endret av noen andre siden du så det; se hvordan det står nå.")
        return web.redirect(f"/lege/pasient/{pid}#avvik-{case_id}")
    except DomainError as exc:
        raise _norwegian(exc) from None
    web.notice(_DONE[action])
    return web.redirect(f"/lege/pasient/{pid}#avvik")


def _list_page(web: Web) -> Response:
    """The list page, where the case forms are (a refused form comes back on it)."""
    from pll.web.doctor.patient import list_page  # noqa: PLC0415 - it imports this module

    return list_page(web)


ROUTES = [
    Route("/lege/pasient/{pid}/avvik", doctors(report, form=_list_page), methods=["POST"]),
    Route("/lege/pasient/{pid}/avvik/{cid}", doctors(act, form=_list_page), methods=["POST"]),
]

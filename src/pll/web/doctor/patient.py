"""Finding and opening a patient, the list page, its history, and changes to the list as
a whole (confirm, pause, resume). The list page confirms in one click: it shows the
entries, and beside the button what changed since the last confirmation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from pll.auth.access import Basis, Verb
from pll.domain.diff import ChangeSummary, summarise
from pll.domain.errors import InvalidInput
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import ListVersion
from pll.domain.overrides import parse
from pll.fhir.validate import validate
from pll.services.lists import Op
from pll.web import cases as case_pages
from pll.web import forms
from pll.web.doctor import multidose as multidose_pages
from pll.web.doctor.common import current_list, entry_version, fnr_of, patient_url
from pll.web.doctor.notes import list_notes
from pll.web.doctor.saving import save
from pll.web.edge import Web, require, whole
from pll.web.views import FIELD_NAMES, ListView, activity_text

#: versions shown on the history page (the API pages through all of them)
HISTORY_LIMIT = 200


def search_page(web: Web) -> Response:
    recent = web.memory.get("patients", {})
    return web.render(
        "doctor/search.html",
        bases=list(Basis),
        recent=list(recent.items())[::-1],
    )


def open_patient(web: Web) -> Response:
    """Open a patient by fødselsnummer or D-nummer, on the basis the worker states
    (DESIGN §3 rule 5). The lookup itself is not logged; the list read that follows is."""
    number = web.field("fnr").replace(" ", "")
    require(bool(number), "Skriv pasientens fødselsnummer eller D-nummer.", "fnr")
    parsed = parse_person_identifier(None, number, "fnr")
    basis = _basis(web)
    access = web.access()
    pid = web.service.patient_by_identifier(access, Verb.READ, parsed.system, parsed.value)
    if pid is None:
        raise InvalidInput(f"Ingen pasient er registrert med {parsed.kind} {parsed.value}.", "fnr")
    web.set_basis(pid, basis)
    web.opened(pid, parsed.value)
    return web.redirect(patient_url(pid))


def _basis(web: Web) -> Basis:
    try:
        return Basis(web.field("basis") or Basis.TREATMENT.value)
    except ValueError:
        raise InvalidInput("Velg et gyldig tilgangsgrunnlag.", "basis") from None


def _next(web: Web, pid: str) -> str:
    """Where to go on to: a path of this site (never another site), else the list."""
    wanted = web.field("neste") or web.query("neste")
    if wanted.startswith("/") and not wanted.startswith("//") and "\\" not in wanted:
        return wanted
    return patient_url(pid)


def basis_page(web: Web) -> Response:
    """A patient's page reached without a stated basis (a bookmark, a link): ask for one
    before anything about the patient is read (DESIGN §3 rule 5)."""
    pid = web.path_id("pid")
    return web.render(
        "doctor/basis.html", pid=pid, bases=list(Basis), fnr=web.fnr(pid), after=_next(web, pid)
    )


def set_basis(web: Web) -> Response:
    pid = web.path_id("pid")
    web.set_basis(pid, _basis(web))
    return web.redirect(_next(web, pid))


def list_page(web: Web) -> Response:
    pid = web.path_id("pid")
    lst = current_list(web, pid)
    proposals = 0
    if lst is not None and lst.multidose_pharmacy:
        answer = _multidose(web).proposals(web.access(pid), lst.id, "pending")
        proposals = next(
            (
                p.get("valueInteger", 0)
                for p in answer.get("parameter", [])
                if p["name"] == "pending"
            ),
            0,
        )
    # discrepancy cases are shown on the list until they are closed
    drugs = {e.id: e.drug for e in lst.entries} if lst is not None else {}
    cases = case_pages.open_cases(web, pid, drugs) if lst is not None else []
    may_change = web.caller.actor.role.value == "doctor"
    registering = may_change and lst is not None and not lst.multidose_pharmacy
    return web.render(
        "doctor/list.html",
        pid=pid,
        fnr=fnr_of(web, pid),
        lst=lst,
        proposals=proposals,
        cases=cases,
        reasons=forms.DISCONTINUE_REASONS,
        may_change=may_change,
        overrides=list_notes(web, pid, lst)["overrides"],
        confirming=_since_confirmed(web, pid, lst) if lst is not None and may_change else None,
        pharmacies=multidose_pages.pharmacies(web) if registering else [],
    )


@dataclass(frozen=True)
class Confirming:
    """What the list page says beside "Bekreft versjon N" (issue 16: confirming shows what
    is confirmed and asks once): the version the last confirmation was of (1 for a list
    never confirmed: everything since it was made), and what changed since."""

    since: int
    changes: ChangeSummary


def _since_confirmed(web: Web, pid: str, lst: ListView) -> Confirming:
    """The changes since the last confirmation, from the list's difference. The page has
    read (and logged) the list: this read is part of it, and adds no record."""
    since = lst.confirmed_version or 1
    changes = ChangeSummary()
    if since < lst.version:
        difference = web.service.diff(web.access(pid), lst.id, since, lst.version)
        changes = summarise(difference)
    return Confirming(since, changes)


def _multidose(web: Web) -> Any:
    from pll.services.multidose import MultidoseService  # noqa: PLC0415 - only this page

    return MultidoseService(web.service)


def create_list(web: Web) -> Response:
    pid = web.path_id("pid")
    resource = validate(
        {
            "resourceType": "List",
            "status": "current",
            "mode": "working",
            "subject": {"reference": f"Patient/{pid}"},
        },
        "List",
    )
    web.service.create_list(web.access(pid), resource)
    web.notice("PLL er opprettet. Du holder stafettpinnen.")
    return web.redirect(patient_url(pid))


def list_op(kind: str, done: str) -> Callable[[Web], Response]:
    def handler(web: Web) -> Response:
        pid = web.path_id("pid")
        version = entry_version(web)
        reason = web.field("reason")[:200] or None
        if kind == "pause":
            require(
                bool(reason), "Skriv hvorfor listen pauses (for eksempel innleggelse).", "reason"
            )
        change = [Op(kind, if_match=version, reason=reason)]  # type: ignore[arg-type]
        return save(web, pid, lambda: change, reason, done, form_page=False)

    handler.__name__ = f"list_{kind}"
    return handler


#: The doctor's two ways of resuming a paused list, and what the notice says happened.
RESUMES = {
    "bekreft": (True, "Listen er gjenopptatt og bekreftet slik den er nå."),
    "uten": (
        False,
        "Listen er gjenopptatt uten å bekreftes; den siste bekreftelsen gjelder fortsatt.",
    ),
}


def resume_list(web: Web) -> Response:
    """Resume a paused list, confirming it or not as the doctor chose ("gjenoppta og
    bekreft" or "gjenoppta uten å bekrefte"); a resume never confirms silently."""
    pid = web.path_id("pid")
    version = entry_version(web)
    choice = web.field("confirm")
    require(
        choice in RESUMES,
        "Velg om listen skal bekreftes når den gjenopptas.",
        "confirm",
    )
    confirm, done = RESUMES[choice]
    change = [Op("resume", if_match=version, confirm=confirm)]
    return save(web, pid, lambda: change, None, done, form_page=False)


#: Medicines named one by one in a version's "what" (the rest are counted).
NAMED_PER_VERSION = 3


def _drug_names(lst: ListView) -> dict[str, str]:
    """The drug each entry and prescription on the list is for, by id."""
    names: dict[str, str] = {}
    for entry in lst.entries:
        names[entry.id] = entry.drug
        names.update((rx.id, entry.drug) for rx in entry.prescriptions)
    return names


def _what_changed(record: ListVersion, names: dict[str, str]) -> str:
    """What a version did, and to which medicines ("Endret legemiddel: Paracet"): the
    drugs of the entries and prescriptions it wrote, as the list names them now (an entry
    gone from the list, removed or ended long ago, goes unnamed)."""
    drugs = list(dict.fromkeys(names[t.id] for t in record.touched if t.id in names))
    what = activity_text(record.activity)
    if not drugs:
        return what
    shown = ", ".join(drugs[:NAMED_PER_VERSION])
    if len(drugs) > NAMED_PER_VERSION:
        shown += f" og {len(drugs) - NAMED_PER_VERSION} til"
    return f"{what}: {shown}"


def history_page(web: Web) -> Response:
    """The list's versions, and a readable difference between any two of them."""
    pid = web.path_id("pid")
    access = web.access(pid)
    lst = current_list(web, pid)
    if lst is None:
        raise InvalidInput("Pasienten har ingen PLL ennå.", "list")
    _, items, _ = web.service.list_history(access, lst.id, HISTORY_LIMIT, 0)
    names = _drug_names(lst)
    versions = [
        {
            "version": record.version,
            "at": record.recorded.isoformat(),
            "author": record.author.label(),
            "what": _what_changed(record, names),
            "why": record.reason or "",
            "override": parse(record.override) if record.override else None,
        }
        for _, record in items
    ]
    low = whole(web.query("fra") or str(max(1, lst.version - 1)), "fra")
    high = whole(web.query("til") or str(lst.version), "til")
    difference = web.service.diff(access, lst.id, low, high)
    return web.render(
        "doctor/history.html",
        pid=pid,
        fnr=fnr_of(web, pid),
        lst=lst,
        versions=versions,
        low=low,
        high=high,
        difference=difference,
        field_names=FIELD_NAMES,
    )

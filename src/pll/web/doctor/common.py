"""What the prescribing module's pages share: the open patient's list and entry, the
version a form was based on, and the patient's address."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pll.domain.errors import NotFound
from pll.domain.prescriptions import local_day
from pll.fhir.validate import validate
from pll.services.lists import Op
from pll.web.doctor.notes import entry_notes, typed_after_conflict, typed_for
from pll.web.edge import Web, require, whole
from pll.web.views import ListView, list_view


def patient_url(pid: str, rest: str = "") -> str:
    return f"/lege/pasient/{pid}{rest}"


def current_list(web: Web, pid: str) -> ListView | None:
    stored = web.service.current(web.access(pid), patient_id=pid, document=True)
    return list_view(stored.text, local_day(web.service.clock())) if stored is not None else None


def fnr_of(web: Web, pid: str) -> str:
    return web.fnr(pid)


def entry_version(web: Web) -> int:
    raw = web.field("version")
    require(bool(raw), "Skjemaet mangler versjonen du endret; last siden på nytt.", "version")
    return whole(raw, "version")


def entry_of(web: Web, pid: str, entry_id: str) -> tuple[ListView, Any]:
    lst = current_list(web, pid)
    entry = lst.entry(entry_id) if lst is not None else None
    if lst is None or entry is None:
        raise NotFound(
            f"MedicationStatement/{entry_id} does not exist on this patient's list.",
            "entry",
            norwegian="Legemidlet finnes ikke på pasientens liste.",
        )
    return lst, entry


def updated(web: Web, entry_id: str, content: dict[str, Any], version: int) -> Op:
    return Op(
        "update",
        "MedicationStatement",
        entry_id,
        validate(content, "MedicationStatement"),
        version,
    )


def entry_page(web: Web, template: str, **context: Any) -> Response:
    """A page about one entry of the open patient's list (dose, discontinue, renew, recall)."""
    pid = web.path_id("pid")
    lst, entry = entry_of(web, pid, web.path_id("eid"))
    extra = {k: v(entry) if callable(v) else v for k, v in context.items()}
    conflict = typed_after_conflict(web)
    typed = typed_for(web)
    if typed is not None:
        # reopened after a relay-baton conflict (this doctor's values on the current
        # version) or from the findings page to change what was typed
        extra |= {"values": typed, "reopened": conflict}
    # who holds the baton, and an override that concerns the entry, before it is changed
    notes = entry_notes(web, pid, lst, entry.id)
    # the multidose choice is offered while the patient has e-multidose (issue 18)
    registered = bool(lst.multidose_pharmacy)
    return web.render(
        template,
        pid=pid,
        fnr=fnr_of(web, pid),
        entry=entry,
        multidose_registered=registered,
        **notes,
        **extra,
    )

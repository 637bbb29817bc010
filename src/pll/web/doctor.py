"""The prescribing module's pages: find a patient, see and change the list.

Every change builds the FHIR resources a journal system would send, validates them with the
same FHIR validation, and hands them to :class:`~pll.services.lists.PLLService` as one list
change: relay baton, decision support, access rules, audit and event are the API's own
(DESIGN §3). Two answers of the service have pages of their own:

- **findings** (:class:`ChecksRefused`): the change is shown again with the findings, and
  goes through only with a reason for the override, which is kept with the version;
- **a relay-baton conflict** (:class:`VersionConflict`): the page shows who changed the
  entry and what, and offers to redo the doctor's own change on the current version.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pll.auth.access import Basis, Verb
from pll.domain.checks import Severity
from pll.domain.diff import diff_content
from pll.domain.errors import ChecksRefused, DomainError, InvalidInput, VersionConflict
from pll.domain.identifiers import parse_person_identifier
from pll.fhir import findings
from pll.fhir.validate import validate
from pll.services.catalogue import Catalogue
from pll.services.lists import ChangeResult, Op
from pll.web import cases as case_pages
from pll.web import forms
from pll.web.edge import Web, doctors, page, require, whole
from pll.web.views import FIELD_NAMES, ListView, activity_text, list_view

SEARCH_LIMIT = 25
#: The form field that says the doctor has seen decision support's findings for this change.
SEEN = "seen-findings"
#: versions shown on the history page (the API pages through all of them)
HISTORY_LIMIT = 200


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _patient_url(pid: str, rest: str = "") -> str:
    return f"/lege/pasient/{pid}{rest}"


# -- finding and opening a patient ---------------------------------------------------------


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
    parsed = parse_person_identifier(None, number, "fnr")
    basis = _basis(web)
    access = web.access()
    pid = web.service.patient_by_identifier(access, Verb.READ, parsed.system, parsed.value)
    if pid is None:
        raise InvalidInput(f"Ingen pasient er registrert med {parsed.kind} {parsed.value}.", "fnr")
    web.set_basis(pid, basis)
    web.opened(pid, parsed.value)
    return web.redirect(_patient_url(pid))


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
    return _patient_url(pid)


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


def _current(web: Web, pid: str) -> ListView | None:
    stored = web.service.current(web.access(pid), patient_id=pid, document=True)
    return list_view(stored.text) if stored is not None else None


def _fnr(web: Web, pid: str) -> str:
    return web.fnr(pid)


def list_page(web: Web) -> Response:
    pid = web.path_id("pid")
    lst = _current(web, pid)
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
    return web.render(
        "doctor/list.html",
        pid=pid,
        fnr=_fnr(web, pid),
        lst=lst,
        proposals=proposals,
        cases=cases,
        reasons=forms.DISCONTINUE_REASONS,
        may_change=web.caller.actor.role.value == "doctor",
    )


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
    return web.redirect(_patient_url(pid))


# -- saving a change -----------------------------------------------------------------------


def override_of(web: Web) -> tuple[str | None, frozenset[str] | None]:
    """The reason for an override, and the findings it accepts: the codes of the blocking
    findings the findings page showed, comma-separated in one field (a form's fields are
    bounded; the blocking findings of one answer are not)."""
    reason = web.field("override-reason")[:1000] or None
    codes = frozenset(c for v in web.fields("override-code") for c in v.split(",") if c)
    return reason, codes if reason else None


def _save(
    web: Web,
    pid: str,
    ops: Callable[[], list[Op]],
    reason: str | None,
    done: str,
) -> Response:
    """Apply ``ops`` as one list change; findings and conflicts get their own pages, where
    the doctor can go on with the same form (its fields are carried along)."""
    override, accepted = override_of(web)
    try:
        result = web.service.change(
            web.access(pid, override=override, accepted=accepted), pid, ops(), reason
        )
    except ChecksRefused as exc:
        return findings_page(web, exc.issues)
    except VersionConflict as exc:
        return _conflict_page(web, pid, exc)
    _notice_result(web, result, done)
    return web.redirect(_patient_url(pid))


def _notice_result(web: Web, result: ChangeResult, done: str) -> None:
    if result.list_version is None:
        web.notice("Ingenting var endret, så listen fikk ingen ny versjon.")
        return
    web.notice(f"{done} Listen er nå versjon {result.list_version}, og du holder stafettpinnen.")
    web.notice_findings(result.findings)


def _carried(web: Web, *, drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    skip = {"csrf", "override-reason", "override-code", *drop}
    return [(k, v) for k, v in web.form.multi_items() if k not in skip and isinstance(v, str)]


def findings_page(web: Web, issues: list[dict[str, Any]]) -> Response:
    """The change again, with what decision support found; it goes on with the same form,
    and a blocking finding needs the reason for overriding it (DESIGN §3 rule 6)."""
    found = [
        {
            "severity": i.get("severity"),
            "text": i.get("diagnostics", ""),
            "code": next((c.get("display") for c in i.get("details", {}).get("coding", [])), ""),
        }
        for i in issues
    ]
    # 200: a question to the doctor on the way to saving, not a failed request
    return web.render(
        "doctor/findings.html",
        findings=found,
        blocking=[f for f in found if f["severity"] == "error"],
        action=web.request.url.path,
        carried=_carried(web, drop=(SEEN,)),
        seen=SEEN,
    )


def _conflict_page(web: Web, pid: str, exc: VersionConflict) -> Response:
    """Someone else changed the entry since this doctor read it (relay baton, rule 2): show
    who, when and what, and offer to redo this doctor's change on the current version."""
    details = exc.details
    rtype, _, rid = details.get("resource", "").partition("/")
    if rtype == "List":
        return _list_conflict_page(web, pid, rid, details)
    changes: list[Any] = []
    if rtype and rid and details.get("yourVersion"):
        seen = web.service.resource_version(
            web.access(pid), rtype, rid, int(details["yourVersion"])
        )
        current = exc.resources[0] if exc.resources else {}
        before = {k: v for k, v in orjson.loads(seen.text).items() if k not in ("meta", "id")}
        after = {k: v for k, v in current.items() if k not in ("meta", "id")}
        changes = list(diff_content(before, after))
    return web.render(
        "doctor/conflict.html",
        pid=pid,
        who=details.get("changedBy", ""),
        when=details.get("changedAt", ""),
        changes=changes,
        action=web.request.url.path,
        carried=_carried(web, drop=("version",)),
        current_version=details.get("currentVersion", ""),
    )


def _list_conflict_page(web: Web, pid: str, list_id: str, details: dict[str, str]) -> Response:
    """The list moved on before a confirmation (or a resume, which confirms): a doctor may
    confirm only a version they have seen, so show what changed and send them back to it."""
    seen = whole(details.get("yourVersion", ""), "version")
    now = whole(details.get("currentVersion", ""), "version")
    difference = web.service.diff(web.access(pid), list_id, seen, now)
    return web.render(
        "doctor/list_conflict.html",
        pid=pid,
        fnr=web.fnr(pid),
        who=details.get("changedBy", ""),
        when=details.get("changedAt", ""),
        low=seen,
        high=now,
        difference=difference,
        field_names=FIELD_NAMES,
    )


def _entry_version(web: Web) -> int:
    raw = web.field("version")
    require(bool(raw), "Skjemaet mangler versjonen du endret; last siden på nytt.", "version")
    return whole(raw, "version")


def _entry(web: Web, pid: str, entry_id: str) -> tuple[ListView, Any]:
    lst = _current(web, pid)
    entry = lst.entry(entry_id) if lst is not None else None
    if lst is None or entry is None:
        raise InvalidInput("Legemidlet finnes ikke på pasientens liste.", "entry")
    return lst, entry


# -- prescribing ---------------------------------------------------------------------------


def prescribe_page(web: Web) -> Response:
    pid = web.path_id("pid")
    query = web.query("q")
    drugs: list[dict[str, Any]] = []
    if query:
        drugs = Catalogue(web.service.db).search(name=query, count=SEARCH_LIMIT)
    return web.render(
        "doctor/prescribe.html",
        pid=pid,
        fnr=_fnr(web, pid),
        query=query,
        drugs=[(d["id"], forms.medication_concept(d)["text"], _kind(d)) for d in drugs],
        searched=bool(query),
        values={"dose-mode": "fixed", "dose-unit": "tablett"},
        times=forms.TIMES,
        units=forms.UNITS,
        treatments=forms.TREATMENTS,
    )


def _kind(medication: dict[str, Any]) -> str:
    """What a FEST entry is (virkestoff, merkevare or pakning), so equal names differ."""
    return next(
        (
            e["valueCoding"].get("display", "")
            for e in medication.get("extension", [])
            if "valueCoding" in e
        ),
        "",
    )


def prescribe(web: Web) -> Response:
    pid = web.path_id("pid")
    drug_id = web.field("drug")
    require(bool(drug_id), "Velg et legemiddel fra søket.", "drug")
    medication = forms.medication_concept(Catalogue(web.service.db).read(drug_id))
    dosages = forms.dosage(web.field)
    treatment = web.field("treatment") or "1"
    indication = web.field("indication")
    with_rx = web.field("eresept") == "1"
    if web.field(SEEN) != "1":
        # decision support before saving: what this medicine would meet on the list
        draft = forms.statement(pid, medication, dosages, treatment, indication, _today(), None)
        found = web.service.check_drafts(web.access(pid), pid, [(web.service.ids(), draft)])
        # what needs the doctor's judgement stops the save; information alone does not
        if any(f.severity is not Severity.INFORMATION for f in found):
            return findings_page(web, findings.issues(found))

    def ops() -> list[Op]:
        out: list[Op] = []
        rx_id = web.service.ids() if with_rx else None
        if rx_id:
            rx = forms.prescription(pid, medication, dosages, _today())
            out.append(Op("create", "MedicationRequest", rx_id, validate(rx, "MedicationRequest")))
        entry = forms.statement(pid, medication, dosages, treatment, indication, _today(), rx_id)
        out.append(
            Op(
                "create",
                "MedicationStatement",
                web.service.ids(),
                validate(entry, "MedicationStatement"),
            )
        )
        return out

    return _save(web, pid, ops, None, f"{medication['text']} er lagt til.")


def dosage_preview(web: Web) -> Response:
    """The dosage text the list will show, for the editor's live preview. Always 200: an
    unfinished dosage is what a preview shows while the doctor types, not an error."""
    try:
        return JSONResponse({"ok": True, "text": forms.dosage(web.query)[0]["text"]})
    except DomainError as exc:
        return JSONResponse({"ok": False, "text": exc.message})


# -- changing an entry ---------------------------------------------------------------------


def _entry_page(web: Web, template: str, **context: Any) -> Response:
    """A page about one entry of the open patient's list (dose, discontinue, renew, recall)."""
    pid = web.path_id("pid")
    _, entry = _entry(web, pid, web.path_id("eid"))
    extra = {k: v(entry) if callable(v) else v for k, v in context.items()}
    return web.render(template, pid=pid, fnr=_fnr(web, pid), entry=entry, **extra)


def dose_page(web: Web) -> Response:
    return _entry_page(
        web,
        "doctor/dose.html",
        values=lambda entry: forms.editor_values(entry.content.get("dosage") or []),
        times=forms.TIMES,
        units=forms.UNITS,
    )


def _updated(web: Web, entry_id: str, content: dict[str, Any], version: int) -> Op:
    return Op(
        "update",
        "MedicationStatement",
        entry_id,
        validate(content, "MedicationStatement"),
        version,
    )


def change_dose(web: Web) -> Response:
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = _entry_version(web)
    dosages = forms.dosage(web.field)

    def ops() -> list[Op]:
        # the entry as it is now, with only the dosage changed: another doctor's change to
        # anything else is kept (and a change to this entry is a conflict, rule 2)
        _, entry = _entry(web, pid, entry_id)
        content = forms.without_meta(entry.content) | {"dosage": dosages}
        return [_updated(web, entry_id, content, version)]

    return _save(web, pid, ops, None, "Dosen er endret.")


def set_status(web: Web) -> Response:
    """Pause or resume one medicine (on-hold ⇄ active)."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = _entry_version(web)
    action = web.field("action")
    require(action in ("pause", "resume"), "Ukjent handling.", "action")

    def ops() -> list[Op]:
        _, entry = _entry(web, pid, entry_id)
        content = forms.without_meta(entry.content)
        content["status"] = "on-hold" if action == "pause" else "active"
        content.pop("statusReason", None)
        if action == "pause" and web.field("reason"):
            content["statusReason"] = [{"text": web.field("reason")[:200]}]
        return [_updated(web, entry_id, content, version)]

    done = "Legemidlet er pauset." if action == "pause" else "Legemidlet er tatt i bruk igjen."
    return _save(web, pid, ops, None, done)


def discontinue_page(web: Web) -> Response:
    return _entry_page(web, "doctor/discontinue.html", reasons=forms.DISCONTINUE_REASONS)


def discontinue(web: Web) -> Response:
    """Seponering: status stopped with a reason; its prescriptions are recalled (M5)."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = _entry_version(web)
    reason = web.field("reason")
    if reason == "annet":
        reason = web.field("other")
    require(bool(reason), "Velg eller skriv en grunn til seponeringen.", "reason")

    def ops() -> list[Op]:
        _, entry = _entry(web, pid, entry_id)
        content = forms.without_meta(entry.content)
        content["status"] = "stopped"
        content["statusReason"] = [{"text": reason[:200]}]
        return [_updated(web, entry_id, content, version)]

    return _save(web, pid, ops, reason[:200], "Legemidlet er seponert.")


def renew_page(web: Web) -> Response:
    return _entry_page(web, "doctor/renew.html")


def renew(web: Web) -> Response:
    """A renewal: a new e-prescription whose priorPrescription is the head of the chain."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    head_id = web.field("prescription")
    require(bool(head_id), "Skjemaet mangler resepten som skal fornyes.", "prescription")
    version = _entry_version(web)

    def ops() -> list[Op]:
        _, entry = _entry(web, pid, entry_id)
        if head_id not in {p.id for p in entry.prescriptions}:
            raise InvalidInput("Resepten hører ikke til dette legemidlet.", "prescription")
        medication = entry.content["medicationCodeableConcept"]
        rx = forms.prescription(
            pid, medication, entry.content.get("dosage") or [], _today(), prior=head_id
        )
        # The entry unchanged, on the version the doctor saw: if another doctor changed it
        # meanwhile, the renewal is refused (relay baton) rather than renewing a dose this
        # doctor never saw; unchanged, it writes nothing.
        same = _updated(web, entry_id, forms.without_meta(entry.content), version)
        renewal = Op(
            "create", "MedicationRequest", web.service.ids(), validate(rx, "MedicationRequest")
        )
        return [same, renewal]

    return _save(web, pid, ops, None, "Resepten er fornyet.")


def recall_page(web: Web) -> Response:
    return _entry_page(web, "doctor/recall.html", reasons=forms.RECALL_REASONS)


def recall(web: Web) -> Response:
    """Tilbakekalling: the prescription's status becomes stopped, with a reason."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    rx_id = web.field("prescription")
    reason = web.field("reason")
    require(bool(reason), "Velg en grunn til tilbakekallingen.", "reason")
    version = _entry_version(web)

    def ops() -> list[Op]:
        _, entry = _entry(web, pid, entry_id)
        if rx_id not in {p.id for p in entry.prescriptions}:
            raise InvalidInput("Resepten hører ikke til dette legemidlet.", "prescription")
        stored = web.service.read_resource(web.access(pid), "MedicationRequest", rx_id)
        content = forms.without_meta(orjson.loads(stored.text))
        content["status"] = "stopped"
        content["statusReason"] = {"text": reason[:200]}
        return [
            Op(
                "update",
                "MedicationRequest",
                rx_id,
                validate(content, "MedicationRequest"),
                version,
            )
        ]

    return _save(web, pid, ops, reason[:200], "Resepten er tilbakekalt.")


# -- the list as a whole -------------------------------------------------------------------


def _list_op(kind: str, done: str) -> Callable[[Web], Response]:
    def handler(web: Web) -> Response:
        pid = web.path_id("pid")
        version = _entry_version(web)
        reason = web.field("reason")[:200] or None
        if kind == "pause":
            require(
                bool(reason), "Skriv hvorfor listen pauses (for eksempel innleggelse).", "reason"
            )
        return _save(web, pid, lambda: [Op(kind, if_match=version, reason=reason)], reason, done)  # type: ignore[arg-type]

    handler.__name__ = f"list_{kind}"
    return handler


def history_page(web: Web) -> Response:
    """The list's versions, and a readable difference between any two of them."""
    pid = web.path_id("pid")
    access = web.access(pid)
    lst = _current(web, pid)
    if lst is None:
        raise InvalidInput("Pasienten har ingen PLL ennå.", "list")
    _, items, _ = web.service.list_history(access, lst.id, HISTORY_LIMIT, 0)
    versions = [
        {
            "version": record.version,
            "at": record.recorded.isoformat(),
            "author": record.author.label(),
            "what": activity_text(record.activity),
            "why": record.reason or "",
        }
        for _, record in items
    ]
    low = whole(web.query("fra") or str(max(1, lst.version - 1)), "fra")
    high = whole(web.query("til") or str(lst.version), "til")
    difference = web.service.diff(access, lst.id, low, high)
    return web.render(
        "doctor/history.html",
        pid=pid,
        fnr=_fnr(web, pid),
        lst=lst,
        versions=versions,
        low=low,
        high=high,
        difference=difference,
        field_names=FIELD_NAMES,
    )


ROUTES = [
    Route("/grunnlag/{pid}", doctors(basis_page), methods=["GET"]),
    Route("/grunnlag/{pid}", doctors(set_basis), methods=["POST"]),
    Route("/lege", doctors(search_page), methods=["GET"]),
    Route("/lege/apne", doctors(open_patient), methods=["POST"]),
    Route("/lege/dosering", page(dosage_preview), methods=["GET"]),
    Route("/lege/pasient/{pid}", doctors(list_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/opprett", doctors(create_list), methods=["POST"]),
    Route("/lege/pasient/{pid}/ny", doctors(prescribe_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/ny", doctors(prescribe), methods=["POST"]),
    Route("/lege/pasient/{pid}/historikk", doctors(history_page), methods=["GET"]),
    Route(
        "/lege/pasient/{pid}/bekreft",
        doctors(_list_op("confirm", "Listen er bekreftet.")),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/pause",
        doctors(_list_op("pause", "Listen er pauset.")),
        methods=["POST"],
    ),
    Route(
        "/lege/pasient/{pid}/gjenoppta",
        doctors(_list_op("resume", "Listen er i bruk igjen.")),
        methods=["POST"],
    ),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/dose", doctors(dose_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/dose", doctors(change_dose), methods=["POST"]),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/status", doctors(set_status), methods=["POST"]),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/seponer", doctors(discontinue_page), methods=["GET"]
    ),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/seponer", doctors(discontinue), methods=["POST"]),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/forny", doctors(renew_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/forny", doctors(renew), methods=["POST"]),
    Route(
        "/lege/pasient/{pid}/legemiddel/{eid}/tilbakekall", doctors(recall_page), methods=["GET"]
    ),
    Route("/lege/pasient/{pid}/legemiddel/{eid}/tilbakekall", doctors(recall), methods=["POST"]),
    # discrepancy cases, reported and handled from the list page
    *case_pages.ROUTES,
]

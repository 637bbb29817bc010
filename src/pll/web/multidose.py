"""e-multidose in the web UI: the pharmacy's pages and the doctor's page for its proposals.

The pharmacy (``/apotek``) sees its multidose patients, the packing basis it packs from
(M25.1), sends proposals (M25.2) and reports what it packed (M25.3); the responsible doctor
(``/lege/pasient/{pid}/forslag``) accepts or rejects the proposals. Every form builds the
``Parameters`` a pharmacy or journal system sends to the FHIR operations and hands them to
the same :class:`~pll.services.multidose.MultidoseService`: access, the rules of
``docs/multidose.md``, audit and events are the API's own, and a refusal is the API's
refusal, shown on the error page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pll.auth.access import Verb
from pll.domain.diff import FieldChange, diff_content
from pll.domain.errors import ChecksRefused, Conflict, Forbidden, InvalidInput, RuleRefused
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import Role
from pll.domain.prescriptions import local_day
from pll.fhir.validate import validate
from pll.services.catalogue import Catalogue
from pll.services.multidose import MultidoseService
from pll.services.pharmacy_patients import PharmacyWorkList
from pll.web import forms
from pll.web.doctor import findings_page, override_of
from pll.web.edge import OSLO, Page, Web, doctors, norwegian, page, require, whole
from pll.web.views import EntryView, ListView, list_view

#: patients on one page of the pharmacy's work list
PAGE_SIZE = 50
#: a multidose period is usually two weeks: the packing form starts with one
PERIOD_DAYS = 14
ACTION_NAMES = {"change": "Endre", "new": "Nytt legemiddel", "remove": "Seponere"}
ITEM_STATUS_NAMES = {"pending": "Venter på legen", "accepted": "Godtatt", "rejected": "Avvist"}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TYPED_DATE = re.compile(r"(?P<d>\d{2})\.(?P<m>\d{2})\.(?P<y>\d{4})")


def _pharmacy(handler: Page, *, form: Page | None = None) -> Callable[[Request], Any]:
    return page(handler, roles=frozenset({Role.PHARMACIST}), form=form)


def _doctor(handler: Page) -> Callable[[Request], Any]:
    """Only a doctor decides; the access policy then admits only the responsible one."""
    return page(handler, roles=frozenset({Role.DOCTOR}))


def _service(web: Web) -> MultidoseService:
    return MultidoseService(web.service)


def _basis_url(pid: str) -> str:
    return f"/apotek/pasient/{pid}"


def _params(*parameters: dict[str, Any] | None) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [p for p in parameters if p is not None]}


def _value(param: dict[str, Any]) -> Any:
    return next((v for k, v in param.items() if k.startswith(("value", "resource", "part"))), None)


def _named(params: list[dict[str, Any]], name: str, default: Any = None) -> Any:
    return next((_value(p) for p in params if p["name"] == name), default)


def _display(ref: Any) -> str:
    return str(ref.get("display") or "") if isinstance(ref, dict) else ""


# -- what the pages show, read from the operations' answers ----------------------------------


@dataclass
class Basis:
    """The packing basis (M25.1) as the pharmacy's page shows it."""

    lst: ListView
    message: str
    author: str
    doctor_holds_baton: bool
    doctor: str
    pharmacy: str
    packing_allowed: bool
    not_allowed_because: str | None

    @property
    def packed(self) -> list[EntryView]:
        return [e for e in self.lst.in_use if e.multidose]


def _basis(answer: dict[str, Any]) -> Basis:
    params = answer["parameter"]
    resources = [
        _named(params, "list"),
        *(_named(p["part"], "statement") for p in params if p["name"] == "entry"),
        *(p["resource"] for p in params if p["name"] == "prescription"),
    ]
    document = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    return Basis(
        lst=list_view(orjson.dumps(document)),
        message=_named(params, "message", ""),
        author=_display(_named(params, "author")),
        doctor_holds_baton=bool(_named(params, "responsibleDoctorHoldsBaton")),
        doctor=_display(_named(params, "doctor")),
        pharmacy=_display(_named(params, "pharmacy")),
        packing_allowed=bool(_named(params, "packingAllowed")),
        not_allowed_because=_named(params, "notAllowedBecause"),
    )


@dataclass
class Item:
    """One item of a proposal, with the doctor's decision once there is one."""

    id: str
    action: str
    status: str
    entry_id: str | None
    entry_version: int | None
    statement: dict[str, Any] | None
    reason: str
    decided_by: str
    decided_at: str
    decision_reason: str
    #: filled in against the current list: the medicine, what the pharmacy proposes, and
    #: what a change would change
    drug: str = ""
    dosage_now: str = ""
    dosage_proposed: str = ""
    changes: tuple[FieldChange, ...] = ()
    #: the entry changed after the pharmacy saw it: the item can only be rejected
    outdated: bool = False

    @property
    def action_name(self) -> str:
        return ACTION_NAMES.get(self.action, self.action)

    @property
    def status_name(self) -> str:
        return ITEM_STATUS_NAMES.get(self.status, self.status)


@dataclass
class Proposal:
    id: str
    sent_at: str
    author: str
    note: str
    items: list[Item] = field(default_factory=list)


def _item(parts: list[dict[str, Any]]) -> Item:
    ref = str((_named(parts, "entry") or {}).get("reference", ""))
    rid, _, version = ref.removeprefix("MedicationStatement/").partition("/_history/")
    return Item(
        id=_named(parts, "id", ""),
        action=_named(parts, "action", ""),
        status=_named(parts, "status", ""),
        entry_id=rid or None,
        entry_version=whole(version, "version") if version else None,
        statement=_named(parts, "statement"),
        reason=_named(parts, "reason", ""),
        decided_by=_named(parts, "decidedBy", ""),
        decided_at=_named(parts, "decidedAt", ""),
        decision_reason=_named(parts, "decisionReason", ""),
    )


def _proposals(answer: dict[str, Any], lst: ListView | None) -> list[Proposal]:
    """The proposals of a ``$proposals`` answer, each item named against the list."""
    found = []
    for param in answer["parameter"]:
        if param["name"] != "proposal":
            continue
        parts = param["part"]
        proposal = Proposal(
            id=_named(parts, "id", ""),
            sent_at=_named(parts, "sentAt", ""),
            author=_named(parts, "author", ""),
            note=_named(parts, "note", ""),
            items=[_item(p["part"]) for p in parts if p["name"] == "item"],
        )
        for item in proposal.items:
            _against(item, lst)
        found.append(proposal)
    return found


def _against(item: Item, lst: ListView | None) -> None:
    entry = lst.entry(item.entry_id) if lst is not None and item.entry_id else None
    proposed = _proposed_entry(item.statement) if item.statement else None
    item.drug = (proposed or entry or _NO_ENTRY).drug
    item.dosage_proposed = proposed.dosage if proposed else ""
    if entry is None:
        return
    item.dosage_now = entry.dosage
    item.outdated = item.entry_version is not None and entry.version != item.entry_version
    if item.statement is not None:
        item.changes = diff_content(_content(entry.content), _content(item.statement))


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}


def _proposed_entry(statement: dict[str, Any]) -> EntryView:
    """A proposed statement as the list would show it."""
    resource = {**statement, "id": "proposed"}
    document = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "List",
                    "id": "proposed",
                    "meta": {"versionId": "1"},
                    "subject": {"reference": "Patient/proposed"},
                    "entry": [{"item": {"reference": "MedicationStatement/proposed"}}],
                }
            },
            {"resource": resource},
        ],
    }
    return list_view(orjson.dumps(document)).entries[0]


_NO_ENTRY = EntryView(
    id="",
    version=0,
    status="",
    drug="(legemiddel som ikke lenger er på listen)",
    atc=None,
    fest_id=None,
    dosage="",
    treatment="",
    indication="",
    start="",
    last_changed="",
    reason="",
    multidose=False,
    withdrawn=False,
    content={},
)


# -- the pharmacy: its multidose patients ----------------------------------------------------


def patients_page(web: Web) -> Response:
    """Mine multidosepasienter: the patients registered with the caller's pharmacy."""
    raw = web.query("side", "1")
    number = int(raw) if re.fullmatch(r"[1-9][0-9]{0,5}", raw) else 1
    found = PharmacyWorkList(web.service).patients(
        web.access(), limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    return web.render(
        "pharmacy/patients.html",
        found=found,
        page_number=number,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        first=(number - 1) * PAGE_SIZE + 1,
        fnr=web.query("fnr"),
    )


def open_patient(web: Web) -> Response:
    """Open a patient by fødselsnummer or D-nummer; the packing basis that follows decides
    whether this pharmacy may see it, and logs it."""
    number = web.field("fnr").replace(" ", "")
    require(bool(number), "Skriv pasientens fødselsnummer eller D-nummer.", "fnr")
    parsed = parse_person_identifier(None, number, "fnr")
    pid = web.service.patient_by_identifier(web.access(), Verb.PACK, parsed.system, parsed.value)
    if pid is None:
        raise InvalidInput(f"Ingen pasient er registrert med {parsed.kind} {parsed.value}.", "fnr")
    return web.redirect(_basis_url(pid))


# -- the pharmacy: the packing basis, proposals and packing reports --------------------------


def _pharmacy_basis(web: Web, pid: str) -> tuple[str, Basis | None]:
    try:
        fnr, answer = _service(web).pharmacy_basis(web.access(pid), pid)
    except Forbidden as exc:
        if exc.norwegian:  # the policy said why, for this patient and this pharmacy
            raise
        # the refusal is already in the patient's access log; say what the page is for
        raise Forbidden(
            "Pakkegrunnlaget, forslagene og pakkerapportene her er bare for pasientens "
            f"multidoseapotek (e-multidose, M27). Tilgangskontrollen svarte: «{norwegian(exc)}»"
        ) from None
    return fnr, _basis(answer) if answer is not None else None


def basis_page(web: Web) -> Response:
    """The packing basis (M25.1): the list as it stands, whether it may be packed now, the
    pharmacy's proposals with the doctor's decisions, and the packing report form."""
    pid = web.path_id("pid")
    fnr, basis = _pharmacy_basis(web, pid)
    proposals: list[Proposal] = []
    if basis is not None:
        answer = _service(web).proposals(web.access(pid), basis.lst.id, None)
        proposals = _proposals(answer, basis.lst)
    # the Norwegian day on the service's clock: the report's period starts on the day it is
    # in Norway (not the UTC day, which is yesterday until 01:00 or 02:00)
    today = local_day(web.service.clock())
    return web.render(
        "pharmacy/basis.html",
        pid=pid,
        fnr=fnr,
        basis=basis,
        proposals=proposals,
        start=today.isoformat(),
        end=(today + timedelta(days=PERIOD_DAYS - 1)).isoformat(),
    )


def _entry(web: Web, pid: str) -> tuple[str, Basis, EntryView]:
    fnr, basis = _pharmacy_basis(web, pid)
    entry = basis.lst.entry(web.path_id("eid")) if basis is not None else None
    if basis is None or entry is None or not entry.in_use:
        raise InvalidInput("Legemidlet er ikke i bruk på pasientens liste.", "entry")
    return fnr, basis, entry


def proposal_page(kind: str) -> Page:
    """The form for one kind of proposal: a dose change, a removal or a new medicine."""

    def handler(web: Web) -> Response:
        pid = web.path_id("pid")
        entry = None
        # a new medicine is named in free text: PLL knows no form for it, so any unit
        units: tuple[str, ...] = forms.UNITS
        if kind == "new":
            fnr, basis = _pharmacy_basis(web, pid)
            if basis is None:
                raise InvalidInput("Pasienten har ingen PLL ennå; det er ingenting å foreslå på.")
            values = {"dose-mode": "fixed", "dose-unit": "tablett"}
        else:
            fnr, basis, entry = _entry(web, pid)
            values = forms.editor_values(entry.content.get("dosage") or [])
            # the units the drug's form takes, as on the doctor's dose page
            units = forms.units_of(_form(web, entry.content))
        return web.render(
            "pharmacy/propose.html",
            pid=pid,
            fnr=fnr,
            kind=kind,
            entry=entry,
            values=values,
            # a change proposal starts from the entry's dose, which is replaced, not dropped
            prefilled=values if entry is not None else {},
            times=forms.TIMES,
            units=units,
            treatments=forms.TREATMENTS,
        )

    handler.__name__ = f"propose_{kind}_page"
    return handler


def _form(web: Web, content: dict[str, Any]) -> str | None:
    """The FEST form of an entry's medicine (:meth:`Catalogue.form_of`)."""
    return Catalogue(web.service.db).form_of(content.get("medicationCodeableConcept") or {})


def _list_id(web: Web, pid: str) -> str:
    """The id of the patient's list, which the operations name (a read, logged)."""
    stored = web.service.current(web.access(pid), patient_id=pid)
    if stored is None:
        raise InvalidInput("Pasienten har ingen PLL ennå.", "list")
    return str(orjson.loads(stored.text)["id"])


def _seen(entry_id: str, version: int) -> dict[str, Any]:
    """The entry and the version of it the pharmacy saw (relay baton)."""
    return {
        "name": "entry",
        "valueReference": {"reference": f"MedicationStatement/{entry_id}/_history/{version}"},
    }


def _version(web: Web) -> int:
    raw = web.field("version")
    require(bool(raw), "Skjemaet mangler versjonen du så; last siden på nytt.", "version")
    return whole(raw, "version")


def _send(web: Web, pid: str, item: dict[str, Any]) -> Response:
    note = web.field("note")[:1000]
    try:
        _service(web).propose(
            web.access(pid),
            _list_id(web, pid),
            _params(item, {"name": "note", "valueString": note} if note else None),
        )
    except RuleRefused as exc:
        raise _limit_in_norwegian(exc) from None
    web.notice("Forslaget er sendt til legen. Listen endres først når legen godtar det.")
    return web.redirect(_basis_url(pid))


def _limit_in_norwegian(exc: RuleRefused) -> RuleRefused:
    """A request limit the service refused by (``pll.domain.limits``), said in Norwegian."""
    d = exc.details
    if "pending" in d:
        message = (
            f"{d['pending']} forslag venter allerede på legens avgjørelse, og høyst "
            f"{d['limit']} kan vente samtidig. Send forslaget når legen har avgjort dem."
        )
    elif "items" in d:
        message = (
            f"Høyst {d['limit']} legemidler kan sendes på én gang; skjemaet hadde {d['items']}."
        )
    else:
        return exc
    return RuleRefused(message, exc.expression, d)


def propose_change(web: Web) -> Response:
    """M25.2 ``change``: the entry as the pharmacy saw it, with the dose it proposes."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = _version(web)
    reason = web.field("reason")[:500]
    seen = web.service.resource_version(web.access(pid), "MedicationStatement", entry_id, version)
    require(seen.patient_id == pid, "Legemidlet er ikke på denne pasientens liste.", "entry")
    content = forms.without_meta(orjson.loads(seen.text))
    # a unit the drug's form does not take is refused here, beside the field, not first
    # when the doctor accepts the proposal
    content["dosage"] = forms.dosage(web.field, _form(web, content))
    item = {
        "name": "item",
        "part": [
            {"name": "action", "valueCode": "change"},
            _seen(entry_id, version),
            {"name": "statement", "resource": content},
            *([{"name": "reason", "valueString": reason}] if reason else []),
        ],
    }
    return _send(web, pid, item)


def propose_removal(web: Web) -> Response:
    """M25.2 ``remove``: the entry, the version seen, and why it should go."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = _version(web)
    reason = web.field("reason")[:500]
    require(bool(reason), "Skriv hvorfor legemidlet bør seponeres.", "reason")
    item = {
        "name": "item",
        "part": [
            {"name": "action", "valueCode": "remove"},
            _seen(entry_id, version),
            {"name": "reason", "valueString": reason},
        ],
    }
    return _send(web, pid, item)


def propose_new(web: Web) -> Response:
    """M25.2 ``new``: a medicine named in free text, with its dosage and treatment type."""
    pid = web.path_id("pid")
    drug = web.field("drug")[:200]
    require(bool(drug), "Skriv navnet på legemidlet.", "drug")
    treatment = web.field("treatment") or "1"
    dosages = forms.dosage(web.field)
    reason = web.field("reason")[:500]
    resource = forms.statement(
        pid,
        {"text": drug},
        dosages,
        treatment,
        web.field("indication"),
        local_day(web.service.clock()).isoformat(),
        None,
    )
    # not marked for packing: a medicine named in free text has no FEST form, so it cannot
    # be known to be packable (issue 18); the doctor marks it once it is prescribed
    item = {
        "name": "item",
        "part": [
            {"name": "action", "valueCode": "new"},
            {"name": "statement", "resource": validate(resource, "MedicationStatement")},
            *([{"name": "reason", "valueString": reason}] if reason else []),
        ],
    }
    return _send(web, pid, item)


def _day(web: Web, name: str, label: str) -> date:
    """A date from a date field: ISO as browsers send it, or dd.mm.åååå as typed where the
    browser has no date picker."""
    raw = web.field(name)
    typed = _TYPED_DATE.fullmatch(raw)
    if typed:
        raw = f"{typed['y']}-{typed['m']}-{typed['d']}"
    require(bool(_DATE.fullmatch(raw)), f"Fyll inn {label} (dd.mm.åååå).", name)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{label.capitalize()} er ikke en gyldig dato.", name) from None


def _packing_refused(web: Web, pid: str, exc: Conflict) -> str:
    """The service's refusal of a packing report, in the pharmacy's words: a paused list is
    said as such, from the packing basis as it now stands (the service has decided)."""
    _, basis = _pharmacy_basis(web, pid)
    lst = basis.lst if basis is not None else None
    if lst is None or not lst.paused_at:
        return f"Pakkerapporten ble ikke tatt imot. {exc.message}"
    when = datetime.fromisoformat(lst.paused_at.replace("Z", "+00:00"))
    return (
        "Pakkerapporten ble ikke tatt imot: listen er pauset, og pakkingen må stoppe. "
        f"Pauset {when.astimezone(OSLO):%d.%m.%Y kl. %H:%M} av {lst.paused_by}: "
        f"{lst.paused_reason}. Ikke pakk fra listen før en lege har gjenopptatt den med en "
        "bekreftet liste."
    )


def report_packing(web: Web) -> Response:
    """M25.3: what the pharmacy packed, for which period, from which list version. The
    service refuses it while the list is paused; the error page says why."""
    pid = web.path_id("pid")
    start, end = _day(web, "start", "første dag"), _day(web, "end", "siste dag")
    version = _version(web)
    entries = web.fields("entry")
    require(bool(entries), "Kryss av legemidlene som er pakket.", "entry")
    body = _params(
        {"name": "period", "valuePeriod": {"start": start.isoformat(), "end": end.isoformat()}},
        {"name": "listVersion", "valueInteger": version},
        *[
            {
                "name": "item",
                "part": [
                    {"name": "entry", "valueReference": {"reference": f"MedicationStatement/{e}"}}
                ],
            }
            for e in entries
        ],
    )
    try:
        answer = _service(web).packing_report(web.access(pid), _list_id(web, pid), body)
    except Conflict as exc:
        raise Conflict(_packing_refused(web, pid, exc), exc.expression, exc.details) from None
    except RuleRefused as exc:
        raise _limit_in_norwegian(exc) from None
    params = answer["parameter"]
    web.notice(
        f"Pakkerapporten for {start:%d.%m.%Y}–{end:%d.%m.%Y} er mottatt "
        f"({len(entries)} legemidler fra listens versjon {version})."
    )
    if _named(params, "changedSince"):
        web.notice(
            f"Merk: listen er endret siden versjon {version} (nå versjon "
            f"{_named(params, 'currentVersion')}). Pakk etter den nye versjonen."
        )
    return web.redirect(_basis_url(pid))


# -- the doctor: the pharmacy's proposals ----------------------------------------------------


def _doctor_list(web: Web, pid: str) -> ListView:
    stored = web.service.current(web.access(pid), patient_id=pid, document=True)
    if stored is None:
        raise InvalidInput("Pasienten har ingen PLL ennå.", "list")
    return list_view(stored.text, local_day(web.service.clock()))


def proposals_page(web: Web) -> Response:
    """The pending proposals of the pharmacy, each item with accept or reject."""
    pid = web.path_id("pid")
    lst = _doctor_list(web, pid)
    answer = _service(web).proposals(web.access(pid), lst.id, "pending")
    return web.render(
        "doctor/proposals.html",
        pid=pid,
        fnr=web.fnr(pid),
        lst=lst,
        proposals=_proposals(answer, lst),
    )


def decide(web: Web) -> Response:
    """Send the doctor's decisions with ``$decide``: the accepted items become one change
    of the list under the doctor's name; a rejection's reason goes to the pharmacy."""
    pid = web.path_id("pid")
    decisions = []
    accepted = rejected = 0
    for item_id in web.fields("item"):
        outcome = web.field(f"outcome-{item_id}")
        if outcome not in ("accept", "reject"):
            continue
        parts: list[dict[str, Any]] = [
            {"name": "item", "valueString": item_id},
            {"name": "outcome", "valueCode": outcome},
        ]
        if outcome == "reject":
            reason = web.field(f"reason-{item_id}")[:500]
            require(
                bool(reason),
                "Skriv en begrunnelse for apoteket når du avviser et forslag.",
                f"reason-{item_id}",
            )
            parts.append({"name": "reason", "valueString": reason})
            rejected += 1
        else:
            accepted += 1
        decisions.append({"name": "decision", "part": parts})
    require(bool(decisions), "Velg Godta eller Avvis for minst ett forslag.", "outcome")
    lst_id = _list_id(web, pid)
    override, codes = override_of(web)
    try:
        answer, result = _service(web).decide(
            web.access(pid, override=override, accepted=codes), lst_id, _params(*decisions), None
        )
    except ChecksRefused as exc:
        return findings_page(web, exc.issues)
    version = _named(answer["parameter"], "listVersion")
    if accepted:
        web.notice(
            f"{accepted} forslag er godtatt. Listen er nå versjon {version}, "
            "og du holder stafettpinnen."
        )
    if rejected:
        web.notice(f"{rejected} forslag er avvist; apoteket ser begrunnelsen.")
    web.notice_findings(result.findings if result is not None else [])
    return web.redirect(f"/lege/pasient/{pid}")


ROUTES: list[BaseRoute] = [
    Route("/apotek", _pharmacy(patients_page), methods=["GET"]),
    Route("/apotek/apne", _pharmacy(open_patient, form=patients_page), methods=["POST"]),
    Route("/apotek/pasient/{pid}", _pharmacy(basis_page), methods=["GET"]),
    Route(
        "/apotek/pasient/{pid}/pakking",
        _pharmacy(report_packing, form=basis_page),
        methods=["POST"],
    ),
    Route("/apotek/pasient/{pid}/nytt", _pharmacy(proposal_page("new")), methods=["GET"]),
    Route(
        "/apotek/pasient/{pid}/nytt",
        _pharmacy(propose_new, form=proposal_page("new")),
        methods=["POST"],
    ),
    Route(
        "/apotek/pasient/{pid}/legemiddel/{eid}/endre",
        _pharmacy(proposal_page("change")),
        methods=["GET"],
    ),
    Route(
        "/apotek/pasient/{pid}/legemiddel/{eid}/endre",
        _pharmacy(propose_change, form=proposal_page("change")),
        methods=["POST"],
    ),
    Route(
        "/apotek/pasient/{pid}/legemiddel/{eid}/seponer",
        _pharmacy(proposal_page("remove")),
        methods=["GET"],
    ),
    Route(
        "/apotek/pasient/{pid}/legemiddel/{eid}/seponer",
        _pharmacy(propose_removal, form=proposal_page("remove")),
        methods=["POST"],
    ),
    Route("/lege/pasient/{pid}/forslag", doctors(proposals_page), methods=["GET"]),
    Route("/lege/pasient/{pid}/forslag", _doctor(decide), methods=["POST"]),
]

"""The patient's pages (helsenorge): the list in plain language, what changed, who looked at
it, and blocking a named health worker.

A patient, or a person holding a proxy (*fullmakt*) for them, reads through the services the
API uses: :meth:`~pll.services.lists.PLLService.current`, ``list_history`` and ``diff``, and
:class:`~pll.services.access.PatientAccess` for the access log and blocks. The services decide
whose data the caller may see and log every read (DESIGN §3 rule 5), so another person's id
in the address is refused there, with the 403 page; these pages only put the answers in plain
words. A block is the ``Consent`` a helsenorge client would post to ``/fhir/Consent``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pll.auth.access import EMERGENCY_OVERRIDE, Access, Basis, Verb
from pll.domain.diff import EntryDifference, FieldChange, ListDifference
from pll.domain.errors import Conflict, InvalidInput
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import Author, ListVersion, Role
from pll.domain.prescriptions import local_day
from pll.fhir import access as fhir_access
from pll.fhir import systems
from pll.fhir.validate import validate
from pll.services.access import PatientAccess
from pll.services.base import Stored
from pll.web import cases as case_pages
from pll.web.edge import MONTHS, OSLO, ROLE_NAMES, Page, Web, day_in_words, page
from pll.web.views import EntryView, list_view

#: list versions described on one page of "what changed" (each is one diff)
CHANGES_PER_PAGE = 10
#: access-log records on one page of "who looked"
LOOKS_PER_PAGE = 50


def patients(handler: Page, *, form: Page | None = None) -> Any:
    return page(handler, roles=frozenset({Role.PATIENT}), form=form)


def long_date(value: str | None) -> str:
    """A FHIR date or instant as a patient reads it: "1. oktober 2026"."""
    if not value:
        return ""
    try:  # a FHIR date may be a year, a year and month, a date, or an instant
        if len(value) == 4:
            return value
        if len(value) == 7:
            return f"{MONTHS[int(value[5:7]) - 1]} {value[:4]}"
        if len(value) == 10:
            day = date.fromisoformat(value)
        else:
            day = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(OSLO).date()
    except (ValueError, IndexError):
        return value
    return day_in_words(day)


# -- whose list: the person themselves, or someone they hold a proxy for --------------------


@dataclass(frozen=True)
class Person:
    """Someone the logged-in person may act for; ``pid`` is ``None`` when not in PLL."""

    number: str
    pid: str | None
    yourself: bool

    @property
    def label(self) -> str:
        if self.yourself:
            return "Meg selv"
        kind = parse_person_identifier(None, self.number).kind
        return f"{'D-nummer' if kind == 'dnr' else 'Fødselsnummer'} {self.number}"


def _people(web: Web) -> list[Person]:
    """The logged-in person and the persons they hold a proxy for. The lookups by number are
    not logged; what is read about them is, when it is read."""
    access = web.access()
    own = web.caller.actor.pid
    numbers = ([own] if own else []) + PatientAccess(web.service).proxies(access)
    return [
        Person(n, web.service.patient_by_identifier(access, Verb.READ, None, n), n == own)
        for n in dict.fromkeys(numbers)
    ]


def _context(web: Web, pid: str, tab: str) -> dict[str, Any]:
    people = _people(web)
    return {
        "pid": pid,
        "tab": tab,
        "person": next((p for p in people if p.pid == pid), None),
        "others": len(people) > 1,
    }


def choose_page(web: Web) -> Response:
    """``/pasient``: straight to one's own list, or a choice of whom to act for."""
    people = _people(web)
    if len(people) == 1 and people[0].pid is not None:
        return web.redirect(f"/pasient/{people[0].pid}")
    return web.render("patient/choose.html", people=people)


# -- my medicines ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Medicine:
    """One medicine in plain words: the name, then what, against what, since when."""

    id: str
    name: str
    parts: tuple[str, ...]
    reason: str
    tags: tuple[str, ...]
    prescription: str


_KIND_TAGS = {"2": "Kur", "3": "Ved behov"}


def _medicine(entry: EntryView) -> Medicine:
    parts = []
    if entry.dosage:
        parts.append(entry.dosage)
    if entry.indication:
        parts.append(f"mot {entry.indication}")
    if entry.in_use and entry.start:
        parts.append(f"brukt siden {long_date(entry.start)}")
    elif not entry.in_use:
        ended = "avsluttet" if entry.status != "entered-in-error" else "strøket"
        parts.append(f"{ended} {long_date(entry.last_changed)}")
    category = entry.content.get("category") or {}
    kind = next((c.get("code") for c in category.get("coding", [])), None)
    tags = [_KIND_TAGS[kind]] if kind in _KIND_TAGS else []
    if entry.multidose:
        tags.append("Pakkes i multidose")
    if entry.withdrawn:
        tags.append("Ikke lenger i salg – snakk med legen din")
    return Medicine(
        entry.id,
        entry.drug,
        tuple(parts),
        entry.reason,
        tuple(tags),
        _prescription_words(entry),
    )


def _prescription_words(entry: EntryView) -> str:
    rx = entry.current_prescription
    if rx is None or not entry.in_use:
        return ""
    if entry.prescription_expired:
        return (
            f"Resepten er utløpt (gyldig til {long_date(rx.valid_until)}). Du kan ikke hente "
            "legemidlet på apoteket før legen har skrevet en ny resept – ta kontakt med legen din"
        )
    words = {
        "active": "Resepten er gyldig",
        "on-hold": "Resepten er satt på pause",
        "stopped": "Resepten er trukket tilbake",
        "completed": "Resepten er avsluttet",
    }.get(rx.status, "")
    if words and rx.status in ("active", "on-hold") and rx.valid_until:
        words += f" til {long_date(rx.valid_until)}"
    if words and rx.last_dispensed:
        words += f", sist hentet {long_date(rx.last_dispensed)}"
    return words


def _current(web: Web, access: Access, pid: str, *, document: bool) -> Stored | None:
    """The current list (``None`` if there is none yet). With no list the patient record is
    read instead, so whether this person may see the page is still decided and logged."""
    stored = web.service.current(access, patient_id=pid, document=document)
    if stored is None:
        web.service.read_patient(access, pid)
    return stored


def list_page(web: Web) -> Response:
    pid = web.path_id("pid")
    stored = _current(web, web.access(pid), pid, document=True)
    lst = list_view(stored.text, local_day(web.service.clock())) if stored is not None else None
    groups: dict[str, list[Medicine]] = {"active": [], "on-hold": [], "ended": []}
    for entry in lst.entries if lst is not None else []:
        group = entry.status if entry.status in ("active", "on-hold") else "ended"
        groups[group].append(_medicine(entry))
    # the discrepancies reported on the list stay in view until they are closed
    drugs = {e.id: e.drug for e in lst.entries} if lst is not None else {}
    cases = case_pages.open_cases(web, pid, drugs) if lst is not None else []
    return web.render(
        "patient/list.html",
        lst=lst,
        cases=cases,
        using=groups["active"],
        paused=groups["on-hold"],
        ended=groups["ended"],
        long_date=long_date,
        **_context(web, pid, "list"),
    )


# -- what changed ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    version: int
    at: str
    who: str
    lines: tuple[str, ...]
    why: str


_ACTIVITIES = {
    "create-list": "Legemiddellisten ble opprettet.",
    "confirm": "Listen ble gått gjennom og bekreftet som riktig.",
    "pause-list": "Hele listen ble satt på pause.",
    "resume-list": "Listen ble tatt i bruk igjen.",
    "dispense": "Apoteket registrerte at et legemiddel ble hentet ut.",
    "expire-entries": (
        "Legemidler som ble avsluttet for mer enn 90 dager siden, vises ikke lenger på listen."
    ),
    "fest-withdrawn": (
        "Et legemiddel på listen er ikke lenger i salg (tatt ut av legemiddelkatalogen)."
    ),
    "multidose-register": "Legemidlene dine skal nå pakkes i multidose (e-multidose).",
    "multidose-end": "Legemidlene dine pakkes ikke lenger i multidose (e-multidose er avsluttet).",
    "paper-multidose": "Det ble registrert at du også får multidose bestilt på papir.",
    "paper-multidose-end": "Multidose bestilt på papir er avsluttet.",
}
#: reasons written by PLL itself that say nothing more to a patient than the change does
_QUIET_REASONS = frozenset({"dispense", "paper-multidose"})
_ENTRY_STATUS = {
    "on-hold": "ble satt på pause",
    "stopped": "ble avsluttet",
    "completed": "ble avsluttet",
    "entered-in-error": "ble strøket fordi det var registrert ved en feil",
}
_RX_STATUS = {
    "stopped": "Resepten på {name} ble trukket tilbake",
    "completed": "Den forrige resepten på {name} ble erstattet eller avsluttet",
    "on-hold": "Resepten på {name} ble satt på pause",
    "cancelled": "Resepten på {name} ble kansellert",
}
#: elements a patient is not told about one by one (references, bookkeeping)
_UNTOLD = frozenset({"basedOn", "subject", "informationSource", "dateAsserted", "derivedFrom"})


def who(author: Author) -> str:
    """Who made a change, as a patient reads it: "Kari Fastlege, lege ved Bergen legesenter"."""
    if author.role is Role.SYSTEM:
        return author.name
    role = ROLE_NAMES.get(author.role, author.role.value)
    return f"{author.name}, {role} ved {author.org_name}" if author.org_name else author.name


def _with_reason(text: str, reason: str | None) -> str:
    return f"{text} (grunn: {reason})." if reason else f"{text}."


def _dose_words(name: str, dose: FieldChange) -> str:
    if dose.before and dose.after:
        return f"Dosen av {name} ble endret fra «{dose.before}» til «{dose.after}»."
    return f"Doseringen av {name} ble endret."


def _purpose_words(name: str, purpose: FieldChange) -> str:
    if purpose.after:
        return f"Det {name} brukes mot, er nå «{purpose.after}»."
    return f"Det står ikke lenger hva {name} brukes mot."


#: how a change to one element of an entry is told, in the order told
_ELEMENT_WORDS: dict[str, Callable[[str, FieldChange], str]] = {
    "dosage": _dose_words,
    "medicationCodeableConcept": lambda _, f: f"{f.before} ble byttet til {f.after}.",
    "reasonCode": _purpose_words,
    "category": lambda name, f: f"{name} er nå registrert som «{f.after or 'ukjent'}».",
    "effectivePeriod": lambda name, _: (
        f"Datoen for når {name} ble startet eller skal avsluttes, ble endret."
    ),
}


def _entry_lines(change: EntryDifference, expired: bool) -> list[str]:
    fields = {f.element: f for f in change.fields}
    name = change.medication
    if change.kind == "added":
        text = f"Nytt legemiddel: {name}"
        if (dose := fields.get("dosage")) and dose.after:
            text += f", {dose.after}"
        if (purpose := fields.get("reasonCode")) and purpose.after:
            text += f", mot {purpose.after}"
        return [f"{text}."]
    if change.kind == "removed":
        if expired:
            return [f"{name} vises ikke lenger (avsluttet for mer enn 90 dager siden)."]
        return [f"{name} ble tatt bort fra listen."]
    lines = []
    status, reason = fields.pop("status", None), fields.pop("statusReason", None)
    if status is not None:
        words = _ENTRY_STATUS.get(status.after or "", "ble tatt i bruk igjen")
        lines.append(_with_reason(f"{name} {words}", reason.after if reason else None))
    elif reason is not None and reason.after:
        lines.append(f"Grunnen som er oppgitt for {name}, er nå «{reason.after}».")
    for element, words_for in _ELEMENT_WORDS.items():
        if (field := fields.pop(element, None)) is not None:
            lines.append(words_for(name, field))
    if set(fields) - _UNTOLD:
        lines.append(f"Andre opplysninger om {name} ble oppdatert.")
    return lines


def _prescription_lines(change: EntryDifference) -> list[str]:
    fields = {f.element: f for f in change.fields}
    name = change.medication
    if change.kind == "added":
        if "priorPrescription" in fields:
            return [f"Resepten på {name} ble fornyet."]
        return [f"Ny e-resept på {name}."]
    if change.kind == "removed":
        return [f"En resept på {name} ble tatt bort."]
    status, reason = fields.get("status"), fields.get("statusReason")
    if status is not None and status.after in _RX_STATUS:
        text = _RX_STATUS[status.after].format(name=name)
        return [_with_reason(text, reason.after if reason else None)]
    return [f"Resepten på {name} ble oppdatert."]


def _list_lines(difference: ListDifference) -> list[str]:
    lines = []
    for change in difference.list_changes:
        if change.element == "paused" and change.after:
            why = change.after.partition(": ")[2]
            lines.append(_with_reason("Hele listen ble satt på pause", why or None))
        elif change.element == "paused":
            lines.append("Listen ble tatt i bruk igjen.")
        elif change.element == "confirmed" and change.after:
            lines.append("Listen ble gått gjennom og bekreftet som riktig.")
    return lines


def plain_difference(difference: ListDifference, activity: str = "") -> list[str]:
    """What changed between two list versions, as sentences a patient reads."""
    expired = "expire-entries" in activity.split("+")
    lines = _list_lines(difference)
    for entry in difference.entries:
        lines.extend(_entry_lines(entry, expired))
    for rx in difference.prescriptions:
        lines.extend(_prescription_lines(rx))
    return lines


def _change(web: Web, access: Access, list_id: str, record: ListVersion) -> Change:
    lines: list[str] = []
    if record.version > 1:
        difference = web.service.diff(access, list_id, record.version - 1, record.version)
        lines = plain_difference(difference, record.activity)
    if not lines:
        lines = [_ACTIVITIES.get(a, "Listen ble oppdatert.") for a in record.activity.split("+")]
    why = record.reason or ""
    if record.activity in _QUIET_REASONS or any(why in line for line in lines):
        why = ""  # said already, or nothing a patient needs
    return Change(
        record.version,
        record.recorded.isoformat(),
        who(record.author),
        tuple(dict.fromkeys(lines)),
        why,
    )


def _number(web: Web, name: str, default: int | None) -> int | None:
    raw = web.query(name)
    return int(raw) if re.fullmatch(r"[1-9][0-9]{0,8}", raw) else default


def changes_page(web: Web) -> Response:
    """The list's versions, newest first, each said in plain words (one diff per version)."""
    pid = web.path_id("pid")
    access = web.access(pid)
    stored = _current(web, access, pid, document=False)
    changes: list[Change] = []
    side = _number(web, "side", 1) or 1
    total, upto = 0, None
    if stored is not None:
        list_id = str(orjson.loads(stored.text)["id"])
        total, items, upto = web.service.list_history(
            access,
            list_id,
            CHANGES_PER_PAGE,
            (side - 1) * CHANGES_PER_PAGE,
            _number(web, "til", None),
        )
        changes = [_change(web, access, list_id, record) for _, record in items]
    return web.render(
        "patient/changes.html",
        has_list=stored is not None,
        changes=changes,
        side=side,
        upto=upto,
        older=side * CHANGES_PER_PAGE < total,
        **_context(web, pid, "changes"),
    )


# -- who looked at my list -------------------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """One access-log record in plain words."""

    at: str
    who: str
    role: str
    hpr: str
    organisation: str
    what: str
    basis: str
    emergency: bool
    overrode_block: bool
    refused: bool
    own: bool
    note: str
    #: served by the read copy (Kjernejournal's role), not by PLL itself
    read_copy: bool = False


_OBJECTS = {
    "List": "legemiddellisten",
    "MedicationStatement": "et legemiddel på listen",
    "MedicationRequest": "en resept",
    "MedicationDispense": "utleveringer fra apotek",
    "AllergyIntolerance": "legemiddelreaksjoner (allergier)",
    "Patient": "personopplysningene",
    "AuditEvent": "hvem som har sett listen",
    "Consent": "sperringer av helsepersonell",
    "Provenance": "hvem som har endret listen",
    "Subscription": "varsler om endringer",
    "Task": "avvik meldt på listen",
}
_VERBS = {
    "read": "så",
    "vread": "så en tidligere versjon av",
    "history-instance": "så historikken til",
    "search-type": "søkte i",
    "create": "opprettet",
    "update": "endret",
    "delete": "slettet",
    "operation": "gjorde et oppslag i",
}
_WHAT = {
    ("read", "List"): "åpnet legemiddellisten",
    ("search-type", "AuditEvent"): "så hvem som har sett listen",
    ("search-type", "Patient"): "slo opp personen",
    ("create", "Patient"): "registrerte personen i PLL",
    ("create", "Consent"): "sperret en navngitt helsearbeider",
    ("delete", "Consent"): "opphevet en sperring",
    ("search-type", "Consent"): "så sperringene",
    ("create", "List"): "opprettet legemiddellisten",
    ("update", "List"): "endret legemiddellisten",
}


def _what(event: dict[str, Any]) -> str:
    interaction = (event.get("subtype") or [{}])[0].get("code", "")
    rtype = "Patient"
    for entity in event.get("entity", []):
        what = entity.get("what", {})
        found = str(what.get("reference", "")).split("/")[0] or str(what.get("display", ""))
        if found and found != "Patient":
            rtype = found
    if event.get("outcome", "0") != "0":
        tried = "endre" if interaction in ("create", "update", "delete") else "se"
        return f"prøvde å {tried} {_OBJECTS.get(rtype, rtype)}"
    if (interaction, rtype) in _WHAT:
        return _WHAT[(interaction, rtype)]
    return f"{_VERBS.get(interaction, 'brukte')} {_OBJECTS.get(rtype, rtype)}"


def _look(event: dict[str, Any], caller_pid: str | None, person: Person | None) -> Look:
    agents = event.get("agent") or [{}]
    who_ = agents[0].get("who", {})
    ident = who_.get("identifier", {})
    role_code = agents[0].get("type", {}).get("text", "")
    try:
        role = Role(role_code)
    except ValueError:
        role = None
    name = str(who_.get("display", ""))
    number = ident.get("value", "") if ident.get("system") != systems.HPR else ""
    own = role is Role.PATIENT
    if own and number and number == caller_pid:
        name = "Deg selv"
    elif own and person is not None and number == person.number:
        name = f"{name} (personen selv)"
    elif own:
        name = f"{name} (fullmektig)"
    organisation = next(
        (
            str(a["who"].get("display") or a["who"].get("identifier", {}).get("value", ""))
            for a in agents[1:]
            if a.get("type", {}).get("text") == "organisation"
        ),
        "",
    )
    purpose: dict[str, Any] = next(
        (c for p in event.get("purposeOfEvent", []) for c in p.get("coding", [])), {}
    )
    flags = {t.get("code") for t in event.get("meta", {}).get("tag", [])}
    return Look(
        at=str(event.get("recorded", "")),
        who=name,
        role=ROLE_NAMES.get(role, role_code) if role is not None else role_code,
        hpr=ident.get("value", "") if ident.get("system") == systems.HPR else "",
        organisation=organisation,
        what=_what(event),
        basis=str(purpose.get("display", "")),
        emergency=purpose.get("code") == Basis.EMERGENCY.value or EMERGENCY_OVERRIDE in flags,
        overrode_block=EMERGENCY_OVERRIDE in flags,
        refused=event.get("outcome", "0") != "0",
        own=own,
        note=str(event.get("outcomeDesc", "")) if EMERGENCY_OVERRIDE in flags else "",
        read_copy=event.get("source", {}).get("observer", {}).get("display")
        == fhir_access.READ_COPY_OBSERVER,
    )


def looks_page(web: Web) -> Response:
    pid = web.path_id("pid")
    side = _number(web, "side", 1) or 1
    total, events = PatientAccess(web.service).access_log(
        web.access(pid), pid, LOOKS_PER_PAGE, (side - 1) * LOOKS_PER_PAGE
    )
    context = _context(web, pid, "looks")
    looks = [_look(e, web.caller.actor.pid, context["person"]) for e in events]
    return web.render(
        "patient/looks.html",
        looks=looks,
        emergencies=[x for x in looks if x.emergency],
        side=side,
        total=total,
        older=side * LOOKS_PER_PAGE < total,
        **context,
    )


# -- blocking a named health worker ----------------------------------------------------------


@dataclass(frozen=True)
class Block:
    id: str
    hpr: str
    name: str
    since: str
    until: str


def _block(consent: dict[str, Any]) -> Block:
    provision = consent.get("provision", {})
    actor = ((provision.get("actor") or [{}])[0]).get("reference", {})
    period = provision.get("period", {})
    return Block(
        id=str(consent["id"]),
        hpr=str(actor.get("identifier", {}).get("value", "")),
        name=str(actor.get("display", "")),
        since=str(period.get("start", "")),
        until=str(period.get("end", "")),
    )


def _blocks_page(web: Web, pid: str) -> Response:
    blocks = [_block(c) for c in PatientAccess(web.service).blocks(web.access(pid), pid)]
    return web.render(
        "patient/blocks.html",
        active=[b for b in blocks if not b.until],
        ended=[b for b in blocks if b.until],
        # a link from the access log fills in whom to block
        values={"hpr": web.query("hpr")[:9], "name": web.query("navn")[:200]},
        **_context(web, pid, "blocks"),
    )


def blocks_page(web: Web) -> Response:
    return _blocks_page(web, web.path_id("pid"))


def consent(pid: str, hpr: str, name: str) -> dict[str, Any]:
    """The ``Consent`` that blocks one health worker, as a helsenorge client sends it."""
    reference: dict[str, Any] = {"identifier": {"system": systems.HPR, "value": hpr}}
    if name:
        reference["display"] = name
    return validate(
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"system": fhir_access.CONSENT_SCOPE, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": systems.LOINC, "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"},
            "provision": {
                "type": "deny",
                "actor": [
                    {
                        "role": {
                            "coding": [
                                {
                                    "system": (
                                        "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
                                    ),
                                    "code": "PRCP",
                                }
                            ]
                        },
                        "reference": reference,
                    }
                ],
            },
        },
        "Consent",
    )


def block(web: Web) -> Response:
    pid = web.path_id("pid")
    hpr = web.field("hpr").replace(" ", "")[:20]
    name = web.field("name")[:200]
    try:
        PatientAccess(web.service).block(web.access(pid), consent(pid, hpr, name))
    except InvalidInput as exc:
        if not (exc.expression or "").startswith("Consent.provision.actor"):
            raise
        # the form comes back with what was typed (pll.web.edge.refused_form)
        raise InvalidInput(
            "Skriv HPR-nummeret med sifre, 1 til 9 sifre (du finner det i "
            "Helsepersonellregisteret, eller der du ser hvem som har sett listen).",
            "hpr",
        ) from None
    except Conflict:
        web.notice(f"HPR-nummer {hpr} er allerede sperret.")
        return web.redirect(f"/pasient/{pid}/sperring")
    web.notice(
        f"{name or 'Helsearbeideren'} (HPR-nummer {hpr}) er sperret og kan ikke lenger se "
        "legemiddellisten, unntatt i en nødsituasjon."
    )
    return web.redirect(f"/pasient/{pid}/sperring")


def unblock(web: Web) -> Response:
    pid = web.path_id("pid")
    ended = _block(PatientAccess(web.service).unblock(web.access(pid), web.path_id("bid")))
    web.notice(
        f"Sperringen av {ended.name or 'HPR-nummer ' + ended.hpr} er opphevet; "
        "vedkommende kan igjen se listen når de behandler deg."
    )
    return web.redirect(f"/pasient/{pid}/sperring")


ROUTES: list[BaseRoute] = [
    Route("/pasient", patients(choose_page), methods=["GET"]),
    Route("/pasient/{pid}", patients(list_page), methods=["GET"]),
    Route("/pasient/{pid}/endringer", patients(changes_page), methods=["GET"]),
    Route("/pasient/{pid}/innsyn", patients(looks_page), methods=["GET"]),
    Route("/pasient/{pid}/sperring", patients(blocks_page), methods=["GET"]),
    Route("/pasient/{pid}/sperring", patients(block, form=blocks_page), methods=["POST"]),
    Route("/pasient/{pid}/sperring/{bid}/opphev", patients(unblock), methods=["POST"]),
]

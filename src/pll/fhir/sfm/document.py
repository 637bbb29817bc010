"""PLL's list written as an SFM Basis ``$getMedication`` document.

The shape follows the national test environment's response (``shared/reference/sfm-basis``)
and the guide (https://simplifier.net/guide/SFMAPIBasis/Getmedicalinformation): a
``document`` Bundle whose Composition has the sections ``sectionMedication``,
``sectionPLLinfo``, ``sectionAllergies``, ``sectionDispense`` and
``sectionOtherPrescriptions``; references between its resources are ``urn:uuid``.

Each medicine is one SFM ``MedicationStatement`` carrying the entry (identifier ``PLL``) and
the head of its prescription chain (identifier ``ReseptId``). Older links of a chain are
``completed`` statements, ``partOf`` their successor, reachable from the head's ``basedOn``;
only heads are listed in the section. Prescriptions in use that no entry names are shown as
statements with only a ReseptId, as SFM shows prescriptions not yet on the PLL.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pll.domain.model import (
    ENDED,
    RX_ACTIVE,
    Author,
    Entry,
    MedicationList,
    Multidose,
    PaperMultidose,
    Prescription,
    Role,
)
from pll.domain.multidose import PAPER_RISK
from pll.domain.prescriptions import local_day
from pll.fhir import systems
from pll.fhir.medication import FEST, resource_id
from pll.fhir.resources import instant, multidose_extensions
from pll.fhir.sfm import codes as c
from pll.fhir.sfm import expiry
from pll.fhir.sfm.amendment import (
    amendment,
    delivery_summary,
    discontinuation,
    dosage_text,
    text_of,
)
from pll.fhir.sfm.builder import Builder, medication, reg_info, requester
from pll.fhir.sfm.parties import Party
from pll.fhir.sfm.pause import paused_extension, paused_words
from pll.fhir.sfm.reading import PLL_ID, RESEPT_ID

_USE_DISPLAY = {"1": "Fast", "2": "Kur", "3": "Ved behov"}


@dataclass
class StoredMessage:
    """An M25 message PLL holds (``sfm-PLL-info``)."""

    kind: str
    identifier: str
    sent_at: datetime
    author: Party | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Snapshot:
    """Everything a ``$getMedication`` shows for one patient, read in one transaction."""

    patient_id: str
    patient: dict[str, Any]
    lst: MedicationList | None
    entries: list[Entry]
    prescriptions: dict[str, Prescription]
    #: (id, content, prescription id) of the patient's dispensings
    dispenses: list[tuple[str, dict[str, Any], str | None]]
    allergies: list[dict[str, Any]]
    doctor: Party | None = None
    pharmacy: Party | None = None
    #: the list message (M25.1) PLL holds for the list's current version, if it came from
    #: another system (an import); otherwise the list itself is the message
    list_message: StoredMessage | None = None
    messages: list[StoredMessage] = field(default_factory=list)
    #: paper multidose beside the list: a risk the document shows, as every view of the list
    paper: PaperMultidose | None = None


@dataclass
class Shown:
    """What a document showed, so a later ``$sendMedication`` can be held to it."""

    entries: dict[str, int]
    heads: dict[str, int]
    list_version: int


def list_message_id(list_id: str, version: int) -> str:
    """The M25.1 message id of a list version: the same every time it is shown."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pll:{list_id}/{version}"))


def resept_id(rx: Prescription) -> str:
    """The prescription's ReseptId: as the prescriber's system gave it, else PLL's id."""
    for ident in rx.content.get("identifier") or []:
        if str((ident.get("type") or {}).get("text", "")).lower() == RESEPT_ID.lower():
            return str(ident["value"])
    return rx.id


def heads(prescriptions: dict[str, Prescription]) -> dict[str, Prescription]:
    """Prescriptions no other prescription renews: the heads of their chains."""
    renewed = {p.prior_id for p in prescriptions.values() if p.prior_id}
    return {i: p for i, p in prescriptions.items() if i not in renewed}


def _statement_dosage(content: dict[str, Any], fallback: str | None) -> list[dict[str, Any]]:
    dosages = content.get("dosage") or content.get("dosageInstruction") or []
    first = dict(dosages[0]) if dosages else {}
    if not first.get("text"):
        text = dosage_text(dosages) or fallback
        if text:
            first["text"] = text
    extensions = list(first.pop("extension", []) or [])
    category = content.get("category")
    # MedicationStatement.category is one concept; MedicationRequest.category a list
    use = c.code_of(
        category[0] if isinstance(category, list) and category else category, systems.TREATMENT_TYPE
    )
    if use:
        extensions.append(
            {
                "url": c.USE,
                "valueCodeableConcept": c.concept(
                    systems.TREATMENT_TYPE, use, _USE_DISPLAY.get(use)
                ),
            }
        )
    area = text_of(content.get("reasonCode"))
    if area:
        extensions.append(
            {"url": c.APPLICATION_AREA, "extension": [{"url": "text", "valueString": area}]}
        )
    out: dict[str, Any] = {}
    if extensions:
        out["extension"] = extensions
    out["sequence"] = 1
    for key in ("text", "patientInstruction", "additionalInstruction"):
        if first.get(key):
            out[key] = first[key]
    return [out] if len(out) > 1 else []


def write_document(
    snapshot: Snapshot,
    composition_id: str,
    reader: Author,
    now: datetime,
    *,
    history_since: datetime | None = None,
) -> tuple[dict[str, Any], Shown]:
    """The ``$getMedication`` answer (``Parameters``) and what it showed.

    ``history_since`` (SFM's ``historyTimestamp``) adds entries that ended since then, also
    those that have left the list after 90 days."""
    return _Writer(snapshot, composition_id, now).write(reader, history_since)


class _Writer:
    def __init__(self, snapshot: Snapshot, composition_id: str, now: datetime) -> None:
        self.snapshot, self.composition_id, self.now = snapshot, composition_id, now
        self.b = Builder(composition_id)
        self.composition: dict[str, Any] = {"resourceType": "Composition"}
        self.b.add(("Composition",), self.composition)
        patient = {
            **{k: v for k, v in snapshot.patient.items() if k not in ("meta", "text")},
            "meta": c.profile("sfm-Patient"),
        }
        self.patient_ref = {
            "reference": self.b.add(("Patient",), patient),
            "type": c.kind("sfm-Patient"),
            "display": _person_name(snapshot.patient),
        }
        self.rxs = snapshot.prescriptions
        self.successor_of = {p.prior_id: p for p in self.rxs.values() if p.prior_id}
        #: prescription id -> the urn of the statement that shows it
        self.statement_of_rx: dict[str, str] = {}
        #: heads shown with their entry: prescription id -> entry id
        self.entry_of_rx: dict[str, str] = {}

    def write(self, reader: Author, history_since: datetime | None) -> tuple[dict[str, Any], Shown]:
        shown = self._shown(history_since)
        statements = [self._statement(entry, head) for entry, head in shown]
        self._older_links(shown)
        info = _pll_info(self.b, self.snapshot, self.patient_ref, self.statement_of_rx)
        dispenses = [
            _dispense(self.b, did, content, rx_id, self.statement_of_rx, self.patient_ref)
            for did, content, rx_id in self.snapshot.dispenses
        ]
        self._composition(reader, statements, info, dispenses, self._allergies())
        bundle_id = str(uuid.uuid5(self.b.ns, "Bundle"))
        bundle = {
            "resourceType": "Bundle",
            "id": bundle_id,
            "meta": {
                "lastUpdated": instant(self.now),
                "profile": [f"{c.SD}/sfm-MedicationBundle"],
            },
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
            "type": "document",
            "timestamp": instant(self.now),
            "entry": self.b.entries,
        }
        lst = self.snapshot.lst
        return {
            "resourceType": "Parameters",
            "parameter": [{"name": "medication", "resource": bundle}],
        }, Shown(
            {e.id: e.version for e, _ in shown if e is not None},
            {h.id: h.version for _, h in shown if h is not None},
            lst.version if lst is not None else 0,
        )

    def _shown(
        self, history_since: datetime | None
    ) -> list[tuple[Entry | None, Prescription | None]]:
        """The section's statements: each entry shown with the head of its chain, then the
        prescriptions in use that no entry shows."""
        chain_heads = heads(self.rxs)
        out: list[tuple[Entry | None, Prescription | None]] = []
        for entry in self.snapshot.entries:
            recent = history_since is not None and (entry.ended_at or self.now) >= history_since
            if not (entry.visible_at(self.now) or (recent and entry.status in ENDED)):
                continue
            head = next((self.rxs[r] for r in entry.prescription_ids if r in chain_heads), None)
            out.append((entry, head))
            if head is not None:
                self.entry_of_rx[head.id] = entry.id
        for rx in chain_heads.values():
            if rx.id not in self.entry_of_rx and rx.status in RX_ACTIVE:
                out.append((None, rx))
        return out

    def _older_links(self, shown: list[tuple[Entry | None, Prescription | None]]) -> None:
        """The older links of the shown chains, reachable through ``basedOn``."""
        todo: list[str | None] = [h.prior_id for _, h in shown if h is not None]
        seen: set[str] = set()
        while todo:
            prior = todo.pop()
            if not prior or prior in seen or prior not in self.rxs:
                continue
            seen.add(prior)
            self._statement(None, self.rxs[prior])
            todo.append(self.rxs[prior].prior_id)

    def _key(self, entry: Entry | None, rx: Prescription | None) -> tuple[str, str]:
        if entry is not None:
            return ("MedicationStatement", entry.id)
        assert rx is not None  # noqa: S101 - a statement shows an entry, a prescription or both
        if rx.id in self.entry_of_rx:
            return ("MedicationStatement", self.entry_of_rx[rx.id])
        return ("MedicationStatement", f"rx/{rx.id}")

    def _statement(self, entry: Entry | None, rx: Prescription | None) -> dict[str, Any]:
        b = self.b
        content = entry.content if entry is not None else rx.content if rx else {}
        key = self._key(entry, rx)
        successor = self.successor_of.get(rx.id) if rx is not None else None
        identifiers = []
        if entry is not None:
            identifiers.append({"use": "usual", "type": {"text": PLL_ID}, "value": entry.id})
        if rx is not None:
            identifiers.append(
                {"use": "usual", "type": {"text": RESEPT_ID}, "value": resept_id(rx)}
            )
            self.statement_of_rx[rx.id] = b.urn(*key)
        resource: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "id": key[1].removeprefix("rx/"),
            "meta": c.profile("sfm-MedicationStatement"),
            "extension": self._extensions(entry, rx, successor),
            "identifier": identifiers,
        }
        link = c.kind("sfm-MedicationStatement")
        if rx is not None and rx.prior_id and rx.prior_id in self.rxs:
            prior = self.rxs[rx.prior_id]
            resource["basedOn"] = [{"reference": b.urn(*self._key(None, prior)), "type": link}]
        if successor is not None:
            resource["partOf"] = [{"reference": b.urn(*self._key(None, successor)), "type": link}]
        if entry is not None:
            resource["status"] = entry.status
        else:
            resource["status"] = "active" if rx and rx.status in RX_ACTIVE else "completed"
        resource["medicationReference"] = medication(
            b, content.get("medicationCodeableConcept") or {}
        )
        resource["subject"] = self.patient_ref
        start = content.get("effectiveDateTime") or (content.get("effectivePeriod") or {}).get(
            "start"
        )
        if entry is not None and start:
            # as SFM writes it: a plain-named extension with the date
            resource["extension"].insert(1, {"url": "effectiveDateTime", "valueDate": start[:10]})
        dssn = dosage_text((rx.content if rx else {}).get("dosageInstruction"))
        dosage = _statement_dosage(content, dssn)
        if dosage:
            resource["dosage"] = dosage
        b.add(key, resource)
        return {
            "reference": b.urn(*key),
            "type": link,
            "display": resource["medicationReference"]["display"],
        }

    def _extensions(
        self, entry: Entry | None, rx: Prescription | None, successor: Prescription | None
    ) -> list[dict[str, Any]]:
        b = self.b
        out = [amendment(rx, entry, resept_id(successor) if successor else None)]
        expired = expiry.shown(out[0], rx, local_day(self.now)) if rx is not None else None
        if rx is not None:
            out.append(reg_info(b, requester(rx), "1", rx.last_changed))
        elif entry is not None:
            source = entry.content.get("informationSource") or {}
            registrant = (
                Party(name=source.get("display"), hpr=(source.get("identifier") or {}).get("value"))
                if source
                else Party.of(entry.changed_by)
            )
            out.append(reg_info(b, registrant, "1", entry.last_changed))
        ended = entry is not None and entry.status in ENDED
        if entry is not None and ended:
            when = entry.ended_at or entry.last_changed
            out.append(reg_info(b, Party.of(entry.changed_by), "3", when))
        allowed = ((rx.content if rx else {}).get("substitution") or {}).get("allowedBoolean")
        if isinstance(allowed, bool):
            out.append(
                {
                    "url": c.SUBSTITUTION,
                    "extension": [{"url": "genericSubstitutionAccepted", "valueBoolean": allowed}],
                }
            )
        if entry is not None:
            if ended:
                out.append(discontinuation(entry))
            out += copy.deepcopy(c.ext(entry.content, c.ADMINISTRATION))
            if rx is None:
                out += copy.deepcopy(c.ext(entry.content, c.SUBSTITUTION))
        if rx is not None:
            summary = delivery_summary([d for d in self.snapshot.dispenses if d[2] == rx.id])
            if summary is not None:
                out.append(summary)
        if expired is not None:
            out.append(expired)
        return out

    def _allergies(self) -> list[dict[str, Any]]:
        refs = []
        for allergy in self.snapshot.allergies:
            resource = {
                **{k: v for k, v in allergy.items() if k not in ("meta", "text")},
                "patient": self.patient_ref,
            }
            urn = self.b.add(("AllergyIntolerance", str(allergy.get("id"))), resource)
            refs.append({"reference": urn, "type": c.kind("sfm-AllergyIntolerance")})
        return refs

    def _composition(
        self,
        reader: Author,
        statements: list[dict[str, Any]],
        info: list[dict[str, Any]],
        dispenses: list[dict[str, Any]],
        allergies: list[dict[str, Any]],
    ) -> None:
        party = Party.of(reader)
        authors = [r for r in (self.b.practitioner(party), self.b.organization(party)) if r]
        paper = self.snapshot.paper
        if paper is not None:
            # SFM has no element for it: PLL's extension, and the words in the PLL section
            self.composition["extension"] = multidose_extensions(Multidose(paper=paper))
        self.composition.update(
            {
                "id": self.composition_id,
                "meta": c.profile("sfm-MedicationComposition"),
                "identifier": {"use": "official", "value": self.composition_id},
                "status": "final",
                "type": {
                    "coding": [
                        {"system": systems.LOINC, "code": "11503-0", "display": "Medical records"}
                    ]
                },
                "subject": self.patient_ref,
                "date": self.now.date().isoformat(),
                "author": authors or [{"display": reader.label()}],
                "title": "Medication summary",
                "confidentiality": "N",
                "section": [
                    _section("sectionMedication", statements, "List of medications"),
                    _section("sectionPLLinfo", info, self._pll_info_text()),
                    _section("sectionAllergies", allergies, ""),
                    _section("sectionDispense", dispenses, "List of dispense messages"),
                    _section("sectionOtherPrescriptions", [], ""),
                ],
            }
        )

    def _pll_info_text(self) -> str:
        """``sectionPLLinfo``'s narrative: what a journal system that shows only text must
        see of the list's state (paper multidose beside it, a pause)."""
        words = ["Info read from M25"]
        if self.snapshot.paper is not None:
            words.append(PAPER_RISK)
        lst = self.snapshot.lst
        if lst is not None and lst.pause is not None:
            words.append(paused_words(lst.pause))
        return ". ".join(words)


def _person_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        text = " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
        if text:
            return text
    return "Pasient"


def _section(code: str, refs: list[dict[str, Any]], text: str) -> dict[str, Any]:
    title, display = c.SECTIONS[code]
    section: dict[str, Any] = {
        "title": title,
        "code": c.concept(c.SECTION_TYPES, code, display),
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{text or title}</div>',
        },
    }
    if refs:
        section["entry"] = refs
    else:
        section["emptyReason"] = c.concept(c.LIST_EMPTY, "unavailable", "Unavailable")
    return section


def _pll_info(
    b: Builder,
    snapshot: Snapshot,
    patient_ref: dict[str, Any],
    statement_of_rx: dict[str, str],
) -> list[dict[str, Any]]:
    lst = snapshot.lst
    parties = [p for p in (snapshot.doctor, snapshot.pharmacy) if p is not None]
    messages: list[StoredMessage] = []
    if snapshot.list_message is not None:
        messages.append(snapshot.list_message)
    elif lst is not None:
        messages.append(
            StoredMessage(
                "M25.1",
                list_message_id(lst.id, lst.version),
                lst.updated,
                Party.of(lst.baton) if lst.baton.role is not Role.SYSTEM else None,
            )
        )
    messages += [m for m in snapshot.messages if m.kind != "M25.1"]
    refs = []
    for message in messages:
        subs: list[dict[str, Any]] = []
        if "substitute" in message.detail:
            subs.append({"url": "substitute", "valueBoolean": bool(message.detail["substitute"])})
        # to the microsecond, as the sender gave it
        subs.append({"url": "PLLdate", "valueDateTime": message.sent_at.isoformat()})
        for party in parties:
            subs.append({"url": "relatedparties", "valueReference": b.role(party)})
        for d in message.detail.get("deliveries") or []:
            lines = _delivery_lines(b, d, statement_of_rx)
            subs.append({"url": "deliveryinformation", "extension": lines})
        resource: dict[str, Any] = {
            "resourceType": "Basic",
            "meta": c.profile("sfm-PLL-info"),
            "extension": [{"url": c.PLL_INFORMATION, "extension": subs}],
            "identifier": [{"use": "usual", "value": message.identifier}],
            "code": c.concept(c.MESSAGE_TYPE, message.kind, c.MESSAGES.get(message.kind)),
        }
        if message.kind == "M25.1":
            resource["subject"] = patient_ref
            if lst is not None and lst.pause is not None:
                # SFM has no element for a paused list: PLL's, on the list's own message
                by = b.role(Party.of(lst.pause.by), "Pause PLL")
                resource["extension"].append(paused_extension(lst.pause, by))
        if message.author is not None:
            resource["author"] = b.role(message.author, "PLL author")
        urn = b.add(("Basic", message.kind, message.identifier), resource)
        refs.append({"reference": urn, "type": c.kind("sfm-PLL-info"), "display": message.kind})
    return refs


def _delivery_lines(
    b: Builder, d: dict[str, Any], statement_of_rx: dict[str, str]
) -> list[dict[str, Any]]:
    """One ``deliveryinformation`` of a packing report (M25.3)."""
    lines: list[dict[str, Any]] = []
    if d.get("prescription") in statement_of_rx:
        lines.append(
            {
                "url": "prescriptionId",
                "valueReference": {
                    "reference": statement_of_rx[d["prescription"]],
                    "type": c.kind("sfm-MedicationStatement"),
                },
            }
        )
    for key, url in (("first_dose", "datefirstdose"), ("last_dose", "datelastdose")):
        if d.get(key):
            lines.append({"url": url, "valueDateTime": d[key]})
    if d.get("dispense"):
        lines.append(
            {
                "url": "deliverydoc",
                "valueReference": {
                    "reference": b.urn("MedicationDispense", d["dispense"]),
                    "type": c.kind("sfm-MedicationDispense"),
                },
            }
        )
    if d.get("ref_m10"):
        lines.append({"url": "refM10", "valueString": d["ref_m10"]})
    return lines


def _dispense(
    b: Builder,
    dispense_id: str,
    content: dict[str, Any],
    rx_id: str | None,
    statement_of_rx: dict[str, str],
    patient_ref: dict[str, Any],
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": dispense_id,
        "meta": c.profile("sfm-MedicationDispense"),
    }
    for key, item in content.items():
        if key in (
            "contained",
            "subject",
            "performer",
            "authorizingPrescription",
            "medicationReference",
            "medicationCodeableConcept",
        ):
            continue
        resource[key] = copy.deepcopy(item)
    contained = next(iter(content.get("contained") or []), None)
    if contained is not None:
        med = {k: v for k, v in contained.items() if k != "id"}
        med["meta"] = c.profile("sfm-Medication")
        fest = c.code_of(med.get("code"), FEST) or dispense_id
        med["id"] = resource_id(fest)
        urn = b.add(("Medication", fest), med)
        resource["medicationReference"] = {
            "reference": urn,
            "type": c.kind("sfm-Medication"),
            "display": (content.get("medicationReference") or {}).get("display"),
        }
    elif content.get("medicationCodeableConcept"):
        resource["medicationReference"] = medication(b, content["medicationCodeableConcept"])
    resource["subject"] = patient_ref
    performers = []
    for performer in content.get("performer") or []:
        actor = performer.get("actor") or {}
        ident = actor.get("identifier") or {}
        # a pharmacy PLL registered is named by organisation number, not HER-id
        her = ident.get("value") if ident.get("system") in (None, c.HER) else None
        ref = b.organization(Party(org_name=actor.get("display"), her=her))
        if ref is not None:
            performers.append({"actor": ref})
    if performers:
        resource["performer"] = performers
    if rx_id and rx_id in statement_of_rx:
        resource["authorizingPrescription"] = [
            {"reference": statement_of_rx[rx_id], "type": c.kind("sfm-MedicationStatement")}
        ]
    urn = b.add(("MedicationDispense", dispense_id), resource)
    return {
        "reference": urn,
        "type": c.kind("sfm-MedicationDispense"),
        "display": "sfm-MedicationDispense",
    }

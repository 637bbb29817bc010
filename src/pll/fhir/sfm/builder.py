"""The building blocks of an SFM Basis ``$getMedication`` document: :class:`Builder` keeps
the Bundle's entries with stable ``urn:uuid`` references (one resource per key, named from
the Composition's id, so the same list gives the same references), and makes the shared
parts — the medication, the prescriber, the registration info. Used by
:mod:`pll.fhir.sfm.document`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pll.domain.model import Prescription
from pll.fhir import systems
from pll.fhir.medication import FEST, resource_id
from pll.fhir.resources import instant
from pll.fhir.sfm import codes as c
from pll.fhir.sfm.parties import Party

#: who did what, in a registration info (``sfm-regInfo``'s ``type``)
ROLE_DISPLAY = {"1": "Forskrevet av", "3": "Seponert av"}


class Builder:
    def __init__(self, composition_id: str) -> None:
        self.ns = uuid.UUID(composition_id)
        self.entries: list[dict[str, Any]] = []
        self.urns: dict[tuple[str, ...], str] = {}

    def urn(self, *key: str) -> str:
        return f"urn:uuid:{uuid.uuid5(self.ns, '/'.join(key))}"

    def add(self, key: tuple[str, ...], resource: dict[str, Any]) -> str:
        if key in self.urns:
            return self.urns[key]
        urn = self.urn(*key)
        self.urns[key] = urn
        resource.setdefault("id", urn.removeprefix("urn:uuid:"))
        self.entries.append({"fullUrl": urn, "resource": resource})
        return urn

    # -- parties ---------------------------------------------------------------------------

    def practitioner(self, party: Party) -> dict[str, Any] | None:
        if not (party.hpr or party.name):
            return None
        resource: dict[str, Any] = {
            "resourceType": "Practitioner",
            "meta": c.profile("sfm-Practitioner"),
        }
        if party.hpr:
            resource["identifier"] = [
                {
                    "use": "official",
                    "type": {
                        "coding": [
                            {"system": "http://hl7.no/fhir/NamingSystem/HPR", "code": "HPR-nummer"}
                        ]
                    },
                    "system": systems.HPR,
                    "value": party.hpr,
                }
            ]
        if party.name:
            *given, family = party.name.split(" ") if " " in party.name else ("", party.name)
            name: dict[str, Any] = {"use": "official", "family": family}
            if any(given):
                name["given"] = [g for g in given if g]
            resource["name"] = [name]
        urn = self.add(("Practitioner", party.hpr or party.name or ""), resource)
        ref: dict[str, Any] = {"reference": urn, "type": c.kind("sfm-Practitioner")}
        if party.hpr:
            # SFM repeats the identifier in the reference, for readers that do not resolve it
            ref["identifier"] = resource["identifier"][0]
        ref["display"] = ", ".join(p for p in (party.name, party.hpr and f"HPR: {party.hpr}") if p)
        return ref

    def organization(self, party: Party) -> dict[str, Any] | None:
        if not (party.her or party.org_name):
            return None
        resource: dict[str, Any] = {
            "resourceType": "Organization",
            "meta": c.profile("sfm-Organization"),
        }
        identifiers = []
        if party.ako:
            identifiers.append(
                {
                    "use": "official",
                    "type": {"coding": [{"system": c.AKO, "code": "AKO"}]},
                    "value": party.ako,
                }
            )
        if party.her:
            identifiers.append({"use": "official", "system": c.HER, "value": party.her})
        if identifiers:
            resource["identifier"] = identifiers
        if party.org_name:
            resource["name"] = party.org_name
        if party.phone:
            resource["telecom"] = [{"system": "phone", "value": party.phone}]
        urn = self.add(("Organization", party.her or party.org_name or ""), resource)
        ref: dict[str, Any] = {"reference": urn, "type": c.kind("sfm-Organization")}
        if party.her:
            ref["identifier"] = {"use": "official", "system": c.HER, "value": party.her}
        display = ", ".join(p for p in (party.org_name, party.her and f"HER: {party.her}") if p)
        if party.phone:
            display += f", {party.phone}"
        ref["display"] = display
        return ref

    def role(self, party: Party, text: str | None = None) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "resourceType": "PractitionerRole",
            "meta": c.profile("sfm-PractitionerRole"),
        }
        practitioner = self.practitioner(party)
        if practitioner is not None:
            resource["practitioner"] = practitioner
        organization = self.organization(party)
        if organization is not None:
            resource["organization"] = organization
        if party.role:
            resource["code"] = [c.concept(c.PARTY_ROLE, party.role, c.PARTY_ROLES.get(party.role))]
        elif text:
            resource["code"] = [{"coding": [{"system": c.PARTY_ROLE}], "text": text}]
        key = ("PractitionerRole", party.hpr or "", party.her or "", party.role or text or "")
        urn = self.add(key, resource)
        display = party.label()
        if party.role:
            display += f", {party.role}:{c.PARTY_ROLES.get(party.role, '')}"
        return {"reference": urn, "type": c.kind("sfm-PractitionerRole"), "display": display}


def requester(rx: Prescription) -> Party:
    requester = rx.content.get("requester") or {}
    hpr = (requester.get("identifier") or {}).get("value")
    if hpr or requester.get("display"):
        return Party(name=requester.get("display"), hpr=hpr)
    return Party.of(rx.changed_by)


def medication(b: Builder, concept: dict[str, Any]) -> dict[str, Any]:
    codings = concept.get("coding") or []
    fest = next((x for x in codings if x.get("system") == FEST), None)
    atc = next((x for x in codings if x.get("system") == systems.ATC), None)
    name = concept.get("text") or (fest or {}).get("display") or (atc or {}).get("display")
    resource: dict[str, Any] = {"resourceType": "Medication", "meta": c.profile("sfm-Medication")}
    out_codings = []
    if fest:
        resource["id"] = resource_id(str(fest["code"]))
        resource["identifier"] = [
            {"use": "official", "type": {"text": "identifier"}, "value": fest["code"]}
        ]
        out_codings.append(
            {k: v for k, v in {**fest, "display": fest.get("display") or name}.items() if v}
        )
    if atc:
        out_codings.append({k: v for k, v in atc.items() if k in ("system", "code", "display")})
    resource["code"] = {"coding": out_codings} if out_codings else {"text": name}
    resource["status"] = "active"
    key = ("Medication", (fest or {}).get("code") or (atc or {}).get("code") or name or "")
    urn = b.add(key, resource)
    return {"reference": urn, "type": c.kind("sfm-Medication"), "display": name}


def reg_info(b: Builder, party: Party, role: str, when: datetime) -> dict[str, Any]:
    subs: list[dict[str, Any]] = [
        {"url": "status", "valueCodeableConcept": c.concept(c.REG_STATUS, "3", "Godkjent")},
        {
            "url": "type",
            "valueCodeableConcept": c.concept(c.PERFORMER_ROLES, role, ROLE_DISPLAY[role]),
        },
    ]
    provider = b.practitioner(party)
    if provider is not None:
        subs.append({"url": "provider", "valueReference": provider})
    subs.append({"url": "timestamp", "valueDateTime": instant(when)})
    return {"url": c.REG_INFO, "extension": subs}

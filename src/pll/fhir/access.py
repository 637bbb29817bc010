"""FHIR shapes of access: a patient's block as ``Consent``, the access log as ``AuditEvent``.

A block is a Consent with scope ``patient-privacy`` whose provision denies one actor, named
by HPR number (https://hl7.org/fhir/R4/consent.html, "deny" provisions). The access log is
AuditEvent (https://hl7.org/fhir/R4/auditevent.html) with the access basis in
``purposeOfEvent`` and a follow-up flag, such as an emergency access despite a block, in
``meta.tag`` and ``outcomeDesc``. A read served by the read copy names it as the
``source.observer``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from pll.auth.access import BASIS_SYSTEM, EMERGENCY_OVERRIDE, Basis
from pll.domain.errors import InvalidInput
from pll.fhir import systems
from pll.fhir.validate import validate

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
FLAG_SYSTEM = f"{systems.PLL_BASE}/CodeSystem/audit-flag"
_HPR_DIGITS = 9

_ACTIONS = {
    "read": ("R", "read"),
    "vread": ("R", "vread"),
    "history": ("R", "history-instance"),
    "search": ("R", "search-type"),
    "diff": ("R", "operation"),
    "create": ("C", "create"),
    "update": ("U", "update"),
    "delete": ("D", "delete"),
    # a list read served by the read copy (Kjernejournal's role), also while PLL was down
    "read-copy": ("R", "read"),
}
#: the AuditEvent ``source.observer`` of a read the read copy served, and of all others
READ_COPY_OBSERVER = "PLL read copy (Kjernejournal)"
_OBSERVER = "PLL"
_FLAG_TEXT = {
    EMERGENCY_OVERRIDE: (
        "Nødtilgang (HPAKUTT) til tross for pasientens sperre; følges opp av virksomheten."
    ),
}


def blocked_hpr(resource: dict[str, Any]) -> tuple[str, str]:
    """``(patient id, HPR number)`` of a Consent that blocks one health worker; anything
    else is refused with where it is wrong."""
    data = validate(resource, "Consent")
    if data.get("status", "active") != "active":
        raise InvalidInput("A new block is a Consent with status 'active'.", "Consent.status")
    ref = (data.get("patient") or {}).get("reference", "")
    if not isinstance(ref, str) or not ref.startswith("Patient/"):
        raise InvalidInput(
            "Name the patient: Consent.patient.reference = Patient/<id>.", "Consent.patient"
        )
    provision = data.get("provision") or {}
    if provision.get("type") != "deny":
        raise InvalidInput(
            "A block is a deny provision: Consent.provision.type = 'deny'.",
            "Consent.provision.type",
        )
    actors = provision.get("actor") or []
    if len(actors) != 1:
        raise InvalidInput(
            "A block names exactly one health worker (one provision.actor).",
            "Consent.provision.actor",
        )
    ident = (actors[0].get("reference") or {}).get("identifier") or {}
    where = "Consent.provision.actor[0].reference.identifier"
    if ident.get("system") != systems.HPR:
        raise InvalidInput(f"Name the health worker by HPR number ({systems.HPR}).", where)
    value = str(ident.get("value", ""))
    if not value.isascii() or not value.isdigit() or not 1 <= len(value) <= _HPR_DIGITS:
        raise InvalidInput(f"{value[:20]!r} is not an HPR number (1-9 digits).", where)
    return ref.removeprefix("Patient/"), normal_hpr(value)


def normal_hpr(value: str) -> str:
    """An HPR number as tokens carry it: digits without leading zeros ("09144889" is
    "9144889"), so a block matches the worker however the patient wrote the number."""
    return value.lstrip("0") or "0"


def consent(
    block_id: str,
    patient_id: str,
    hpr: str,
    created: datetime,
    ended: datetime | None,
    display: str | None = None,
) -> dict[str, Any]:
    """The stored form of a block."""
    actor: dict[str, Any] = {"identifier": {"system": systems.HPR, "value": hpr}}
    if display:
        actor["display"] = display
    period: dict[str, str] = {"start": created.isoformat()}
    if ended is not None:
        period["end"] = ended.isoformat()
    return {
        "resourceType": "Consent",
        "id": block_id,
        "meta": {"lastUpdated": (ended or created).isoformat()},
        "status": "inactive" if ended else "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [
            {
                "coding": [{"system": systems.LOINC, "code": "59284-0"}],
                "text": "Sperre av navngitt helsepersonell",
            }
        ],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": created.isoformat(),
        "provision": {
            "type": "deny",
            "period": period,
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "PRCP",
                            }
                        ]
                    },
                    "reference": actor,
                }
            ],
        },
    }


def audit_event(row: Any) -> dict[str, Any]:
    """One access-log record as AuditEvent, for the patient it concerns."""
    actor = orjson.loads(row.actor)
    code, interaction = _ACTIONS.get(row.action, ("E", "operation"))
    who: dict[str, Any] = {"display": actor.get("name", "")}
    if actor.get("hpr"):
        who["identifier"] = {"system": systems.HPR, "value": actor["hpr"]}
    elif actor.get("pid"):
        who["identifier"] = {"system": systems.FNR, "value": actor["pid"]}
    agents: list[dict[str, Any]] = [
        {
            "type": {"text": actor.get("role", "")},
            "who": who,
            "requestor": True,
        }
    ]
    if actor.get("org_id"):
        org: dict[str, Any] = {"identifier": {"system": systems.ORGNR, "value": actor["org_id"]}}
        if actor.get("org_name"):
            org["display"] = actor["org_name"]
        agents.append({"type": {"text": "organisation"}, "who": org, "requestor": False})
    if actor.get("client_id"):
        agents.append(
            {
                "type": {"text": "client system"},
                "who": {"display": actor["client_id"]},
                "requestor": False,
            }
        )
    entities: list[dict[str, Any]] = []
    if row.patient_id:
        entities.append({"what": {"reference": f"Patient/{row.patient_id}"}})
    if row.resource_id and row.resource_type != "Patient":
        entities.append({"what": {"reference": f"{row.resource_type}/{row.resource_id}"}})
    elif row.resource_type != "Patient":
        entities.append({"what": {"display": row.resource_type}})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}],
        "action": code,
        "recorded": row.recorded_at.isoformat(),
        "outcome": row.outcome,
        "agent": agents,
        "source": {
            "observer": {"display": READ_COPY_OBSERVER if row.action == "read-copy" else _OBSERVER}
        },
        "entity": entities,
    }
    if row.basis:
        try:
            display = Basis(row.basis).display
        except ValueError:
            display = row.basis
        event["purposeOfEvent"] = [
            {"coding": [{"system": BASIS_SYSTEM, "code": row.basis, "display": display}]}
        ]
    if row.outcome != "0":
        event["outcomeDesc"] = "Tilgang avvist"
    if row.flag:
        event["meta"] = {"tag": [{"system": FLAG_SYSTEM, "code": row.flag}]}
        event["outcomeDesc"] = _FLAG_TEXT.get(row.flag, row.flag)
    return event

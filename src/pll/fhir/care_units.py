"""Care-unit registrations in FHIR terms: what ``$care-unit-register`` and
``$care-unit-end`` take, and the ``EpisodeOfCare`` they answer with.

A registration is an ``EpisodeOfCare`` (https://hl7.org/fhir/R4/episodeofcare.html): the
patient, the unit as ``managingOrganization`` (orgnr and name), the kind of unit as
``type``, ``status`` active or finished, and ``period`` from registration to end. Nothing
here touches a database.
"""

from __future__ import annotations

from typing import Any

from pll.domain.care_units import CareRegistration, CareUnit, parse_unit
from pll.domain.errors import InvalidInput
from pll.domain.identifiers import check_orgnr
from pll.fhir import systems
from pll.fhir.parameters import Param, parameters
from pll.fhir.resources import author_reference, instant

#: The code system of the kinds of care unit (pll.domain.care_units.UnitKind).
KIND_SYSTEM = f"{systems.PLL_BASE}/CodeSystem/care-unit-kind"
#: The extension naming who registered the patient and who ended the registration.
REGISTERED_BY = f"{systems.PLL_BASE}/StructureDefinition/care-registered-by"
ENDED_BY = f"{systems.PLL_BASE}/StructureDefinition/care-ended-by"

_WHERE = "Parameters.parameter"


def _orgnr(param: Param) -> str:
    """The unit's orgnr from ``valueIdentifier`` or ``valueReference.identifier``."""
    if "valueIdentifier" in param.data:
        ident, where = param.data["valueIdentifier"] or {}, f"{param.where}.valueIdentifier"
    elif "valueReference" in param.data:
        ident = (param.data["valueReference"] or {}).get("identifier") or {}
        where = f"{param.where}.valueReference.identifier"
    else:
        raise InvalidInput(
            "Give 'organization' as valueIdentifier (or valueReference.identifier) with "
            f"system {systems.ORGNR} and the unit's organisation number.",
            param.where,
        )
    if ident.get("system") != systems.ORGNR or not ident.get("value"):
        raise InvalidInput(
            f"Name the care unit by its organisation number: system {systems.ORGNR}.", where
        )
    return str(ident["value"]).strip()


def orgnr_of(param: Param) -> tuple[str, str]:
    """A checked orgnr naming a care unit in ``param``, and where it stands."""
    return check_orgnr(_orgnr(param), f"{param.where}.value"), f"{param.where}.value"


def register_request(data: Any) -> CareUnit:
    """``$care-unit-register``: ``organization`` (the unit's orgnr), ``kind`` (sykehjem,
    hjemmetjeneste, omsorgsbolig) and optionally ``name``."""
    params = parameters(
        data, {"organization": False, "kind": False, "name": False}, "$care-unit-register"
    )
    org = params.required("organization", _WHERE)
    kind = params.required("kind", _WHERE)
    name = params.one("name")
    return parse_unit(
        _orgnr(org),
        kind.code(),
        name.text() if name else None,
        f"{org.where}.value",
        f"{kind.where}.valueCode",
    )


def end_request(data: Any) -> tuple[str, str]:
    """``$care-unit-end``: the unit's orgnr, and where it stands in the request."""
    params = parameters(data, {"organization": False}, "$care-unit-end")
    org = params.required("organization", _WHERE)
    orgnr = _orgnr(org)
    where = f"{org.where}.value"
    return check_orgnr(orgnr, where), where


def episode(registration: CareRegistration) -> dict[str, Any]:
    """The registration as an ``EpisodeOfCare``."""
    unit = registration.unit
    organization: dict[str, Any] = {
        "identifier": {"system": systems.ORGNR, "value": unit.orgnr},
        "display": unit.name or unit.label(),
    }
    period = {"start": instant(registration.started_at)}
    extension = [
        {"url": REGISTERED_BY, "valueReference": author_reference(registration.started_by)}
    ]
    if registration.ended_at is not None:
        period["end"] = instant(registration.ended_at)
    if registration.ended_by is not None:
        extension.append(
            {"url": ENDED_BY, "valueReference": author_reference(registration.ended_by)}
        )
    return {
        "resourceType": "EpisodeOfCare",
        "id": registration.id,
        "extension": extension,
        "status": "active" if registration.open else "finished",
        "type": [{"coding": [{"system": KIND_SYSTEM, "code": unit.kind.value}]}],
        "patient": {"reference": f"Patient/{registration.patient_id}"},
        "managingOrganization": organization,
        "period": period,
    }

"""A care unit's settings in FHIR terms (issue 17, docs/administration.md "Unit settings"):
what ``POST Organization/$care-unit-settings`` takes and what it and the ``GET`` answer.

The settings are a ``Parameters`` resource (https://hl7.org/fhir/R4/parameters.html):

- ``organization``: the unit, ``valueIdentifier`` with system
  ``urn:oid:2.16.578.1.12.4.1.4.101`` (or ``valueReference.identifier``);
- one parameter per round, named as the round (``morgen``, ``formiddag``, ``middag``,
  ``ettermiddag``, ``kveld``, ``natt``), ``valueTime`` (``HH:MM:00``, local time);
- ``secondSignatureGroupB``: ``valueBoolean``, whether drugs of prescription group B need
  a second signer at this unit (group A always does).

Setting them gives every part: nothing is left to a default the caller did not see. The
answer adds ``validFrom`` (``valueDate``: the first day they apply), ``setAt``
(``valueInstant``) and ``setBy`` (``valueReference``, absent for the defaults). Nothing
here touches a database.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from pll.domain.administration.slots import SLOTS, Slot
from pll.domain.administration.unit_settings import UnitSettings
from pll.domain.errors import InvalidInput
from pll.fhir import systems
from pll.fhir.care_units import orgnr_of
from pll.fhir.parameters import parameters
from pll.fhir.resources import author_reference, instant

GROUP_B = "secondSignatureGroupB"
_WHERE = "Parameters.parameter"
_OPERATION = "$care-unit-settings"


def settings_request(data: Any) -> tuple[str, dict[Slot | str, time], bool, dict[str, str]]:
    """The unit's orgnr, the time of each round, the group B choice, and where each part
    stands (by round name; ``organization`` under its own name). Refused with
    ``InvalidInput`` naming the parameter: a missing part, a time with seconds."""
    known = {"organization": False, GROUP_B: False} | {str(slot): False for slot in SLOTS}
    params = parameters(data, known, _OPERATION)
    org = params.required("organization", _WHERE)
    orgnr, org_where = orgnr_of(org)
    where = {"organization": org_where}
    times: dict[Slot | str, time] = {}
    for slot in SLOTS:
        param = params.required(str(slot), _WHERE)
        raw = str(param.value("Time"))
        where[str(slot)] = f"{param.where}.valueTime"
        try:
            clock = time.fromisoformat(raw)
        except ValueError:  # pragma: no cover - the FHIR model refuses a bad time first
            raise InvalidInput(f"{raw!r} is not a time (HH:MM:SS).", where[str(slot)]) from None
        if clock.second or clock.microsecond:
            raise InvalidInput(
                f"The time of round {slot} is in hours and minutes: {raw!r} has seconds.",
                where[str(slot)],
            )
        times[slot] = clock
    group_b = params.required(GROUP_B, _WHERE).value("Boolean")
    if not isinstance(group_b, bool):  # pragma: no cover - the FHIR model refuses it first
        raise InvalidInput(f"Give {GROUP_B!r} as valueBoolean.", _WHERE)
    return orgnr, times, group_b, where


def settings_resource(settings: UnitSettings) -> dict[str, Any]:
    """The settings as ``Parameters`` (see the module)."""
    parameter: list[dict[str, Any]] = [
        {
            "name": "organization",
            "valueIdentifier": {"system": systems.ORGNR, "value": settings.orgnr},
        },
        *({"name": str(slot), "valueTime": f"{settings.times[slot]:%H:%M:00}"} for slot in SLOTS),
        {"name": GROUP_B, "valueBoolean": settings.group_b_second_signature},
    ]
    if settings.set_at is not None and settings.set_by is not None:
        parameter += [
            {"name": "validFrom", "valueDate": settings.valid_from.isoformat()},
            {"name": "setAt", "valueInstant": instant(settings.set_at)},
            {"name": "setBy", "valueReference": author_reference(settings.set_by)},
        ]
    return {"resourceType": "Parameters", "parameter": parameter}

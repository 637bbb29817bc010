"""The demo's nursing home (issue 17): some of the demo's patients live at *Oslo kommune
sykehjem Ullern*, the unit of the ``nursing-home-nurse`` and ``care-worker`` personas, so
``/kurve`` shows a unit with patients and their day from the first login."""

from __future__ import annotations

from collections.abc import Sequence

from pll.auth.access import Access, Basis
from pll.auth.tokens import PERSONAS
from pll.domain.model import Author, Role
from pll.fhir import systems
from pll.services.care_units import CareUnitService
from pll.services.lists import PLLService
from pll.store import repository as repo

#: How many of the demo's patients live at the nursing home.
RESIDENTS = 8
PERSONA = "nursing-home-nurse"


def register_residents(service: PLLService, numbers: Sequence[str]) -> int:
    """Register the patients with the fødselsnumre ``numbers[1:RESIDENTS + 1]`` (the first
    is the GP persona's own, in Bergen, and is left at home) with the persona's nursing
    home, as its nurse; returns how many were registered."""
    p = PERSONAS[PERSONA]
    nurse = Author(name=p.name, role=Role.NURSE, hpr=p.hpr, org_id=p.org_id, org_name=p.org_name)
    access = Access(nurse, Basis.TREATMENT, "pll-demo")
    units = CareUnitService(service)
    with service.db.read() as conn:
        rows = [repo.find_patient(conn, systems.FNR, fnr) for fnr in numbers[1 : RESIDENTS + 1]]
    chosen = [row.id for row in rows if row is not None]
    for pid in chosen:
        units.register(
            access,
            pid,
            {
                "resourceType": "Parameters",
                "parameter": [
                    {
                        "name": "organization",
                        "valueIdentifier": {
                            "system": "urn:oid:2.16.578.1.12.4.1.4.101",
                            "value": p.org_id,
                        },
                    },
                    {"name": "kind", "valueCode": "sykehjem"},
                    {"name": "name", "valueString": p.org_name},
                ],
            },
        )
    return len(chosen)

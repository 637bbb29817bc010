"""The people and organisations an SFM Basis document names, as PLL keeps them: :class:`Party`,
read from a ``Practitioner``, an ``Organization`` or ``sfm-regInfo``'s display (a
``PractitionerRole`` joins the two in :mod:`pll.fhir.sfm.reading`, which resolves its references).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pll.domain.model import Author, Role
from pll.fhir import systems
from pll.fhir.sfm import codes as c


@dataclass
class Party:
    """A person and/or an organisation as SFM names them (``PractitionerRole``)."""

    name: str | None = None
    hpr: str | None = None
    org_name: str | None = None
    her: str | None = None
    ako: str | None = None
    phone: str | None = None
    #: kodeverk 7490: M Multidoseansvarlig lege, A Ansvarlig farmasøyt
    role: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Party:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})

    @classmethod
    def of(cls, author: Author) -> Party:
        return cls(
            name=author.name if author.role is not Role.SYSTEM else None,
            hpr=author.hpr,
            org_name=author.org_name,
            her=author.her,
        )

    def author(self, role: Role) -> Author:
        return Author(
            name=self.name or self.org_name or "ukjent",
            role=role,
            hpr=self.hpr,
            org_name=self.org_name,
            her=self.her,
        )

    def label(self) -> str:
        parts = [p for p in (self.name, self.hpr and f"HPR: {self.hpr}") if p]
        if self.org_name or self.her:
            parts += [p for p in (self.org_name, self.her and f"HER: {self.her}") if p]
        if self.phone:
            parts.append(self.phone)
        return ", ".join(parts) or "ukjent"


def person_name(resource: dict[str, Any]) -> str | None:
    """A ``Practitioner``'s name as one text: given names, middle names, family name."""
    for name in resource.get("name") or []:
        middle = [str(c.value(e)) for e in c.ext(name, c.MIDDLE_NAME)]
        parts = [*(name.get("given") or []), *middle, name.get("family")]
        text = " ".join(str(p) for p in parts if p)
        if text:
            return text
    return None


def practitioner(resource: dict[str, Any]) -> Party:
    """A ``Practitioner``: its name and HPR number."""
    hpr = None
    for ident in resource.get("identifier") or []:
        if ident.get("system") == systems.HPR:
            hpr = str(ident.get("value"))
    return Party(name=person_name(resource), hpr=hpr)


def display_party(reg: dict[str, Any]) -> Party:
    """The person ``sfm-regInfo`` names only by its ``provider.display``."""
    provider = c.sub_value(reg, "provider")
    display = provider.get("display") if isinstance(provider, dict) else None
    return Party(name=str(display).split(",")[0] if display else None)


def organization(resource: dict[str, Any]) -> Party:
    """An ``Organization``: its name, HER-id, AKO and phone."""
    party = Party(org_name=resource.get("name"))
    for ident in resource.get("identifier") or []:
        if ident.get("system") == c.HER:
            party.her = str(ident.get("value"))
        elif c.code_of(ident.get("type"), c.AKO) == "AKO":
            party.ako = str(ident.get("value"))
    for telecom in resource.get("telecom") or []:
        if telecom.get("system") == "phone":
            party.phone = telecom.get("value")
    return party

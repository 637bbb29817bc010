"""e-multidose from the doctor's list page (issue 18): register as the patient's responsible
multidose doctor with one multidose pharmacy, end the registration, and mark or unmark an
entry as packed in multidose.

The registration goes through the same use case as ``$multidose-register`` and
``$multidose-end`` (:class:`~pll.services.multidose.MultidoseService`), with the Parameters a
journal system sends. The pharmacy is chosen from the organisation register's pharmacies
(``pll stats organisations``), or given by organisation number and name when the register
does not have it. Marking is a change of the entry like any other (relay baton, decision
support, the packing rule of :mod:`pll.domain.multidose_packing`, audit, event); a refusal
comes back on the page in Norwegian with what was chosen or typed.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.responses import Response

from pll.domain.errors import Forbidden, InvalidInput
from pll.domain.model import Pharmacy
from pll.domain.multidose import ADMINISTRATION, PACKED, packed_in_multidose
from pll.domain.multidose_packing import NotPackable
from pll.fhir import systems
from pll.services.lists import Op
from pll.services.multidose import MultidoseService
from pll.services.pharmacies import pharmacies as registered_pharmacies
from pll.stats.organisations import orgnr_valid
from pll.web import forms
from pll.web.doctor.common import entry_of, entry_version, patient_url, updated
from pll.web.doctor.saving import save
from pll.web.edge import Web, norwegian, require

#: the choice of "a pharmacy not in the register" in the pharmacy list
OTHER = "annet"


def _service(web: Web) -> MultidoseService:
    return MultidoseService(web.service)


def pharmacies(web: Web) -> list[Pharmacy]:
    """The pharmacies the registration form offers."""
    return registered_pharmacies(web.service.db)


def _chosen(web: Web) -> Pharmacy:
    """The pharmacy the doctor chose from the register, or typed."""
    choice = web.field("apotek")
    if choice and choice != OTHER:
        found = next((p for p in pharmacies(web) if p.org_id == choice), None)
        require(found is not None, "Velg et apotek fra listen.", "apotek")
        assert found is not None  # noqa: S101 - require refused otherwise
        return found
    orgnr = web.field("orgnr").replace(" ", "")
    require(bool(orgnr), "Velg apoteket, eller skriv organisasjonsnummeret.", "orgnr")
    require(
        orgnr_valid(orgnr),
        f"{orgnr[:20]} er ikke et gyldig organisasjonsnummer (ni siffer med kontrollsiffer).",
        "orgnr",
    )
    name = web.field("apoteknavn").strip()[:200]
    require(bool(name), "Skriv apotekets navn.", "apoteknavn")
    return Pharmacy(name, orgnr)


def register(web: Web) -> Response:
    """Register the calling doctor as responsible multidose doctor with the chosen pharmacy
    (M27): the same use case as ``$multidose-register``."""
    pid = web.path_id("pid")
    pharmacy = _chosen(web)
    reference: dict[str, Any] = {
        "identifier": {"system": systems.ORGNR, "value": pharmacy.org_id},
        "display": pharmacy.name,
    }
    parameters: list[dict[str, Any]] = [{"name": "pharmacy", "valueReference": reference}]
    if pharmacy.her:
        parameters.append({"name": "pharmacyHer", "valueString": pharmacy.her})
    data = {"resourceType": "Parameters", "parameter": parameters}
    answer = _service(web).register(web.access(pid), pid, data, None)
    if _version_of(answer) is None:
        web.notice("E-multidose var allerede registrert slik; ingenting er endret.")
    else:
        web.notice(
            f"E-multidose er registrert: du er multidoseansvarlig lege, og {pharmacy.name} er "
            "multidoseapotek. Merk legemidlene som skal pakkes i multidose."
        )
    return web.redirect(patient_url(pid))


def end(web: Web) -> Response:
    """End the e-multidose registration (only the registered doctor may, M27)."""
    pid = web.path_id("pid")
    reason = web.field("grunn").strip()[:200]
    data: dict[str, Any] = {"resourceType": "Parameters"}
    if reason:  # FHIR has no empty arrays
        data["parameter"] = [{"name": "reason", "valueString": reason}]
    try:
        _service(web).end(web.access(pid), pid, data, None)
    except Forbidden as exc:
        if exc.norwegian is None:
            # the access policy refuses Verb.DECIDE to any but the responsible doctor, in
            # English (journal systems match on it); the page says it in Norwegian
            exc.norwegian = (
                "Bare pasientens multidoseansvarlige lege kan avslutte e-multidose. "
                "Ingenting ble endret."
            )
        raise
    web.notice("E-multidose er avsluttet. Apoteket pakker ikke lenger for pasienten.")
    return web.redirect(patient_url(pid))


def _version_of(answer: dict[str, Any]) -> int | None:
    return next(
        (
            int(p["valueInteger"])
            for p in answer.get("parameter", [])
            if p.get("name") == "listVersion" and "valueInteger" in p
        ),
        None,
    )


def marked(content: dict[str, Any], packed: bool) -> dict[str, Any]:
    """The entry's content with the multidose mark set (or taken off), keeping whatever
    else SFM's administration extension says (``nocombination``)."""
    out = copy.deepcopy(content)
    others = [e for e in out.get("extension") or [] if e.get("url") != ADMINISTRATION]
    held = next((e for e in out.get("extension") or [] if e.get("url") == ADMINISTRATION), None)
    subs = [s for s in (held or {}).get("extension") or [] if s.get("url") != PACKED]
    subs.append({"url": PACKED, "valueBoolean": packed})
    out["extension"] = [*others, {"url": ADMINISTRATION, "extension": subs}]
    return out


def set_packed(web: Web) -> Response:
    """Mark an entry as packed in multidose, or take it out of the bags: a change of the
    entry under the relay baton. Marking is refused, in Norwegian, unless the entry is
    packable (:mod:`pll.domain.multidose_packing`)."""
    pid, entry_id = web.path_id("pid"), web.path_id("eid")
    version = entry_version(web)
    choice = web.field("pakk")
    require(choice in ("ja", "nei"), "Velg om legemidlet skal pakkes i multidose.", "pakk")
    packed = choice == "ja"

    def ops() -> list[Op]:
        _, entry = entry_of(web, pid, entry_id)
        content = forms.without_meta(entry.content)
        if packed_in_multidose(content) == packed:
            raise InvalidInput(
                "Legemidlet er allerede merket slik.",
                "pakk",
            )
        return [updated(web, entry_id, marked(content, packed), version)]

    done = (
        "Legemidlet er merket for pakking i multidose."
        if packed
        else "Legemidlet pakkes ikke lenger i multidose."
    )
    try:
        return save(web, pid, ops, None, done, form_page=False)
    except NotPackable as exc:
        # the packing rule's reason, in Norwegian, on the list page (the edge shows a
        # refused form again for bad input and conflicts)
        raise InvalidInput(norwegian(exc)) from None

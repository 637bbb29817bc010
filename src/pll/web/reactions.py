"""The doctor's pages for a patient's drug reactions (CAVE, *legemiddelreaksjoner*).

A doctor registers, changes and ends a reaction here; the page builds the same
``AllergyIntolerance`` a journal system sends to ``/fhir/AllergyIntolerance`` and hands it
to the same :class:`~pll.services.allergies.Allergies`, so access, versions (``If-Match``),
audit and decision support's CAVE check are the API's own. What a doctor types wrong comes
back beside the field, in Norwegian, with what was typed kept; nothing is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.routing import Route

from pll.domain.errors import DomainError, InvalidInput, RuleRefused, VersionConflict
from pll.fhir import systems
from pll.services.allergies import ATC_CODE, CLINICAL, Allergies
from pll.services.catalogue import Catalogue
from pll.web import forms
from pll.web.banner import CRITICALITY_NAMES, SEVERITY_NAMES, reaction_line
from pll.web.edge import Web, doctors, norwegian, whole

SEARCH_LIMIT = 15
#: The form's fields, kept as typed when the page comes back with a message.
FIELDS = ("what", "atc", "reaction", "severity", "criticality", "note")
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
STATUS_NAMES = {"active": "Aktiv", "inactive": "Inaktiv", "resolved": "Avsluttet"}
#: How a reaction ends: no longer a reaction (resolved), or recorded in error.
ENDINGS = {
    "resolved": "Gjelder ikke lenger",
    "entered-in-error": "Registrert ved en feil",
}


def _url(pid: str, rest: str = "") -> str:
    return f"/lege/pasient/{pid}/reaksjoner{rest}"


def _service(web: Web) -> Allergies:
    return Allergies(web.service)


def _status(resource: dict[str, Any]) -> str:
    for coding in (resource.get("verificationStatus") or {}).get("coding") or []:
        if coding.get("code") == "entered-in-error":
            return "Feilregistrert"
    code = next(
        (c.get("code") for c in (resource.get("clinicalStatus") or {}).get("coding") or []),
        "active",
    )
    return STATUS_NAMES.get(str(code), str(code))


def _atc(resource: dict[str, Any]) -> str:
    return next(
        (
            str(c.get("code"))
            for c in (resource.get("code") or {}).get("coding") or []
            if c.get("system") == systems.ATC
        ),
        "",
    )


def _values(resource: dict[str, Any]) -> dict[str, str]:
    """A stored reaction as the form's fields."""
    line = reaction_line(resource)
    severity = next((r.get("severity") for r in resource.get("reaction") or []), "") or ""
    return {
        "what": str((resource.get("code") or {}).get("text") or line.what),
        "atc": _atc(resource),
        "reaction": line.reaction,
        "severity": str(severity),
        "criticality": str(resource.get("criticality") or ""),
        "note": "; ".join(n.get("text", "") for n in resource.get("note") or []),
    }


def _page(
    web: Web,
    pid: str,
    *,
    values: dict[str, str] | None = None,
    editing: dict[str, Any] | None = None,
) -> Response:
    """The reactions page (the form to change ``editing``, when given) with ``values`` in
    its form; a refused form's values and messages come from the edge (:meth:`Web.render`)."""
    query = web.query("q")
    found: list[tuple[str, str]] = []
    if query:
        for drug in Catalogue(web.service.db).search(name=query, count=SEARCH_LIMIT):
            concept = forms.medication_concept(drug)
            atc = next(
                (c["code"] for c in concept["coding"] if c.get("system") == systems.ATC), None
            )
            if atc:
                found.append((atc, concept["text"]))
    if editing is None:
        stored = _service(web).search(web.access(pid), pid)
        shown = [
            {
                "id": r["id"],
                "version": r["meta"]["versionId"],
                "line": reaction_line(r),
                "status": _status(r),
                "active": _status(r) == "Aktiv",
                "recorded": r["meta"].get("lastUpdated", ""),
            }
            for r in stored
        ]
    else:
        shown = []
    return web.render(
        "doctor/reactions.html",
        pid=pid,
        fnr=web.fnr(pid),
        reactions=shown,
        values=values or {},
        errors={},
        editing=editing,
        query=query,
        found=found,
        severities=SEVERITY_NAMES,
        criticalities=CRITICALITY_NAMES,
        endings=ENDINGS,
    )


def reactions_page(web: Web) -> Response:
    """The patient's reactions, current and ended, and the form to register one."""
    pid = web.path_id("pid")
    picked = web.query("atc")
    values = {"atc": picked, "what": web.query("navn")} if picked else None
    return _page(web, pid, values=values)


def _typed(web: Web) -> dict[str, str]:
    return {name: web.field(name)[:500] for name in FIELDS}


def _checked(values: dict[str, str]) -> dict[str, str]:
    """The form's values, or :class:`InvalidInput` naming each field at fault, in Norwegian
    (before any service is asked); the edge shows the form again with them."""
    problems: list[tuple[str, str]] = []
    if not values["what"]:
        problems.append(("Skriv hvilket legemiddel eller virkestoff reaksjonen gjelder.", "what"))
    if not values["atc"]:
        problems.append(
            (
                "Skriv ATC-koden (for eksempel J01CA for penicilliner), eller velg legemiddelet "
                "fra søket: uten kode kan beslutningsstøtten ikke varsle om reaksjonen.",
                "atc",
            )
        )
    elif not ATC_CODE.fullmatch(values["atc"].upper()):
        problems.append(
            (
                f"«{values['atc'][:20]}» er ikke en ATC-kode; den har form som J01, J01C "
                "eller J01CA04.",
                "atc",
            )
        )
    if values["severity"] and values["severity"] not in SEVERITY_NAMES:
        problems.append(("Velg alvorlighet fra listen.", "severity"))
    if values["criticality"] and values["criticality"] not in CRITICALITY_NAMES:
        problems.append(("Velg kritikalitet fra listen.", "criticality"))
    if problems:
        (message, where), *others = problems
        raise InvalidInput(message, where, others=[(m, w) for m, w in others])
    return values


def _resource(pid: str, values: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    """The AllergyIntolerance the form describes, on ``base`` (the stored one when changed):
    what a journal system would send."""
    resource = {k: v for k, v in base.items() if k not in ("meta", "text")}
    resource |= {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": f"Patient/{pid}"},
        "category": ["medication"],
        "code": {
            "coding": [{"system": systems.ATC, "code": values["atc"].upper()}],
            "text": values["what"],
        },
    }
    for name in ("criticality", "reaction", "note"):
        resource.pop(name, None)
    if values["criticality"]:
        resource["criticality"] = values["criticality"]
    if values["reaction"] or values["severity"]:
        reaction: dict[str, Any] = {
            "manifestation": [{"text": values["reaction"] or "Ikke beskrevet"}]
        }
        if values["severity"]:
            reaction["severity"] = values["severity"]
        resource["reaction"] = [reaction]
    if values["note"]:
        resource["note"] = [{"text": values["note"]}]
    return resource


def _saving(web: Web, pid: str, save: Callable[[], list[Any]], done: str) -> Response:
    """Save; a refusal comes back as the form, as typed, with the message beside its field
    or at the top (the edge's refused-form mechanism)."""
    try:
        found = save()
    except VersionConflict:
        raise InvalidInput(
            "Reaksjonen er endret av en annen siden du åpnet den. Last siden på nytt og "
            "gjør endringen igjen; ingenting ble lagret."
        ) from None
    except (RuleRefused, InvalidInput) as exc:
        # the service's refusal, in Norwegian: beside the code when it is about the code
        where = "atc" if ".code" in (exc.expression or "") else None
        raise InvalidInput(norwegian(exc), where) from None
    web.notice(done)
    web.notice_findings(found)
    return web.redirect(_url(pid))


def register(web: Web) -> Response:
    pid = web.path_id("pid")
    values = _checked(_typed(web))

    def save() -> list[Any]:
        _, found = _service(web).create(web.access(pid), _resource(pid, values, {}))
        return found

    return _saving(web, pid, save, f"Legemiddelreaksjonen «{values['what']}» er registrert.")


def _stored(web: Web, pid: str) -> tuple[str, dict[str, Any]]:
    rid = web.path_id("rid")
    stored = _service(web).read(web.access(pid), rid)
    if stored.patient_id != pid:
        raise InvalidInput("Reaksjonen hører ikke til denne pasienten.", "reaction")
    return rid, orjson.loads(stored.text)


def change_page(web: Web) -> Response:
    pid = web.path_id("pid")
    _, resource = _stored(web, pid)
    return _page(web, pid, values=_values(resource), editing=resource)


def change(web: Web) -> Response:
    pid = web.path_id("pid")
    rid, resource = _stored(web, pid)
    version = whole(web.field("version"), "version")
    values = _checked(_typed(web))

    def save() -> list[Any]:
        _, found = _service(web).update(
            web.access(pid), rid, _resource(pid, values, resource), version
        )
        return found

    done = f"Legemiddelreaksjonen «{values['what']}» er endret."
    return _saving(web, pid, save, done)


def end(web: Web) -> Response:
    """End a reaction: it no longer applies (resolved), or it was recorded in error."""
    pid = web.path_id("pid")
    rid, resource = _stored(web, pid)
    version = whole(web.field("version"), "version")
    how = web.field("how")
    if how not in ENDINGS:
        raise InvalidInput("Velg hvorfor reaksjonen avsluttes.", "how")
    ended = {k: v for k, v in resource.items() if k not in ("meta", "text")}
    if how == "resolved":
        ended["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "resolved"}]}
    else:
        ended["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "inactive"}]}
        ended["verificationStatus"] = {
            "coding": [{"system": VERIFICATION, "code": "entered-in-error"}]
        }
    try:
        _service(web).update(web.access(pid), rid, ended, version)
    except VersionConflict:
        raise DomainError(
            "Reaksjonen er endret av en annen siden du åpnet siden. Last siden på nytt; "
            "ingenting ble endret."
        ) from None
    web.notice(f"Legemiddelreaksjonen «{reaction_line(resource).what}» er avsluttet.")
    return web.redirect(_url(pid))


ROUTES = [
    Route("/lege/pasient/{pid}/reaksjoner", doctors(reactions_page), methods=["GET"]),
    Route(
        "/lege/pasient/{pid}/reaksjoner",
        doctors(register, form=reactions_page),
        methods=["POST"],
    ),
    Route("/lege/pasient/{pid}/reaksjoner/{rid}", doctors(change_page), methods=["GET"]),
    Route(
        "/lege/pasient/{pid}/reaksjoner/{rid}",
        doctors(change, form=change_page),
        methods=["POST"],
    ),
    Route("/lege/pasient/{pid}/reaksjoner/{rid}/avslutt", doctors(end), methods=["POST"]),
]

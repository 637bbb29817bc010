"""The patient banner and the emergency-access banner (DESIGN §3 rules 5 and 9).

:meth:`pll.web.edge.Web.render` adds both to every page it renders, so no page can forget
them: the patient banner whenever the route names a patient (``{pid}``) and the worker has
stated a basis for them; the emergency banner on every page while the worker holds an
emergency basis (``HPAKUTT``) for any patient. What the banner shows is read in one
statement by :class:`~pll.services.patients.PatientSummaries`; this module only names and
orders it, in Norwegian.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from pll.auth.access import Basis
from pll.domain.errors import DomainError, Forbidden, InvalidInput
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import CLINICIANS, Role
from pll.services.patients import PatientSummaries, PatientSummary
from pll.web.views import ListView, list_view

#: Roles whose pages about a patient carry the banner (the patient's own pages do not).
HEALTH_PERSONNEL = CLINICIANS | {Role.PHARMACIST, Role.CARE_WORKER}
SEX_NAMES = {"male": "Mann", "female": "Kvinne", "other": "Annet", "unknown": "Ukjent"}
SEVERITY_NAMES = {"mild": "mild", "moderate": "moderat", "severe": "alvorlig"}
CRITICALITY_NAMES = {
    "low": "lav kritikalitet",
    "high": "høy kritikalitet",
    "unable-to-assess": "kritikalitet ikke vurdert",
}
#: Ages are counted on the day it is in Norway.
OSLO = ZoneInfo("Europe/Oslo")


@dataclass
class ReactionLine:
    """One active drug reaction as the banner shows it."""

    id: str
    what: str
    reaction: str
    severity: str
    criticality: str
    high: bool

    @property
    def text(self) -> str:
        said = [self.reaction] if self.reaction else []
        said += [x for x in (self.severity, self.criticality) if x]
        return f"{self.what} ({', '.join(said)})" if said else self.what


@dataclass
class PatientBanner:
    patient_id: str
    name: str
    age: int | None
    sex: str
    identifier: str
    identifier_kind: str
    lst: ListView | None
    reactions: list[ReactionLine] = field(default_factory=list)
    emergency: bool = False
    #: the doctor's page for the patient's drug reactions, for those who have it
    reactions_url: str | None = None


def name_of(patient: dict[str, Any]) -> str:
    """The patient's name as written: the first ``name``'s text, else given names and family."""
    for name in patient.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("given") or []), name.get("family") or ""]
        joined = " ".join(str(p) for p in parts if p)
        if joined:
            return joined
    return "Navn ikke registrert"


def age_on(born: date, today: date) -> int:
    """Whole years from ``born`` to ``today`` (a birthday on 29 February counts on 1 March)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _born_and_sex(summary: PatientSummary) -> tuple[date | None, str]:
    """The birth date and sex the Patient records; where it records none, what the
    fødselsnummer or D-nummer encodes (the birth date; the ninth digit, odd for men and
    even for women, as the Folkeregister assigns it)."""
    born: date | None = None
    raw = summary.patient.get("birthDate")
    if isinstance(raw, str) and len(raw) == 10:
        try:
            born = date.fromisoformat(raw)
        except ValueError:
            born = None
    sex = SEX_NAMES.get(str(summary.patient.get("gender")), "")
    try:
        parsed = parse_person_identifier(summary.identifier_system, summary.identifier)
    except InvalidInput:
        return born, sex
    if born is None:
        born = parsed.birth_date
    if not sex:
        sex = "Mann" if int(summary.identifier[8]) % 2 else "Kvinne"
    return born, sex


def _text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    return str(
        concept.get("text")
        or next((c.get("display") for c in concept.get("coding") or [] if c.get("display")), "")
        or next((c.get("code") for c in concept.get("coding") or [] if c.get("code")), "")
    )


def reaction_line(resource: dict[str, Any]) -> ReactionLine:
    reactions = resource.get("reaction") or []
    manifestations = [_text(m) for r in reactions for m in r.get("manifestation") or [] if _text(m)]
    severity = next((r.get("severity") for r in reactions if r.get("severity")), None)
    criticality = resource.get("criticality")
    return ReactionLine(
        id=str(resource.get("id", "")),
        what=_text(resource.get("code")) or "Ukjent legemiddel",
        reaction=", ".join(dict.fromkeys(manifestations)),
        severity=SEVERITY_NAMES.get(str(severity), ""),
        criticality=CRITICALITY_NAMES.get(str(criticality), ""),
        high=criticality == "high" or severity == "severe",
    )


def banner_of(summary: PatientSummary, today: date, *, emergency: bool) -> PatientBanner:
    born, sex = _born_and_sex(summary)
    lst = None
    if summary.pll is not None:
        lst = list_view(orjson.dumps({"entry": [{"resource": summary.pll}]}))
    kind = "D-nummer" if summary.identifier_system.endswith(".2") else "Fødselsnummer"
    return PatientBanner(
        patient_id=summary.patient_id,
        name=name_of(summary.patient),
        age=age_on(born, today) if born is not None else None,
        sex=sex,
        identifier=summary.identifier,
        identifier_kind=kind,
        lst=lst,
        reactions=[reaction_line(r) for r in summary.reactions],
        emergency=emergency,
    )


def emergencies_of(memory: dict[str, Any]) -> dict[str, str]:
    """The patients a login reads on an emergency basis: their ids, with the fødselsnummer
    the pages remember for them (empty when opened by a link)."""
    bases: dict[str, str] = memory.get("basis", {})
    known: dict[str, str] = memory.get("patients", {})
    return {pid: known.get(pid, "") for pid, b in bases.items() if b == Basis.EMERGENCY.value}


def banner_context(
    web: Any,
    context: dict[str, Any],
    today: date | None = None,
) -> dict[str, Any]:
    """``banner``, the patient banner, for a page about a patient (its route names
    ``{pid}``) that a health worker has stated a basis for; nothing for other pages, or
    when the page brings its own. Its read is part of the page's: logged only when the
    request has logged no read of the patient (``Web.reads``)."""
    raw = web.request.path_params.get("pid")
    if raw is None or web.role not in HEALTH_PERSONNEL or "banner" in context:
        return {}
    pid = web.path_id("pid")
    if not web.has_basis(pid) and web.role in CLINICIANS:
        return {}  # the basis page: nothing about the patient is read before the basis
    summary = PatientSummaries(web.service).summary(
        web.access(pid), pid, page_logged=pid in web.reads
    )
    now = today or web.service.clock().astimezone(OSLO).date()
    banner = banner_of(summary, now, emergency=pid in emergencies_of(web.memory))
    if web.role in CLINICIANS:
        banner.reactions_url = f"/lege/pasient/{pid}/reaksjoner"
    return {"banner": banner}


def error_banner(web: Any, error: DomainError) -> dict[str, Any]:
    """The patient banner on the error page of a page about a patient (rule 9: who the
    patient is, though the page could not be shown). Nothing is read for a refusal: the
    caller may have no access, the refusal is logged, and a read would be refused and
    logged a second time. The banner's read is part of what the request already logged
    of the patient (the page's own read before it failed); logged only when the request
    logged none (a change refused and rolled back). An error reading it leaves the error
    page as it was."""
    if isinstance(error, Forbidden):
        return {}
    try:
        return banner_context(web, {})
    except DomainError:
        return {}

"""Reconciliation in FHIR terms: what ``$compare`` and ``$reconcile`` take and answer, the
source lists they accept, and the entry content an accepted difference writes.

A source list is a ``Bundle`` (``collection``, ``document`` or ``searchset``) of
``MedicationStatement`` s, or a ``List`` whose entries reference ``MedicationStatement`` s
it contains (``#id``). It is validated like every resource PLL takes, and each statement by
the same rules as an entry (a drug as ``medicationCodeableConcept``, a dosage PLL can write as
text), so what an accepted difference puts on the list has passed them already. Nothing
here touches a database; the operations are described in ``docs/reconciliation.md``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pll.domain.dispensing import moment
from pll.domain.dosage import dosage_text
from pll.domain.errors import DomainError, InvalidInput, RuleRefused
from pll.domain.limits import MAX_SOURCE_ITEMS
from pll.domain.model import Entry, Prescription
from pll.domain.reconcile import (
    Difference,
    Drug,
    Listed,
    Origin,
    Source,
    SourceItem,
    accepted_ids,
)
from pll.fhir import systems
from pll.fhir.parameters import Params, parameters
from pll.fhir.resources import statement_content
from pll.fhir.validate import validate

#: The FEST code system, as entries name their medicine (the same one decision support reads).
FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
#: A source statement's status, as the comparison reads it; ``entered-in-error`` is left out.
_STATUS = {
    "active": "active",
    "intended": "active",
    "unknown": "active",
    "on-hold": "on-hold",
    "stopped": "stopped",
    "not-taken": "stopped",
    "completed": "completed",
}
#: What of a source statement an accepted difference keeps; references into another system
#: (basedOn, informationSource, context, ...) mean nothing here.
_KEEP = (
    "status",
    "statusReason",
    "category",
    "medicationCodeableConcept",
    "medicationReference",
    "effectiveDateTime",
    "effectivePeriod",
    "dateAsserted",
    "reasonCode",
    "note",
    "dosage",
)
_NOT_STATEMENTS = ("MedicationRequest", "MedicationDispense", "MedicationAdministration")
_BUNDLE_TYPES = ("collection", "document", "searchset")
#: the subject an entry gets is the list's patient's; this stands in until then
_SOMEONE = "reconcile-source"

# -- the list's side and the dispensing history ----------------------------------------------


def drug_of(concept: Any) -> Drug:
    """The FEST ids, ATC codes and name a ``medicationCodeableConcept`` gives."""
    concept = concept if isinstance(concept, Mapping) else {}
    codings = [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    fest = tuple(str(c["code"]) for c in codings if c.get("system") == FEST and c.get("code"))
    atc = tuple(
        str(c["code"]).upper() for c in codings if c.get("system") == systems.ATC and c.get("code")
    )
    display = concept.get("text") or next(
        (c["display"] for c in codings if isinstance(c.get("display"), str)), None
    )
    return Drug(str(display or (atc or fest or ("ukjent legemiddel",))[0]), fest, atc)


def _dosage_of(dosages: Any) -> str | None:
    if not isinstance(dosages, list) or not dosages or not isinstance(dosages[0], Mapping):
        return None
    text = dosages[0].get("text")
    return str(text) if text else None


def listed(entry: Entry) -> Listed:
    """An entry as the comparison sees it."""
    return Listed(
        entry.id,
        entry.version,
        entry.status,
        drug_of(entry.content.get("medicationCodeableConcept")),
        _dosage_of(entry.content.get("dosage")),
        entry.ended_at,
        entry.prescription_ids,
    )


def dispensed_item(
    dispense_id: str, content: Mapping[str, Any], rx: Prescription | None
) -> SourceItem | None:
    """A dispensing as a medicine of the dispensing history: matched by its prescription, by
    the prescribed drug and by the package handed out; ``None`` without a time of handover.
    Should it be put on the list, the entry names the prescribed drug with its dosage."""
    when = moment(str(content.get("whenHandedOver") or ""))
    if when is None:
        return None
    handed = content.get("medicationCodeableConcept") or {}
    prescribed = (rx.content.get("medicationCodeableConcept") if rx else None) or handed
    package, drug = drug_of(handed), drug_of(prescribed)
    dosage = rx.content.get("dosageInstruction") if rx else None
    if not dosage:
        dosage = _writable(content.get("dosageInstruction"))
    statement: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": copy.deepcopy(prescribed),
        "note": [
            {
                "text": f"Samstemming: utlevert {when.strftime('%d.%m.%Y')} "
                f"(MedicationDispense/{dispense_id})"
            }
        ],
    }
    if dosage:
        statement["dosage"] = copy.deepcopy(dosage)
    return SourceItem(
        Drug(
            drug.display,
            tuple(dict.fromkeys(drug.fest + package.fest)),
            tuple(dict.fromkeys(drug.atc + package.atc)),
        ),
        "active",
        _dosage_of(dosage),
        f"MedicationDispense/{dispense_id}",
        when,
        rx.id if rx else None,
        statement=statement,
    )


def _writable(dosages: Any) -> list[Any] | None:
    """A pharmacy's dosage instruction, if PLL can write it as text (else the entry has none)."""
    if not isinstance(dosages, list) or not dosages:
        return None
    try:
        text = dosage_text(dosages)
    except DomainError:
        return None
    out = copy.deepcopy(dosages)
    out[0]["text"] = text
    return out


# -- a source list given as FHIR ---------------------------------------------------------------


def source_size(data: Mapping[str, Any]) -> tuple[int, str]:
    """How many resources a source list holds, as :data:`MAX_SOURCE_ITEMS` counts them, and
    the element that holds them: a Bundle's entries; a List's entries or the resources it
    contains, whichever are more."""
    counts = [
        (len(value) if isinstance(value := data.get(key), list) else 0, key)
        for key in (("entry",) if data.get("resourceType") == "Bundle" else ("entry", "contained"))
    ]
    return max(counts, key=lambda c: c[0])


def within_source_limit(data: Any, where: str) -> None:
    """Refuse a source list larger than :data:`MAX_SOURCE_ITEMS`, before any of it is read."""
    if not isinstance(data, Mapping):
        return
    size, key = source_size(data)
    if size > MAX_SOURCE_ITEMS:
        raise RuleRefused(
            f"Nothing was compared: the source list holds {size} entries, more than the "
            f"{MAX_SOURCE_ITEMS} a source list may hold (a discharge list or a patient's own "
            "list holds tens of medicines).",
            f"{where}.{key}",
            {"limit": str(MAX_SOURCE_ITEMS), "entries": str(size)},
        )


def source_items(source: Source) -> tuple[list[SourceItem], list[tuple[str, str]]]:
    """The medicines of a source list, and the fødselsnummer/D-nummer it names its patient
    by (value, where), for the service to hold against the list's patient. A source larger
    than :data:`MAX_SOURCE_ITEMS` is refused before anything else is read."""
    where = source.where
    data = source.resource
    if data is None:
        raise InvalidInput(
            f"Comparing with {source.origin.label} needs the list: a Bundle of "
            "MedicationStatement resources, or a List containing them.",
            where,
        )
    within_source_limit(data, where)
    rtype = str(data.get("resourceType") or "")
    _named_drugs(data, where)
    try:
        resource = validate(dict(data), ("Bundle", "List"))
    except DomainError as exc:
        raise _moved(exc, rtype, where) from None
    if rtype == "Bundle":
        return _bundle(resource, where)
    return _list(resource, where)


def _named_drugs(data: Mapping[str, Any], where: str) -> None:
    """Every statement names its drug: said plainly, before the structure is validated
    (which would only say that a choice of elements is missing)."""
    if data.get("resourceType") == "Bundle":
        entries = data.get("entry")
        found = [
            (e.get("resource"), f"{where}.entry[{i}].resource")
            for i, e in enumerate(entries if isinstance(entries, list) else [])
            if isinstance(e, Mapping)
        ]
    else:
        contained = data.get("contained")
        found = [
            (c, f"{where}.contained[{i}]")
            for i, c in enumerate(contained if isinstance(contained, list) else [])
        ]
    for resource, at in found:
        if (
            isinstance(resource, Mapping)
            and resource.get("resourceType") == "MedicationStatement"
            and "medicationCodeableConcept" not in resource
            and "medicationReference" not in resource
        ):
            raise InvalidInput(
                "The drug is missing: give medicationCodeableConcept with a FEST or ATC "
                "coding, or at least a text.",
                f"{at}.medicationCodeableConcept",
            )


def _bundle(bundle: dict[str, Any], where: str) -> tuple[list[SourceItem], list[tuple[str, str]]]:
    if bundle.get("type") not in _BUNDLE_TYPES:
        raise InvalidInput(
            f"A source list is a Bundle of type {', '.join(_BUNDLE_TYPES)}, not "
            f"{bundle.get('type')!r}.",
            f"{where}.type",
        )
    items: list[SourceItem] = []
    persons: list[tuple[str, str]] = []
    statements = 0
    for i, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource")
        here = f"{where}.entry[{i}].resource"
        if not isinstance(resource, dict):
            raise InvalidInput("Each entry of the Bundle needs its resource.", f"{here}")
        rtype = resource.get("resourceType")
        if rtype == "MedicationStatement":
            statements += 1
            persons += _subject(resource, here)
            item = _item(resource, here)
            if item is not None:
                items.append(item)
        elif rtype in _NOT_STATEMENTS:
            raise InvalidInput(
                f"Give each medicine as a MedicationStatement (what the patient uses), not "
                f"as a {rtype}.",
                f"{here}.resourceType",
            )
        elif rtype == "Patient":
            persons += _identifiers(resource.get("identifier"), f"{here}.identifier")
        elif rtype == "Composition":
            persons += _subject(resource, here)
    if not statements:
        raise InvalidInput(
            "The Bundle holds no MedicationStatement: give each medicine the source lists as "
            "a MedicationStatement entry.",
            f"{where}.entry",
        )
    return items, persons


def _list(lst: dict[str, Any], where: str) -> tuple[list[SourceItem], list[tuple[str, str]]]:
    if lst.get("status") == "entered-in-error":
        raise InvalidInput("This List was registered in error.", f"{where}.status")
    persons = _subject(lst, where)
    contained = {
        str(c.get("id")): (j, c) for j, c in enumerate(lst.get("contained") or []) if c.get("id")
    }
    entries = lst.get("entry") or []
    if not entries and not lst.get("emptyReason"):
        raise InvalidInput(
            "The List is empty: add each medicine as an entry referencing a contained "
            "MedicationStatement (#id), or say with emptyReason that the patient uses none.",
            f"{where}.entry",
        )
    items: list[SourceItem] = []
    for i, entry in enumerate(entries):
        if entry.get("deleted"):
            continue
        ref = str((entry.get("item") or {}).get("reference") or "")
        here = f"{where}.entry[{i}].item.reference"
        if not ref.startswith("#"):
            raise InvalidInput(
                "Contain the MedicationStatements in the List and reference them as #<id>, "
                f"not {ref!r}.",
                here,
            )
        found = contained.get(ref[1:])
        if found is None:
            raise InvalidInput(f"{ref} names no resource contained in the List.", here)
        j, resource = found
        at = f"{where}.contained[{j}]"
        if resource.get("resourceType") != "MedicationStatement":
            raise InvalidInput(
                f"{ref} is a {resource.get('resourceType')}; the List's medicines are "
                "MedicationStatements.",
                f"{at}.resourceType",
            )
        persons += _subject(resource, at)
        item = _item(resource, at)
        if item is not None:
            items.append(item)
    return items, persons


def _item(resource: dict[str, Any], where: str) -> SourceItem | None:
    """One statement of the source, checked by the rules an entry is checked by."""
    status = _STATUS.get(str(resource.get("status")))
    if status is None:
        return None  # entered-in-error: not part of what the source says
    kept = {k: copy.deepcopy(v) for k, v in resource.items() if k in _KEEP}
    kept["status"] = status
    try:
        content = statement_content({"resourceType": "MedicationStatement", **kept}, _SOMEONE)
    except DomainError as exc:
        raise _moved(exc, "MedicationStatement", where) from None
    del content["subject"]
    reason = [
        str(c.get("text"))
        for c in content.get("statusReason") or []
        if isinstance(c, Mapping) and c.get("text")
    ]
    return SourceItem(
        drug_of(content.get("medicationCodeableConcept")),
        status,
        _dosage_of(content.get("dosage")),
        where,
        reason="; ".join(reason) or None,
        statement=content,
    )


def _subject(resource: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    subject = resource.get("subject")
    if not isinstance(subject, Mapping):
        return []
    return _identifiers([subject.get("identifier")], f"{where}.subject.identifier")


def _identifiers(identifiers: Any, where: str) -> list[tuple[str, str]]:
    out = []
    for ident in identifiers or []:
        if (
            isinstance(ident, Mapping)
            and ident.get("system") in (systems.FNR, systems.DNR)
            and ident.get("value")
        ):
            out.append((str(ident["value"]), where))
    return out


def _moved(exc: DomainError, rtype: str, where: str) -> DomainError:
    """An error about a resource inside the request, located where it stands there."""

    def move(expression: str | None) -> str:
        if not expression:
            return where
        if rtype and expression.startswith(rtype):
            return where + expression[len(rtype) :]
        return f"{where}.{expression}"

    exc.expression = move(exc.expression)
    exc.others = [(message, move(at)) for message, at in exc.others]
    return exc


# -- the operations' parameters ----------------------------------------------------------------

_COMPARE = {"source": False, "resource": False}
_RECONCILE = {**_COMPARE, "accept": True, "reason": False}


def compare_request(data: Any) -> Source:
    """``$compare``: ``source`` (``dispensing``, ``patient``, ``discharge``, ``other``) and,
    but for the dispensing history, the list as ``resource``."""
    _early(data)
    return _source(parameters(data, _COMPARE, "$compare"))


def reconcile_request(data: Any) -> tuple[Source, list[str], str | None]:
    """``$reconcile``: the same source, the ids of the accepted differences (``accept``,
    any number, none to confirm the list as it is) and why."""
    _early(data)
    params = parameters(data, _RECONCILE, "$reconcile")
    given = params.all("accept")
    accepted = accepted_ids([p.text() for p in given], [p.where for p in given])
    reason = params.one("reason")
    return _source(params), accepted, reason.text() if reason else None


def _early(data: Any) -> None:
    """What must be said plainly before the ``Parameters`` are validated as a whole: a
    source past its limit (before any of it is read), a statement without its drug."""
    if not isinstance(data, Mapping) or not isinstance(data.get("parameter"), list):
        return
    for i, p in enumerate(data["parameter"]):
        if isinstance(p, Mapping) and p.get("name") == "resource":
            given = p.get("resource")
            if isinstance(given, Mapping):
                within_source_limit(given, f"Parameters.parameter[{i}].resource")
                _named_drugs(given, f"Parameters.parameter[{i}].resource")


def _source(params: Params) -> Source:
    code, resource = params.one("source"), params.one("resource")
    if code is None and resource is None:
        raise InvalidInput(
            "Say what to compare the list with: source = dispensing (PLL's dispensing "
            "history), or the list as a resource (a Bundle or List of MedicationStatement) "
            "with source = patient, discharge or other.",
            "Parameters.parameter",
        )
    origin = Origin.OTHER
    if code is not None:
        value = code.code()
        known = {o.value: o for o in Origin}
        if value not in known:
            raise InvalidInput(
                f"Unknown source {value!r}; use one of {', '.join(known)}.", code.where
            )
        origin = known[value]
    if origin is Origin.DISPENSING:
        if resource is not None:
            raise InvalidInput(
                "The dispensing history is PLL's own: send no resource with source=dispensing.",
                resource.where,
            )
        return Source.dispensing()
    if resource is None:
        raise InvalidInput(
            f"source={origin.value} needs the list as a 'resource' parameter (a Bundle or List).",
            "Parameters.parameter",
        )
    data = resource.data.get("resource")
    if not isinstance(data, dict):
        raise InvalidInput("Give 'resource' as a Bundle or List resource.", resource.where)
    return Source(origin, data, f"{resource.where}.resource")


# -- answers -----------------------------------------------------------------------------------


def _concept(drug: Drug) -> dict[str, Any]:
    codings = [{"system": FEST, "code": c} for c in drug.fest]
    codings += [{"system": systems.ATC, "code": c} for c in drug.atc]
    concept: dict[str, Any] = {"text": drug.display}
    if codings:
        concept = {"coding": codings, **concept}
    return concept


def difference_parameter(d: Difference) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"name": "id", "valueString": d.id},
        {"name": "kind", "valueCode": d.kind.value},
    ]
    if d.entry_id is not None:
        parts.append(
            {
                "name": "entry",
                "valueReference": {
                    "reference": f"MedicationStatement/{d.entry_id}/_history/{d.entry_version}"
                },
            }
        )
    parts.append({"name": "drug", "valueCodeableConcept": _concept(d.drug)})
    for name, value in (("listDosage", d.list_dosage), ("sourceDosage", d.source_dosage)):
        if value:
            parts.append({"name": name, "valueString": value})
    for name, value in (("listStatus", d.list_status), ("sourceStatus", d.source_status)):
        if value:
            parts.append({"name": name, "valueCode": value})
    if d.item is not None and d.item.where:
        parts.append({"name": "sourceItem", "valueString": d.item.where})
    parts.append({"name": "text", "valueString": d.text})
    return {"name": "difference", "part": parts}


def comparison_answer(
    list_id: str, list_version: int, origin: Origin, differences: list[Difference]
) -> dict[str, Any]:
    """``$compare``'s answer: the list version compared (send it back as ``If-Match`` to
    ``$reconcile``), the source, and one ``difference`` per difference."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "list",
                "valueReference": {"reference": f"List/{list_id}/_history/{list_version}"},
            },
            {"name": "listVersion", "valueInteger": list_version},
            {"name": "source", "valueCode": origin.value},
            *[difference_parameter(d) for d in differences],
        ],
    }


# -- what an accepted difference writes --------------------------------------------------------


def new_statement(item: SourceItem, based_on: str | None = None) -> dict[str, Any]:
    """The ``MedicationStatement`` that puts a source's medicine on the list."""
    if item.statement is None:  # pragma: no cover - every source item carries one
        raise InvalidInput(f"{item.drug.display} cannot be put on the list from the source.")
    statement = copy.deepcopy(dict(item.statement))
    statement.setdefault("resourceType", "MedicationStatement")
    if statement.get("status") not in ("active", "on-hold"):
        statement["status"] = "active"
    if based_on:
        statement["basedOn"] = [{"reference": f"MedicationRequest/{based_on}"}]
    return statement


def changed_entry(
    content: Mapping[str, Any],
    *,
    status: str | None = None,
    reason: str | None = None,
    dosage: SourceItem | None = None,
) -> dict[str, Any]:
    """An entry's content with the status (and its reason) and/or the dosage a source has."""
    out = copy.deepcopy(dict(content))
    if status is not None:
        out["status"] = status
        if reason:
            out["statusReason"] = [{"text": reason}]
        else:
            out.pop("statusReason", None)
    given = dosage.statement if dosage is not None else None
    if given is not None and given.get("dosage"):
        out["dosage"] = copy.deepcopy(given["dosage"])
    return out

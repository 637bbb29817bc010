"""The e-multidose operations in FHIR terms: what their ``Parameters`` say, and their answers.

Requests are read into the domain's terms (:mod:`pll.domain.multidose`); nothing here
touches a database. The operations and their parameters are described in
``docs/multidose.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pll.domain.errors import DomainError, InvalidInput, RuleRefused
from pll.domain.identifiers import check_orgnr
from pll.domain.limits import MAX_PACKING_ITEMS, MAX_PENDING_ITEMS, MAX_PROPOSAL_ITEMS
from pll.domain.model import Author, MedicationList, Multidose, Pharmacy, ReceivingUnit
from pll.domain.multidose import ACTIONS, Action, Held, Packed, Proposed, Ruling
from pll.fhir import systems
from pll.fhir.parameters import Param, parameters
from pll.fhir.resources import (
    author_reference,
    instant,
    multidose_extensions,
    pharmacy_reference,
    receiver_reference,
    statement_content,
)

# -- requests --------------------------------------------------------------------------------


def registration_request(data: Any) -> tuple[Pharmacy, str | None, ReceivingUnit | None]:
    """``$multidose-register``: the pharmacy (a reference with its organisation number and
    name), its HER-id if known, why, and the care unit that receives the bags (``careUnit``,
    optional: :func:`receiving_unit`)."""
    params = parameters(
        data,
        {"pharmacy": False, "pharmacyHer": False, "reason": False, "careUnit": False},
        "$multidose-register",
    )
    given = params.required("pharmacy", "Parameters.parameter")
    ref = given.value("Reference") or {}
    ident = ref.get("identifier") or {}
    if ident.get("system") != systems.ORGNR or not ident.get("value"):
        raise InvalidInput(
            f"Name the pharmacy by its organisation number: identifier.system {systems.ORGNR}.",
            f"{given.where}.valueReference.identifier",
        )
    org = check_orgnr(str(ident["value"]), f"{given.where}.valueReference.identifier.value")
    name = str(ref.get("display") or "").strip()
    if not name:
        raise InvalidInput(
            "Give the pharmacy's name as the reference's display.",
            f"{given.where}.valueReference.display",
        )
    her = params.one("pharmacyHer")
    reason = params.one("reason")
    unit = params.one("careUnit")
    return (
        Pharmacy(name, org, her.text() if her else None),
        reason.text() if reason else None,
        receiving_unit(unit) if unit is not None else None,
    )


def receiving_unit(param: Param) -> ReceivingUnit:
    """The nursing home or home-care unit that receives the bags: ``valueIdentifier``, or a
    ``valueReference`` with that identifier and the unit's name as ``display``; the
    identifier's system is the organisation number's and its value passes the mod-11 check."""
    if "valueIdentifier" in param.data:
        ident, where = param.data["valueIdentifier"] or {}, f"{param.where}.valueIdentifier"
        name = None
    elif "valueReference" in param.data:
        ref = param.data["valueReference"] or {}
        ident, where = ref.get("identifier") or {}, f"{param.where}.valueReference.identifier"
        name = str(ref.get("display") or "").strip() or None
    else:
        raise InvalidInput(
            "Give 'careUnit' as valueIdentifier (or valueReference.identifier) with system "
            f"{systems.ORGNR} and the unit's organisation number.",
            param.where,
        )
    if (
        not isinstance(ident, dict)
        or ident.get("system") != systems.ORGNR
        or not ident.get("value")
    ):
        raise InvalidInput(
            f"Name the care unit that receives the bags by its organisation number: system "
            f"{systems.ORGNR}.",
            where,
        )
    return ReceivingUnit(check_orgnr(str(ident["value"]).strip(), f"{where}.value"), name)


def reason_request(data: Any, operation: str) -> str | None:
    """An operation that takes only a ``reason``."""
    given = parameters(data, {"reason": False}, operation).one("reason")
    return given.text() if given else None


def paper_request(data: Any) -> tuple[str | None, str | None]:
    """``$paper-multidose``: the pharmacy that packs from paper, and a note, both optional."""
    params = parameters(data, {"pharmacy": False, "note": False}, "$paper-multidose")
    pharmacy, note = params.one("pharmacy"), params.one("note")
    return (pharmacy.text() if pharmacy else None, note.text() if note else None)


_ITEM_PARTS = {"action": False, "entry": False, "statement": False, "reason": False}


#: the patient a proposed statement names until :func:`for_patient` gives it the list's
_SOMEONE = "proposal"


def within_items(data: Any, operation: str, limit: int, name: str = "item") -> None:
    """Refuse more than ``limit`` parameters called ``name``, counted before any of them is
    read."""
    given = data.get("parameter") if isinstance(data, dict) else None
    count = (
        sum(1 for p in given if isinstance(p, dict) and p.get("name") == name)
        if isinstance(given, list)
        else 0
    )
    if count > limit:
        raise RuleRefused(
            f"Nothing was done: {count} {name}s is more than the {limit} one {operation} may hold.",
            "Parameters.parameter",
            {"limit": str(limit), f"{name}s": str(count)},
        )


def proposal_request(data: Any) -> tuple[list[Proposed], str | None]:
    """``$propose`` (M25.2): the items, each a new medicine, a change to an entry on the
    version the pharmacy saw, or an entry to remove; and a note for the doctor. At most
    :data:`MAX_PROPOSAL_ITEMS` items; read with no database at hand, so the statements name
    their patient once :func:`for_patient` has said who it is."""
    within_items(data, "$propose", MAX_PROPOSAL_ITEMS)
    params = parameters(data, {"item": True, "note": False}, "$propose")
    items = [_proposed(p, _SOMEONE) for p in params.all("item")]
    note = params.one("note")
    return items, note.text() if note else None


def within_pending(waiting: int, more: int) -> None:
    """Refuse a proposal that would leave more than :data:`MAX_PENDING_ITEMS` items
    waiting for the doctor's decision."""
    if waiting + more > MAX_PENDING_ITEMS:
        raise RuleRefused(
            f"Nothing was kept: {waiting} items of the pharmacy's proposals are waiting for the "
            f"doctor's decision, and {more} more would pass the {MAX_PENDING_ITEMS} that may "
            "wait at once. Propose again once the doctor has decided.",
            "Parameters.parameter",
            {"limit": str(MAX_PENDING_ITEMS), "pending": str(waiting), "items": str(more)},
        )


def for_patient(items: list[Proposed], patient_id: str) -> list[Proposed]:
    """The proposed items with their statements naming the list's patient."""
    subject = {"reference": f"Patient/{patient_id}"}
    return [
        replace(i, content={**i.content, "subject": subject}) if i.content is not None else i
        for i in items
    ]


def _proposed(item: Param, patient_id: str) -> Proposed:
    parts = item.parts(_ITEM_PARTS)
    action_part = parts.required("action", f"{item.where}.part")
    action = action_part.code()
    if action not in ACTIONS:
        raise InvalidInput(
            f"Unknown action {action!r}; use new, change or remove.", action_part.where
        )
    entry_id = version = None
    entry = parts.one("entry")
    if entry is not None:
        entry_id, version = entry.reference("MedicationStatement", versioned=None)
    content = None
    statement = parts.one("statement")
    if statement is not None:
        resource = statement.resource("MedicationStatement")
        if entry_id is not None and resource.get("id") not in (None, entry_id):
            raise InvalidInput(
                f"The statement's id {resource.get('id')!r} is not the entry it changes.",
                f"{statement.where}.resource.id",
            )
        try:
            content = statement_content(resource, patient_id)
        except DomainError as exc:
            exc.expression = _inside(exc.expression, f"{statement.where}.resource")
            raise
    reason = parts.one("reason")
    return Proposed(
        action=_action(action),
        where=item.where,
        entry_id=entry_id,
        entry_version=version,
        content=content,
        reason=reason.text() if reason else None,
    )


def _action(code: str) -> Action:
    return next(a for a in ACTIONS if a == code)


def _inside(expression: str | None, where: str) -> str:
    rtype = "MedicationStatement"
    if expression and expression.startswith(rtype):
        return where + expression[len(rtype) :]
    return where


def decision_request(data: Any) -> list[Ruling]:
    """``$decide``: for each item, accept or reject (with a reason for the pharmacy); at
    most as many decisions as items may wait (:data:`MAX_PENDING_ITEMS`)."""
    within_items(data, "$decide", MAX_PENDING_ITEMS, "decision")
    params = parameters(data, {"decision": True}, "$decide")
    rulings = []
    for decision in params.all("decision"):
        parts = decision.parts({"item": False, "outcome": False, "reason": False})
        item = parts.required("item", f"{decision.where}.part")
        item_id = str(item.data.get("valueId") or item.value("String"))
        outcome = parts.required("outcome", f"{decision.where}.part")
        code = outcome.code()
        if code not in ("accept", "reject"):
            raise InvalidInput(f"outcome is accept or reject, not {code!r}.", outcome.where)
        reason = parts.one("reason")
        rulings.append(
            Ruling(item_id, code == "accept", decision.where, reason.text() if reason else None)
        )
    return rulings


@dataclass(frozen=True)
class PackingReport:
    """``$packing-report`` (M25.3): what was packed, for which period, from which version."""

    start: datetime
    end: datetime
    basis: int | None
    items: list[Packed]


def packing_request(data: Any) -> PackingReport:
    """The period (``valuePeriod`` with start and end), the list version packed from
    (optional), and one ``item`` per entry packed: the entry, its first and last dose
    (the period's, unless given) and the dispensing (M10) it went out with, if registered.
    At most :data:`MAX_PACKING_ITEMS` items, counted before any of them is read."""
    within_items(data, "$packing-report", MAX_PACKING_ITEMS)
    params = parameters(
        data, {"period": False, "listVersion": False, "item": True}, "$packing-report"
    )
    period = params.required("period", "Parameters.parameter")
    value = period.value("Period") or {}
    if not value.get("start") or not value.get("end"):
        raise InvalidInput("The period needs a start and an end.", f"{period.where}.valuePeriod")
    start = Param(
        "period.start", f"{period.where}.valuePeriod.start", {"valueDateTime": value["start"]}
    ).instant()[1]
    end = Param(
        "period.end", f"{period.where}.valuePeriod.end", {"valueDateTime": value["end"]}
    ).instant()[1]
    if len(str(value["end"])) <= 10:
        # a date as the end is the whole of that day
        end = end.replace(hour=23, minute=59, second=59)
    basis = params.one("listVersion")
    items = []
    for item in params.all("item"):
        parts = item.parts(
            {"entry": False, "firstDose": False, "lastDose": False, "dispense": False}
        )
        entry_id, _ = parts.required("entry", f"{item.where}.part").reference("MedicationStatement")
        first = parts.one("firstDose")
        last = parts.one("lastDose")
        dispense = parts.one("dispense")
        items.append(
            Packed(
                entry_id=entry_id,
                first=first.instant()[1] if first else start,
                last=last.instant()[1] if last else end,
                where=item.where,
                dispense_id=dispense.reference("MedicationDispense")[0] if dispense else None,
            )
        )
    return PackingReport(start, end, basis.integer() if basis else None, items)


# -- answers ---------------------------------------------------------------------------------


def _p(name: str, **value: Any) -> dict[str, Any]:
    return {"name": name, **value}


def _answer(*params: dict[str, Any] | None) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [p for p in params if p is not None]}


def registration_answer(state: Multidose, list_version: int | None) -> dict[str, Any]:
    """The patient's multidose as it now stands, with the list version that shows it."""
    out: list[dict[str, Any] | None] = [
        _p("registered", valueBoolean=state.registration is not None)
    ]
    reg = state.registration
    if reg is not None:
        out += [
            _p("doctor", valueReference=author_reference(reg.doctor)),
            _p("pharmacy", valueReference=pharmacy_reference(reg.pharmacy)),
            _p("since", valueDateTime=instant(reg.at)),
        ]
        if reg.receiver is not None:
            out.append(_p("careUnit", valueReference=receiver_reference(reg.receiver)))
    out.append(_p("paperMultidose", valueBoolean=state.paper is not None))
    for ext in multidose_extensions(state):
        if ext["url"] == systems.EXT_PAPER_MULTIDOSE:
            out.append(
                _p(
                    "paper",
                    part=[
                        {"name": e["url"], **{k: v for k, v in e.items() if k != "url"}}
                        for e in ext["extension"]
                    ],
                )
            )
    if list_version is not None:
        out.append(_p("listVersion", valueInteger=list_version))
    return _answer(*out)


def item_parameter(item: Held) -> dict[str, Any]:
    """One item of a proposal, with the doctor's decision once there is one."""
    parts: list[dict[str, Any]] = [
        _p("id", valueId=item.id),
        _p("action", valueCode=item.action),
    ]
    if item.entry_id:
        ref = f"MedicationStatement/{item.entry_id}"
        if item.entry_version is not None:
            ref += f"/_history/{item.entry_version}"
        parts.append(_p("entry", valueReference={"reference": ref}))
    if item.content is not None:
        statement = {"resourceType": "MedicationStatement", **item.content}
        if item.entry_id:
            statement = {"resourceType": "MedicationStatement", "id": item.entry_id, **item.content}
        parts.append(_p("statement", resource=statement))
    if item.reason:
        parts.append(_p("reason", valueString=item.reason))
    parts.append(_p("status", valueCode=item.status))
    if item.decided_by:
        parts.append(_p("decidedBy", valueString=item.decided_by))
    if item.decided_at:
        parts.append(_p("decidedAt", valueDateTime=instant(item.decided_at)))
    if item.decision_reason:
        parts.append(_p("decisionReason", valueString=item.decision_reason))
    if item.list_version is not None:
        parts.append(_p("listVersion", valueInteger=item.list_version))
    if item.entry_result:
        parts.append(
            _p("result", valueReference={"reference": f"MedicationStatement/{item.entry_result}"})
        )
    return _p("item", part=parts)


def proposal_parameter(
    proposal_id: str,
    sent_at: datetime,
    author: str | None,
    note: str | None,
    list_version: int | None,
    items: list[Held],
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        _p("id", valueId=proposal_id),
        _p("sentAt", valueDateTime=instant(sent_at)),
    ]
    if author:
        parts.append(_p("author", valueString=author))
    if note:
        parts.append(_p("note", valueString=note))
    if list_version is not None:
        parts.append(_p("listVersion", valueInteger=list_version))
    parts += [item_parameter(i) for i in items]
    return _p("proposal", part=parts)


def proposal_answer(proposal: dict[str, Any]) -> dict[str, Any]:
    return _answer(proposal)


def proposals_answer(proposals: list[dict[str, Any]], pending: int) -> dict[str, Any]:
    return _answer(_p("pending", valueInteger=pending), *proposals)


def decision_answer(list_version: int | None, items: list[Held], findings: int) -> dict[str, Any]:
    return _answer(
        _p("listVersion", valueInteger=list_version) if list_version is not None else None,
        _p("findings", valueInteger=findings),
        *[item_parameter(i) for i in items],
    )


def packing_answer(message_id: str, basis: int, current: int) -> dict[str, Any]:
    """The report is kept; ``changedSince`` tells the pharmacy that the list has moved on
    since the version it packed from."""
    return _answer(
        _p("identifier", valueString=message_id),
        _p("listVersion", valueInteger=basis),
        _p("currentVersion", valueInteger=current),
        _p("changedSince", valueBoolean=basis != current),
    )


def packing_basis_answer(
    lst: MedicationList,
    list_json: dict[str, Any],
    statements: list[tuple[dict[str, Any], bool]],
    message_id: str,
    state: Multidose,
    refusal: str | None,
    baton: Author,
    prescriptions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The packing basis (M25.1): the list as it now stands, who holds it, whether it may
    be packed (and why not), each medicine in use marked as packed in multidose or not, and
    the prescriptions they are dispensed on (each a ``prescription``, marked when expired)."""
    reg = state.registration
    out: list[dict[str, Any] | None] = [
        _p("message", valueString=message_id),
        _p("listVersion", valueInteger=lst.version),
        _p("author", valueReference=author_reference(baton)),
        _p(
            "responsibleDoctorHoldsBaton",
            valueBoolean=reg is not None
            and reg.doctor.hpr is not None
            and reg.doctor.hpr == baton.hpr,
        ),
        _p("doctor", valueReference=author_reference(reg.doctor)) if reg else None,
        _p("pharmacy", valueReference=pharmacy_reference(reg.pharmacy)) if reg else None,
        _p("packingAllowed", valueBoolean=refusal is None),
        _p("notAllowedBecause", valueString=refusal) if refusal else None,
        _p("paused", valueBoolean=lst.pause is not None),
        _p("paperMultidose", valueBoolean=state.paper is not None),
        _p("list", resource=list_json),
    ]
    for resource, packed in statements:
        out.append(
            _p(
                "entry",
                part=[_p("statement", resource=resource), _p("packed", valueBoolean=packed)],
            )
        )
    out += [_p("prescription", resource=rx) for rx in prescriptions]
    return _answer(*out)

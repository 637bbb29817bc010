"""FHIR ``transaction`` Bundles: several changes to one patient's PLL, all or nothing.

See https://hl7.org/fhir/R4/http.html#transaction. Entries may create a Patient (found
again if already registered), the List, prescriptions and entries, and update existing
entries and prescriptions; ``urn:uuid:`` references between entries are resolved. The whole
Bundle is one accepted change, so it makes one list version and one ``Provenance``.

A Bundle holds at most :data:`~pll.domain.limits.MAX_BUNDLE_ENTRIES` entries; a larger one
is refused with 422 (an OperationOutcome naming the limit, its ``outcome-detail`` extension
giving ``limit`` and ``entries``) before any of it is validated or written. 422, not 413:
the body is well-formed FHIR that this server's documented rule refuses, like every other
rule it keeps; 413 would say the bytes are too many, which a gateway decides before any
FHIR is read.

Decision support (DESIGN §3 rule 6) answers in the ``transaction-response``: each finding
appears **once**, in ``response.outcome`` of the first Bundle entry (in Bundle order) that it
names; a finding that names none of them (an entry the change moved along, such as a
renewal's) goes on the first entry that wrote a MedicationStatement or MedicationRequest.
A client sees every finding by reading ``response.outcome`` of every entry. The response
carries at most :data:`~pll.domain.limits.MAX_FINDINGS` findings, blocking ones first; when
it leaves some out, the issue that counts them (see :mod:`pll.fhir.findings`) is in the
outcome of that first written entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from pll.auth.access import Access
from pll.domain.checks import Finding
from pll.domain.errors import Conflict, DomainError, InvalidInput, RuleRefused
from pll.domain.limits import MAX_BUNDLE_ENTRIES
from pll.fhir import findings
from pll.fhir.validate import validate
from pll.services.lists import Op, PLLService, relocate
from pll.store import repository as repo

LIST_RESOURCES = ("MedicationStatement", "MedicationRequest")
URL = re.compile(
    r"^(Patient|List|MedicationStatement|MedicationRequest)(?:/([A-Za-z0-9\-.]{1,64}))?$"
)


@dataclass
class _Item:
    index: int
    method: str
    rtype: str
    rid: str | None
    resource: dict[str, Any]
    full_url: str | None
    if_match: int | None


def parse_if_match(value: str | None, where: str = "If-Match") -> int | None:
    """The version in an ``If-Match`` value such as ``W/"3"``."""
    if value is None or value == "":
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', value)
    if not match:
        raise InvalidInput(f'If-Match must be a version ETag such as W/"3", got {value!r}.', where)
    return int(match.group(1))


def _items(bundle: dict[str, Any]) -> list[_Item]:
    if bundle.get("type") != "transaction":
        raise InvalidInput("POST /fhir takes a Bundle of type 'transaction'.", "Bundle.type")
    items = []
    seen: set[Any] = set()
    for i, entry in enumerate(bundle.get("entry") or []):
        where = f"Bundle.entry[{i}]"
        request = entry.get("request") or {}
        method = request.get("method")
        match = URL.match(str(request.get("url", "")))
        if method not in ("POST", "PUT") or not match:
            raise InvalidInput(
                "Each entry must POST a Patient, List, MedicationStatement or MedicationRequest, "
                "or PUT a MedicationStatement/<id> or MedicationRequest/<id>.",
                f"{where}.request",
            )
        rtype, rid = match.group(1), match.group(2)
        resource = entry.get("resource")
        if not resource or resource.get("resourceType") != rtype:
            raise InvalidInput(f"The entry's resource must be a {rtype}.", f"{where}.resource")
        if method == "PUT" and (rid is None or rtype not in LIST_RESOURCES):
            raise InvalidInput(
                "PUT needs MedicationStatement/<id> or MedicationRequest/<id>.",
                f"{where}.request.url",
            )
        if method == "PUT" and resource.get("id") not in (None, rid):
            raise InvalidInput(
                "The resource id must match the id in request.url.", f"{where}.resource.id"
            )
        if method == "POST" and rid is not None:
            raise InvalidInput(
                "POST goes to the resource type, without an id.", f"{where}.request.url"
            )
        key = (rtype, rid) if method == "PUT" else entry.get("fullUrl")
        if key is not None and key in seen:
            raise InvalidInput(
                "A transaction names each resource once; this entry repeats "
                f"{rtype}/{rid if method == 'PUT' else entry.get('fullUrl')}.",
                f"{where}.request",
            )
        if key is not None:
            seen.add(key)
        items.append(
            _Item(
                i,
                method,
                rtype,
                rid,
                resource,
                entry.get("fullUrl"),
                parse_if_match(request.get("ifMatch"), f"{where}.request.ifMatch"),
            )
        )
    if not items:
        raise InvalidInput("The transaction has no entries.", "Bundle.entry")
    return items


def _rewrite(value: Any, ids: dict[str, str], where: str) -> Any:
    """Replace ``urn:uuid:`` references by the ids the server assigned."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item.startswith("urn:uuid:"):
                if item not in ids:
                    raise InvalidInput(f"{item} does not name an entry of this transaction.", where)
                out[key] = ids[item]
            else:
                out[key] = _rewrite(item, ids, where)
        return out
    if isinstance(value, list):
        return [_rewrite(item, ids, where) for item in value]
    return value


def within_limit(entries: Any, where: str) -> None:
    """Refuse more than :data:`MAX_BUNDLE_ENTRIES` entries, before any work on them."""
    if isinstance(entries, list) and len(entries) > MAX_BUNDLE_ENTRIES:
        raise RuleRefused(
            f"Nothing was done: {len(entries)} entries is more than the {MAX_BUNDLE_ENTRIES} "
            "one request may hold. Send the change in smaller parts.",
            where,
            {"limit": str(MAX_BUNDLE_ENTRIES), "entries": str(len(entries))},
        )


def _prepared(service: PLLService, data: Any) -> tuple[list[_Item], dict[str, str]]:
    if isinstance(data, dict):
        within_limit(data.get("entry"), "Bundle.entry")
    items = _items(validate(data, "Bundle"))
    urns: dict[str, str] = {}
    for item in items:
        if item.method == "POST" and item.rtype in LIST_RESOURCES:
            item.rid = service.ids()
            if item.full_url:
                urns[item.full_url] = f"{item.rtype}/{item.rid}"
    return items, urns


@dataclass
class _Checked(Exception):
    patient_id: str | None
    findings: list[Finding]


def check(service: PLLService, access: Access, data: Any) -> tuple[str | None, list[Finding]]:
    """What decision support would find in a transaction Bundle's changes, without writing
    them: the change is made in a transaction that is then rolled back (``List/$check``)."""
    items, urns = _prepared(service, data)
    # findings that would block are reported here, not refused
    trial = replace(access, override=access.override or "(prøvekjøring)", override_findings=None)
    try:
        with service.guard(access), service.db.write() as conn:
            seen: list[Finding] = []
            patient_id = _run_in(service, conn, trial, items, urns, {}, None, seen)
            raise _Checked(patient_id, seen)
    except _Checked as done:
        return done.patient_id, done.findings


def run(service: PLLService, access: Access, data: Any, reason: str | None) -> dict[str, Any]:
    """Apply a transaction Bundle and return the ``transaction-response`` Bundle."""
    items, urns = _prepared(service, data)
    responses: dict[int, dict[str, Any]] = {}
    try:
        with service.guard(access), service.db.write() as conn:
            _run_in(service, conn, access, items, urns, responses, reason)
    except IntegrityError:
        # Another request registered the same patient or list at the same moment.
        raise Conflict(
            "Another request created the same patient or list at the same moment; "
            "nothing was written. Send the transaction again.",
            "Bundle",
        ) from None
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [responses.get(i.index, {"response": {"status": "200 OK"}}) for i in items],
    }


def _run_in(
    service: PLLService,
    conn: Connection,
    access: Access,
    items: list[_Item],
    urns: dict[str, str],
    responses: dict[int, dict[str, Any]],
    reason: str | None,
    seen: list[Finding] | None = None,
) -> str | None:
    """Apply the items; returns the patient whose list they change (if any)."""
    for item in items:
        if item.rtype == "Patient":
            try:
                patient, created = service.register_patient_in(conn, access, item.resource)
            except DomainError as exc:
                exc.expression = relocate(
                    exc.expression, "Patient", f"Bundle.entry[{item.index}].resource"
                )
                raise
            if item.full_url:
                urns[item.full_url] = f"Patient/{patient['id']}"
            responses[item.index] = _response(patient, created)
    for item in items:
        item.resource = _rewrite(item.resource, urns, f"Bundle.entry[{item.index}].resource")
    creates_list = _list_create(items)
    patient_id = _one_patient(service, conn, access, items)
    if patient_id is not None:
        responses |= _apply(service, conn, access, patient_id, items, reason, creates_list, seen)
    return patient_id


def _list_create(items: list[_Item]) -> _Item | None:
    lists = [i for i in items if i.rtype == "List"]
    if len(lists) > 1:
        raise InvalidInput("A transaction can create at most one List.", "Bundle.entry")
    if lists and lists[0].resource.get("entry"):
        raise InvalidInput(
            "Create the List empty; its entries are the MedicationStatements.",
            f"Bundle.entry[{lists[0].index}].resource.entry",
        )
    return lists[0] if lists else None


def _one_patient(
    service: PLLService, conn: Connection, access: Access, items: list[_Item]
) -> str | None:
    """The one patient whose list the transaction changes (``None`` if it changes none)."""
    patient_ids = set()
    # every entry names the same subject as a rule: it is looked up once, not per entry
    known: dict[bytes, str] = {}

    def resolve(subject: Any, where: str) -> str:
        key = orjson.dumps(subject, option=orjson.OPT_SORT_KEYS)
        if key not in known:
            known[key] = service.resolve_patient(conn, access, subject, where)
        return known[key]

    for item in items:
        where = f"Bundle.entry[{item.index}]"
        if item.rtype in ("List", *LIST_RESOURCES) and item.method == "POST":
            patient_ids.add(resolve(item.resource.get("subject"), f"{where}.resource.subject"))
        elif item.method == "PUT" and item.rid:
            row = repo.resource_row(conn, item.rtype, item.rid)
            if row is None:
                raise InvalidInput(
                    f"{item.rtype}/{item.rid} does not exist.", f"{where}.request.url"
                )
            subject = item.resource.get("subject")
            if subject is not None and row.patient_id != resolve(
                subject, f"{where}.resource.subject"
            ):
                raise InvalidInput(
                    f"{item.rtype}/{item.rid} belongs to another patient; "
                    "the subject cannot change.",
                    f"{where}.resource.subject",
                )
            patient_ids.add(row.patient_id)
    if len(patient_ids) > 1:
        raise InvalidInput(
            "A transaction changes one patient's list; these entries name several patients.",
            "Bundle.entry",
        )
    return patient_ids.pop() if patient_ids else None


def _apply(
    service: PLLService,
    conn: Connection,
    access: Access,
    patient_id: str,
    items: list[_Item],
    reason: str | None,
    creates_list: _Item | None,
    seen: list[Finding] | None = None,
) -> dict[int, dict[str, Any]]:
    # Prescriptions first, so entries in the same Bundle can link to them.
    order = {"MedicationRequest": 0, "MedicationStatement": 1}
    changes = sorted(
        (i for i in items if i.rtype in LIST_RESOURCES),
        key=lambda i: (i.method != "POST", order[i.rtype], i.index),
    )
    # each resource was validated with the Bundle, before the write began: not again here,
    # where the time would hold the writer
    ops = [
        Op(
            "create" if i.method == "POST" else "update",
            i.rtype,
            i.rid,
            i.resource,
            i.if_match,
            where=f"Bundle.entry[{i.index}].resource",
        )
        for i in changes
    ]
    result = service.apply_in(
        conn, access, patient_id, ops, reason, create_list=creates_list is not None
    )
    if seen is not None:
        seen += result.findings
    written = {(w.rtype, w.id): w for w in result.written}
    responses = {}
    for i in changes:
        done = written.get((i.rtype, str(i.rid)))
        if done is not None:
            responses[i.index] = _response(done.resource, i.method == "POST" and done.created)
    _place_findings(result.findings, changes, responses)
    if creates_list is not None and result.list_version is not None:
        version = result.list_version
        responses[creates_list.index] = {
            "response": {
                "status": "201 Created",
                "location": f"List/{result.list_id}/_history/{version}",
                "etag": f'W/"{version}"',
            },
        }
    return responses


def _place_findings(
    found: list[Finding], changes: list[_Item], responses: dict[int, dict[str, Any]]
) -> None:
    """Each finding once, in ``response.outcome`` of the first answered entry it names (in
    Bundle order), else of the first answered entry; the count of those left out there too."""
    answered = sorted((i for i in changes if i.index in responses), key=lambda i: i.index)
    if not found or not answered:
        return
    first = {str(i.rid): i.index for i in answered}
    kept, left = findings.shown(found)
    placed: dict[int, list[dict[str, Any]]] = {}
    for finding in kept:
        at = min((first[e] for e in finding.entries if e in first), default=answered[0].index)
        placed.setdefault(at, []).append(findings.issue(finding))
    if left is not None:
        placed.setdefault(answered[0].index, []).append(findings.left_out_issue(left))
    for index, issues in placed.items():
        responses[index]["response"]["outcome"] = {
            "resourceType": "OperationOutcome",
            "issue": issues,
        }


def _response(resource: dict[str, Any], created: bool) -> dict[str, Any]:
    version = resource["meta"]["versionId"]
    return {
        "resource": resource,
        "response": {
            "status": "201 Created" if created else "200 OK",
            "location": f"{resource['resourceType']}/{resource['id']}/_history/{version}",
            "etag": f'W/"{version}"',
            "lastModified": resource["meta"]["lastUpdated"],
        },
    }

"""FHIR R4 REST under ``/fhir``: each handler turns a request into one service call.

Interactions follow https://hl7.org/fhir/R4/http.html: ``ETag``/``If-Match`` versioning,
``_history``, version reads, searchset Bundles with paging. ``ROUTES`` is also what the
CapabilityStatement is built from, so ``metadata`` says exactly what is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from pll.api.http import AsyncHandler, Ctx, Handler, check_id, check_version, fhir_response
from pll.auth.access import BASIS_HEADER, Basis, Verb
from pll.domain import limits
from pll.domain.cases import Action
from pll.domain.errors import InvalidInput, NotFound
from pll.fhir import bundles, findings
from pll.fhir import cases as cases_fhir
from pll.fhir import reconcile as reconcile_fhir
from pll.fhir.systems import ORGNR, PLL_BASE
from pll.fhir.validate import validate
from pll.services import transaction
from pll.services.access import PatientAccess
from pll.services.allergies import Allergies
from pll.services.base import Stored
from pll.services.cases import CaseService
from pll.services.catalogue import Catalogue
from pll.services.dispensing import DispensingService
from pll.services.lists import ChangeResult, Op, Written
from pll.services.multidose import MultidoseService
from pll.services.reconcile import Reconciliation
from pll.services.sfm import SfmService
from pll.services.subscriptions import Subscriptions
from pll.services.transaction import parse_if_match

LIST_RESOURCES = ("MedicationStatement", "MedicationRequest")
#: The CapabilityStatement extension stating the request limits (:mod:`pll.domain.limits`).
LIMITS = f"{PLL_BASE}/StructureDefinition/request-limits"


def _if_match(ctx: Ctx) -> int | None:
    return parse_if_match(ctx.request.headers.get("if-match"))


def _written(ctx: Ctx, result: ChangeResult, written: Written) -> Response:
    """The accepted change. Decision-support findings (rule 6) are counted in
    ``X-PLL-Findings`` and are the body itself when the client asks for them with
    ``Prefer: return=OperationOutcome`` (https://hl7.org/fhir/R4/http.html#ops)."""
    status = 201 if written.created else 200
    headers = {"X-PLL-List-Version": str(result.list_version)} if result.list_version else {}
    headers["X-PLL-Findings"] = str(len(result.findings))
    body: dict[str, Any] = written.resource
    if "return=operationoutcome" in ctx.request.headers.get("prefer", "").lower():
        body = findings.outcome(result.findings)
    return fhir_response(
        body,
        status,
        version=written.version,
        location=f"{ctx.base}/{written.rtype}/{written.id}/_history/{written.version}"
        if written.created
        else None,
        headers=headers,
    )


def _stored(stored: Stored) -> Response:
    return fhir_response(stored.text, version=stored.version, updated=stored.updated)


def _patient_param(ctx: Ctx, params: dict[str, str], verb: Verb = Verb.READ) -> str | None:
    """``patient=<id>``, ``patient=Patient/<id>`` or ``patient.identifier=<system>|<value>``
    (looked up, not logged: the search that follows decides access and logs it)."""
    if "patient.identifier" in params:
        system, _, value = params["patient.identifier"].rpartition("|")
        return ctx.service.patient_by_identifier(ctx.access, verb, system or None, value)
    given = params.get("patient") or params.get("subject")
    if not given:
        raise InvalidInput(
            "Search by patient: patient=<id> or patient.identifier=<system>|<fnr>.", "patient"
        )
    return check_id(given.removeprefix("Patient/"), "patient")


# -- Patient -------------------------------------------------------------------------------


def patient_create(ctx: Ctx) -> Response:
    resource = validate(ctx.json(), "Patient")
    patient, created = ctx.service.register_patient(ctx.access, resource)
    version = int(patient["meta"]["versionId"])
    return fhir_response(
        patient,
        201 if created else 200,
        version=version,
        location=f"{ctx.base}/Patient/{patient['id']}/_history/{version}" if created else None,
    )


def patient_read(ctx: Ctx) -> Response:
    patient = ctx.service.read_patient(ctx.access, ctx.path["id"])
    return fhir_response(patient, version=int(patient["meta"]["versionId"]))


def patient_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable("Patient"))
    if "identifier" not in params:
        raise InvalidInput(
            "Search patients by identifier=<system>|<fødselsnummer or D-nummer>.", "identifier"
        )
    system, _, value = params["identifier"].rpartition("|")
    found = ctx.service.find_patient(ctx.access, system or None, value)
    items = [found] if found else []
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


# -- List ----------------------------------------------------------------------------------


def list_create(ctx: Ctx) -> Response:
    resource = validate(ctx.json(), "List")
    result = ctx.service.create_list(ctx.access, resource, ctx.reason())
    stored = _written_list(result)
    return fhir_response(
        stored.text,
        201,
        version=stored.version,
        updated=stored.updated,
        location=f"{ctx.base}/List/{result.list_id}/_history/{stored.version}",
    )


def _written_list(result: ChangeResult) -> Stored:
    if result.list is None:  # every list operation makes a version or is refused
        raise RuntimeError("a list operation made no version")
    return result.list


async def list_read(ctx: Ctx) -> Response:
    stored = await ctx.reads.current(ctx.access, list_id=ctx.path["id"])
    if stored is None:
        raise NotFound(f"List/{ctx.path['id']} does not exist.", "List.id")
    return _stored(stored)


async def list_search(ctx: Ctx) -> Response:
    """``?patient=`` finds the PLL; ``&_include=List:item`` returns the whole current list
    (List, entries and their prescriptions) as stored: one keyed lookup."""
    params = ctx.query(searchable("List"))
    include = params.get("_include")
    if include not in (None, "List:item"):
        raise InvalidInput("Only _include=List:item is supported.", "_include")
    keys = [k for k in ("_id", "patient", "subject", "patient.identifier") if k in params]
    if len(keys) != 1:
        raise InvalidInput(
            "Name the list by exactly one of _id, patient or patient.identifier.",
            keys[1] if keys else "patient",
        )
    document = bool(include)
    if "_id" in params:
        stored = await ctx.reads.current(
            ctx.access, list_id=check_id(params["_id"], "_id"), document=document
        )
    elif "patient.identifier" in params:
        system, _, value = params["patient.identifier"].rpartition("|")
        stored = await ctx.reads.current(
            ctx.access, identifier=(system or None, value), document=document
        )
    else:
        stored = await ctx.reads.current(
            ctx.access, patient_id=_patient_param(ctx, params), document=document
        )
    if stored is None:
        return fhir_response(bundles.searchset(ctx.base, [], 0, str(ctx.request.url), None, "List"))
    if include:
        # The stored document's fullUrls are relative; make them absolute for this server.
        body = stored.text.replace('"fullUrl":"/', f'"fullUrl":"{ctx.base}/')
        return fhir_response(body, version=stored.version)
    return fhir_response(
        bundles.searchset(ctx.base, [stored.text], 1, str(ctx.request.url), None, "List")
    )


def list_history(ctx: Ctx) -> Response:
    params = ctx.query({"_count", "_offset", "_upto"})  # history takes paging only
    count, offset = ctx.paging(params)
    list_id = ctx.path["id"]
    total, items, upto = ctx.service.list_history(
        ctx.access, list_id, count, offset, ctx.upto(params)
    )
    self_url, next_url = ctx.page_urls(count, offset, total, _upto=upto)
    return fhir_response(
        bundles.history(ctx.base, "List", list_id, [s for s, _ in items], total, self_url, next_url)
    )


def list_vread(ctx: Ctx) -> Response:
    version = _version(ctx.path["vid"])
    return _stored(ctx.service.list_version(ctx.access, ctx.path["id"], version))


def _version(value: str, where: str = "versionId") -> int:
    return check_version(value, where)


def list_diff(ctx: Ctx) -> Response:
    params = ctx.query({"from", "to"})
    if "from" not in params or "to" not in params:
        raise InvalidInput("$diff needs from=<version> and to=<version>.", "from")
    diff = ctx.service.diff(
        ctx.access, ctx.path["id"], _version(params["from"], "from"), _version(params["to"], "to")
    )
    return fhir_response(bundles.diff_parameters(diff))


def list_compare(ctx: Ctx) -> Response:
    """``POST List/{id}/$compare``: the differences between the list and another source (the
    dispensing history, or a list given as a Bundle or List of MedicationStatement)."""
    source = reconcile_fhir.compare_request(ctx.json())
    found = Reconciliation(ctx.service).compare(ctx.access, ctx.path["id"], source)
    answer = reconcile_fhir.comparison_answer(
        found.list_id, found.list_version, found.origin, list(found.differences)
    )
    return fhir_response(answer, headers={"X-PLL-List-Version": str(found.list_version)})


def list_reconcile(ctx: Ctx) -> Response:
    """``POST List/{id}/$reconcile`` with ``If-Match``: take the accepted differences and
    confirm the list, as one change; answers with the List as ``$confirm`` does."""
    source, accepted, reason = reconcile_fhir.reconcile_request(ctx.json())
    done = Reconciliation(ctx.service).resolve(
        ctx.access, ctx.path["id"], source, accepted, _if_match(ctx), reason or ctx.reason()
    )
    stored = _written_list(done.result)
    headers = {
        "X-PLL-List-Version": str(stored.version),
        "X-PLL-Findings": str(len(done.result.findings)),
    }
    return fhir_response(
        stored.text, version=stored.version, updated=stored.updated, headers=headers
    )


def _operation_reason(ctx: Ctx) -> str | None:
    """``reason`` from a ``Parameters`` body, if any; else from ``X-Provenance``."""
    if not ctx.body.strip():
        return ctx.reason()
    params = validate(ctx.json(), "Parameters")
    reason = None
    for i, p in enumerate(params.get("parameter", [])):
        where = f"Parameters.parameter[{i}]"
        if p.get("name") != "reason":
            raise InvalidInput(
                f"Unknown parameter {p.get('name')!r}; this operation takes only 'reason'.",
                f"{where}.name",
            )
        if "valueString" not in p or reason is not None:
            raise InvalidInput("Give one 'reason', as valueString.", where)
        reason = p["valueString"]
    return reason or ctx.reason()


def _list_operation(kind: str) -> Handler:
    def handler(ctx: Ctx) -> Response:
        reason = _operation_reason(ctx)
        op = Op(kind, if_match=_if_match(ctx), reason=reason)  # type: ignore[arg-type]
        result = ctx.service.change_list(ctx.access, ctx.path["id"], [op], reason)
        return _stored(_written_list(result))

    handler.__name__ = f"list_{kind}"
    return handler


# -- MedicationStatement and MedicationRequest ---------------------------------------------


def _resource_handlers(rtype: str) -> dict[str, Handler]:
    def create(ctx: Ctx) -> Response:
        resource = validate(ctx.json(), rtype)
        result = ctx.service.create_resource(ctx.access, rtype, resource, ctx.reason())
        return _written(
            ctx, result, next(w for w in result.written if w.rtype == rtype and w.created)
        )

    def update(ctx: Ctx) -> Response:
        rid = ctx.path["id"]
        resource = validate(ctx.json(), rtype)
        result = ctx.service.update_resource(
            ctx.access, rtype, rid, resource, _if_match(ctx), ctx.reason()
        )
        written = next(w for w in result.written if w.rtype == rtype and w.id == rid)
        return _written(ctx, result, written)

    def read(ctx: Ctx) -> Response:
        return _stored(ctx.service.read_resource(ctx.access, rtype, ctx.path["id"]))

    def vread(ctx: Ctx) -> Response:
        return _stored(
            ctx.service.resource_version(
                ctx.access, rtype, ctx.path["id"], _version(ctx.path["vid"])
            )
        )

    def history(ctx: Ctx) -> Response:
        ctx.query(set())
        items = ctx.service.resource_history(ctx.access, rtype, ctx.path["id"])
        return fhir_response(
            bundles.history(
                ctx.base, rtype, ctx.path["id"], items, len(items), str(ctx.request.url), None
            )
        )

    def search(ctx: Ctx) -> Response:
        params = ctx.query(searchable(rtype))
        count, offset = ctx.paging(params)
        patient_id = _patient_param(ctx, params)
        total, texts = (
            ctx.service.search_resources(ctx.access, rtype, patient_id, count, offset)
            if patient_id
            else (0, [])
        )
        self_url, next_url = ctx.page_urls(count, offset, total)
        return fhir_response(bundles.searchset(ctx.base, texts, total, self_url, next_url, rtype))

    handlers: dict[str, Handler] = {
        "create": create,
        "update": update,
        "read": read,
        "vread": vread,
        "history-instance": history,
        "search-type": search,
    }
    for name, fn in handlers.items():
        fn.__name__ = f"{rtype}_{name}"
    return handlers


# -- Provenance and transactions -----------------------------------------------------------


def provenance_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable("Provenance"))
    if "target" not in params:
        raise InvalidInput(
            "Search Provenance by target=List/<id> or MedicationStatement/<id>.", "target"
        )
    count, offset = ctx.paging(params)
    total, items, upto = ctx.service.provenance(
        ctx.access, params["target"], count, offset, ctx.upto(params)
    )
    self_url, next_url = ctx.page_urls(count, offset, total, _upto=upto)
    return fhir_response(bundles.search_bundle(ctx.base, items, total, self_url, next_url))


def provenance_read(ctx: Ctx) -> Response:
    return fhir_response(ctx.service.read_provenance(ctx.access, ctx.path["id"]))


def transaction_post(ctx: Ctx) -> Response:
    return fhir_response(transaction.run(ctx.service, ctx.access, ctx.json(), ctx.reason()))


# -- SFM Basis ---------------------------------------------------------------------------------


def get_medication(ctx: Ctx) -> Response:
    """``POST Patient/$getMedication``: the list as an SFM Basis document."""
    return fhir_response(SfmService(ctx.service).get_medication(ctx.access, ctx.json()))


def send_medication(ctx: Ctx) -> Response:
    """``POST Patient/$sendMedication``: the doctor's complete list, as SFM Basis sends it."""
    answer, result = SfmService(ctx.service).send_medication(ctx.access, ctx.json(), ctx.reason())
    headers = {}
    if result is not None:
        headers["X-PLL-Findings"] = str(len(result.findings))
        if result.list_version is not None:
            headers["X-PLL-List-Version"] = str(result.list_version)
    return fhir_response(answer, headers=headers)


# -- e-multidose and dispensing ----------------------------------------------------------------


def _optional_body(ctx: Ctx) -> Any:
    """The ``Parameters`` of an operation whose parameters are all optional (or ``None``)."""
    return ctx.json() if ctx.body.strip() else None


def multidose_read(ctx: Ctx) -> Response:
    """``GET Patient/{id}/$multidose``: the e-multidose registration and paper multidose."""
    ctx.query(set())
    return fhir_response(MultidoseService(ctx.service).state(ctx.access, ctx.path["id"]))


def multidose_register(ctx: Ctx) -> Response:
    """``POST Patient/{id}/$multidose-register`` (M27): the caller becomes the responsible
    multidose doctor, with the named pharmacy."""
    answer = MultidoseService(ctx.service).register(
        ctx.access, ctx.path["id"], ctx.json(), ctx.reason()
    )
    return fhir_response(answer)


def multidose_end(ctx: Ctx) -> Response:
    answer = MultidoseService(ctx.service).end(
        ctx.access, ctx.path["id"], _optional_body(ctx), ctx.reason()
    )
    return fhir_response(answer)


def paper_multidose(ctx: Ctx) -> Response:
    answer = MultidoseService(ctx.service).paper(ctx.access, ctx.path["id"], _optional_body(ctx))
    return fhir_response(answer)


def paper_multidose_end(ctx: Ctx) -> Response:
    answer = MultidoseService(ctx.service).paper_end(
        ctx.access, ctx.path["id"], _optional_body(ctx), ctx.reason()
    )
    return fhir_response(answer)


def packing_basis(ctx: Ctx) -> Response:
    """``GET List/{id}/$packing-basis`` (M25.1): what the multidose pharmacy packs from."""
    ctx.query(set())
    return fhir_response(MultidoseService(ctx.service).packing_basis(ctx.access, ctx.path["id"]))


def packing_report(ctx: Ctx) -> Response:
    """``POST List/{id}/$packing-report`` (M25.3): what the pharmacy packed, for which period."""
    answer = MultidoseService(ctx.service).packing_report(ctx.access, ctx.path["id"], ctx.json())
    return fhir_response(answer)


def propose(ctx: Ctx) -> Response:
    """``POST List/{id}/$propose`` (M25.2): the multidose pharmacy's proposal."""
    return fhir_response(
        MultidoseService(ctx.service).propose(ctx.access, ctx.path["id"], ctx.json())
    )


def proposals(ctx: Ctx) -> Response:
    params = ctx.query({"status"})
    return fhir_response(
        MultidoseService(ctx.service).proposals(ctx.access, ctx.path["id"], params.get("status"))
    )


def decide(ctx: Ctx) -> Response:
    """``POST List/{id}/$decide``: the responsible doctor accepts or rejects proposed items."""
    answer, result = MultidoseService(ctx.service).decide(
        ctx.access, ctx.path["id"], ctx.json(), ctx.reason()
    )
    headers = {"X-PLL-Findings": str(len(result.findings) if result else 0)}
    if result is not None and result.list_version is not None:
        headers["X-PLL-List-Version"] = str(result.list_version)
    return fhir_response(answer, headers=headers)


def dispense_create(ctx: Ctx) -> Response:
    resource = validate(ctx.json(), "MedicationDispense")
    stored, version = DispensingService(ctx.service).dispense(ctx.access, resource)
    return fhir_response(
        stored,
        201,
        version=1,
        location=f"{ctx.base}/MedicationDispense/{stored['id']}/_history/1",
        headers={"X-PLL-List-Version": str(version)},
    )


def dispense_read(ctx: Ctx) -> Response:
    return fhir_response(DispensingService(ctx.service).read(ctx.access, ctx.path["id"]), version=1)


def dispense_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable("MedicationDispense"))
    count, offset = ctx.paging(params)
    patient_id = _patient_param(ctx, params)
    total, items = (
        DispensingService(ctx.service).search(ctx.access, patient_id, count, offset)
        if patient_id
        else (0, [])
    )
    self_url, next_url = ctx.page_urls(count, offset, total)
    return fhir_response(bundles.search_bundle(ctx.base, items, total, self_url, next_url))


# -- the patient's blocks and access log -----------------------------------------------------


def consent_create(ctx: Ctx) -> Response:
    stored = PatientAccess(ctx.service).block(ctx.access, ctx.json())
    return fhir_response(
        stored, 201, version=1, location=f"{ctx.base}/Consent/{stored['id']}/_history/1"
    )


def consent_read(ctx: Ctx) -> Response:
    return fhir_response(PatientAccess(ctx.service).read_block(ctx.access, ctx.path["id"]))


def consent_delete(ctx: Ctx) -> Response:
    """Unblock: the Consent becomes ``inactive`` and stays in the patient's record."""
    return fhir_response(PatientAccess(ctx.service).unblock(ctx.access, ctx.path["id"]))


def consent_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable("Consent"))
    patient_id = _patient_param(ctx, params, Verb.OWN)
    items = PatientAccess(ctx.service).blocks(ctx.access, patient_id) if patient_id else []
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


def audit_event_search(ctx: Ctx) -> Response:
    """The patient's access log: who read or changed their data, when, on what basis."""
    params = ctx.query(searchable("AuditEvent"))
    count, offset = ctx.paging(params)
    patient_id = _patient_param(ctx, params, Verb.OWN)
    total, items = (
        PatientAccess(ctx.service).access_log(ctx.access, patient_id, count, offset)
        if patient_id
        else (0, [])
    )
    self_url, next_url = ctx.page_urls(count, offset, total)
    return fhir_response(bundles.search_bundle(ctx.base, items, total, self_url, next_url))


# -- decision support, drugs and drug reactions --------------------------------------------


def list_check(ctx: Ctx) -> Response:
    """``GET List/{id}/$check``: every finding on the list as it is."""
    ctx.query(set())
    _, found = ctx.service.check_list(ctx.access, ctx.path["id"])
    return fhir_response(findings.outcome(found))


def list_check_change(ctx: Ctx) -> Response:
    """``POST List/$check`` with a transaction Bundle: what the change would bring, without
    writing it."""
    patient_id, found = transaction.check(ctx.service, ctx.access, ctx.json())
    if patient_id is not None:
        ctx.service.log_check(ctx.access, patient_id, None)
    return fhir_response(findings.outcome(found))


def medication_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable("Medication"))
    count, _ = ctx.paging(params)
    items = Catalogue(ctx.service.db).search(
        name=params.get("name"),
        code=params.get("code"),
        substance=params.get("substance"),
        count=count,
    )
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


def medication_read(ctx: Ctx) -> Response:
    return fhir_response(Catalogue(ctx.service.db).read(ctx.path["id"]))


def _allergy_written(ctx: Ctx, stored: Stored, found: list[Any], status: int) -> Response:
    """A recorded reaction; CAVE conflicts with the list as for list changes."""
    body: str | dict[str, Any] = stored.text
    if "return=operationoutcome" in ctx.request.headers.get("prefer", "").lower():
        body = findings.outcome(found)
    rid = orjson.loads(stored.text)["id"]
    return fhir_response(
        body,
        status,
        version=stored.version,
        updated=stored.updated,
        location=f"{ctx.base}/AllergyIntolerance/{rid}/_history/{stored.version}"
        if status == 201
        else None,
        headers={"X-PLL-Findings": str(len(found))},
    )


def allergy_create(ctx: Ctx) -> Response:
    stored, found = Allergies(ctx.service).create(ctx.access, ctx.json())
    return _allergy_written(ctx, stored, found, 201)


def allergy_update(ctx: Ctx) -> Response:
    stored, found = Allergies(ctx.service).update(
        ctx.access, ctx.path["id"], ctx.json(), _if_match(ctx)
    )
    return _allergy_written(ctx, stored, found, 200)


def allergy_read(ctx: Ctx) -> Response:
    return _stored(Allergies(ctx.service).read(ctx.access, ctx.path["id"]))


def allergy_history(ctx: Ctx) -> Response:
    ctx.query(set())
    items = Allergies(ctx.service).history(ctx.access, ctx.path["id"])
    return fhir_response(
        bundles.history(
            ctx.base,
            "AllergyIntolerance",
            ctx.path["id"],
            items,
            len(items),
            str(ctx.request.url),
            None,
        )
    )


def allergy_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable("AllergyIntolerance"))
    patient_id = _patient_param(ctx, params)
    items = Allergies(ctx.service).search(ctx.access, patient_id) if patient_id else []
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


# -- subscriptions ----------------------------------------------------------------------------


def subscription_create(ctx: Ctx) -> Response:
    created = Subscriptions(ctx.service).create(ctx.access, ctx.json())
    return fhir_response(created, 201, location=f"{ctx.base}/Subscription/{created['id']}")


def subscription_read(ctx: Ctx) -> Response:
    return fhir_response(Subscriptions(ctx.service).read(ctx.access, ctx.path["id"]))


def subscription_search(ctx: Ctx) -> Response:
    ctx.query(set())
    items = Subscriptions(ctx.service).search(ctx.access)
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


def subscription_delete(ctx: Ctx) -> Response:
    """End a subscription: kept with status ``off``, no longer delivered to."""
    return fhir_response(Subscriptions(ctx.service).end(ctx.access, ctx.path["id"]))


# -- discrepancy cases (Task) -----------------------------------------------------------------


def task_create(ctx: Ctx) -> Response:
    """``POST Task``: report a discrepancy on a List or a MedicationStatement; PLL routes it
    to the responsible prescriber's organisation."""
    stored = CaseService(ctx.service).report(ctx.access, ctx.json())
    rid = orjson.loads(stored.text)["id"]
    return fhir_response(
        stored.text,
        201,
        version=stored.version,
        updated=stored.updated,
        location=f"{ctx.base}/Task/{rid}/_history/{stored.version}",
    )


def task_read(ctx: Ctx) -> Response:
    return _stored(CaseService(ctx.service).read(ctx.access, ctx.path["id"]))


def task_vread(ctx: Ctx) -> Response:
    return _stored(
        CaseService(ctx.service).version(ctx.access, ctx.path["id"], _version(ctx.path["vid"]))
    )


def task_history(ctx: Ctx) -> Response:
    ctx.query(set())
    items = CaseService(ctx.service).history(ctx.access, ctx.path["id"])
    return fhir_response(
        bundles.history(
            ctx.base, "Task", ctx.path["id"], items, len(items), str(ctx.request.url), None
        )
    )


def task_search(ctx: Ctx) -> Response:
    """``GET Task?patient=<id>[&status=requested,in-progress]``: the patient's cases, newest
    first (the open ones are those the list shows); or ``GET Task?owner=<orgnr>``: the cases
    addressed to the caller's own organisation, its inbox."""
    params = ctx.query(searchable("Task"))
    count, offset = ctx.paging(params)
    statuses = cases_fhir.statuses(params["status"]) if "status" in params else None
    if "owner" in params:
        if {"patient", "subject", "patient.identifier"} & params.keys():
            raise InvalidInput("Search Task by patient or by owner, not both.", "owner")
        system, _, org = params["owner"].rpartition("|")
        if system not in ("", ORGNR) or not (org.isascii() and org.isdigit()):
            raise InvalidInput(
                f"owner is an organisation number: owner={ORGNR}|<orgnr> or the number alone.",
                "owner",
            )
        total, left_out, texts = CaseService(ctx.service).inbox(
            ctx.access, org, statuses, count, offset
        )
        self_url, next_url = ctx.page_urls(count, offset, total)
        bundle = bundles.searchset(ctx.base, texts, total, self_url, next_url, "Task")
        return fhir_response(bundle, headers={"X-PLL-Left-Out": str(left_out)})
    patient_id = _patient_param(ctx, params)
    total, texts = (
        CaseService(ctx.service).search(ctx.access, patient_id, statuses, count, offset)
        if patient_id
        else (0, [])
    )
    self_url, next_url = ctx.page_urls(count, offset, total)
    return fhir_response(bundles.searchset(ctx.base, texts, total, self_url, next_url, "Task"))


def _task_operation(action: Action) -> Handler:
    """``POST Task/{id}/$<action>`` with an optional ``Parameters`` ``comment`` and an
    optional ``If-Match`` (the case version acted on): the Task as it now is."""

    def handler(ctx: Ctx) -> Response:
        done = CaseService(ctx.service).act(
            ctx.access, ctx.path["id"], action, _optional_body(ctx), _if_match(ctx)
        )
        return _stored(done)

    handler.__name__ = f"task_{action.value}"
    return handler


# -- the route table -----------------------------------------------------------------------


@dataclass(frozen=True)
class FhirRoute:
    path: str
    method: str
    handler: Handler | AsyncHandler
    rtype: str | None  # for the CapabilityStatement
    interaction: str | None
    operation: str | None = None


def _routes() -> list[FhirRoute]:
    routes = [
        # The current-list reads first: routes are matched in order, and these are the
        # requests PLL serves most.
        FhirRoute("/fhir/List", "GET", list_search, "List", "search-type"),
        FhirRoute("/fhir/List/{id}", "GET", list_read, "List", "read"),
        FhirRoute("/fhir", "POST", transaction_post, None, "transaction"),
        FhirRoute("/fhir/Patient", "POST", patient_create, "Patient", "create"),
        FhirRoute("/fhir/Patient", "GET", patient_search, "Patient", "search-type"),
        FhirRoute("/fhir/Patient/{id}", "GET", patient_read, "Patient", "read"),
        FhirRoute(
            "/fhir/Patient/$getMedication", "POST", get_medication, "Patient", None, "getMedication"
        ),
        FhirRoute(
            "/fhir/Patient/$sendMedication",
            "POST",
            send_medication,
            "Patient",
            None,
            "sendMedication",
        ),
        FhirRoute("/fhir/List", "POST", list_create, "List", "create"),
        FhirRoute("/fhir/List/{id}/_history", "GET", list_history, "List", "history-instance"),
        FhirRoute("/fhir/List/{id}/_history/{vid}", "GET", list_vread, "List", "vread"),
        FhirRoute("/fhir/List/{id}/$diff", "GET", list_diff, "List", None, "diff"),
        FhirRoute("/fhir/List/{id}/$compare", "POST", list_compare, "List", None, "compare"),
        FhirRoute("/fhir/List/{id}/$reconcile", "POST", list_reconcile, "List", None, "reconcile"),
        FhirRoute(
            "/fhir/List/{id}/$confirm", "POST", _list_operation("confirm"), "List", None, "confirm"
        ),
        FhirRoute(
            "/fhir/List/{id}/$pause", "POST", _list_operation("pause"), "List", None, "pause"
        ),
        FhirRoute(
            "/fhir/List/{id}/$resume", "POST", _list_operation("resume"), "List", None, "resume"
        ),
        *_multidose_routes(),
        FhirRoute("/fhir/Provenance", "GET", provenance_search, "Provenance", "search-type"),
        FhirRoute("/fhir/Provenance/{id}", "GET", provenance_read, "Provenance", "read"),
        FhirRoute("/fhir/Consent", "POST", consent_create, "Consent", "create"),
        FhirRoute("/fhir/Consent", "GET", consent_search, "Consent", "search-type"),
        FhirRoute("/fhir/Consent/{id}", "GET", consent_read, "Consent", "read"),
        FhirRoute("/fhir/Consent/{id}", "DELETE", consent_delete, "Consent", "delete"),
        FhirRoute("/fhir/AuditEvent", "GET", audit_event_search, "AuditEvent", "search-type"),
        FhirRoute("/fhir/List/{id}/$check", "GET", list_check, "List", None, "check"),
        FhirRoute("/fhir/List/$check", "POST", list_check_change, "List", None, "check-change"),
        FhirRoute("/fhir/Medication", "GET", medication_search, "Medication", "search-type"),
        FhirRoute("/fhir/Medication/{id}", "GET", medication_read, "Medication", "read"),
        FhirRoute(
            "/fhir/AllergyIntolerance", "POST", allergy_create, "AllergyIntolerance", "create"
        ),
        FhirRoute(
            "/fhir/AllergyIntolerance", "GET", allergy_search, "AllergyIntolerance", "search-type"
        ),
        FhirRoute(
            "/fhir/AllergyIntolerance/{id}", "GET", allergy_read, "AllergyIntolerance", "read"
        ),
        FhirRoute(
            "/fhir/AllergyIntolerance/{id}", "PUT", allergy_update, "AllergyIntolerance", "update"
        ),
        FhirRoute(
            "/fhir/AllergyIntolerance/{id}/_history",
            "GET",
            allergy_history,
            "AllergyIntolerance",
            "history-instance",
        ),
    ]
    routes += _task_routes()
    routes += [
        FhirRoute("/fhir/Subscription", "POST", subscription_create, "Subscription", "create"),
        FhirRoute("/fhir/Subscription", "GET", subscription_search, "Subscription", "search-type"),
        FhirRoute("/fhir/Subscription/{id}", "GET", subscription_read, "Subscription", "read"),
        FhirRoute(
            "/fhir/Subscription/{id}", "DELETE", subscription_delete, "Subscription", "delete"
        ),
    ]
    for rtype in LIST_RESOURCES:
        h = _resource_handlers(rtype)
        routes += [
            FhirRoute(f"/fhir/{rtype}", "POST", h["create"], rtype, "create"),
            FhirRoute(f"/fhir/{rtype}", "GET", h["search-type"], rtype, "search-type"),
            FhirRoute(f"/fhir/{rtype}/{{id}}", "GET", h["read"], rtype, "read"),
            FhirRoute(f"/fhir/{rtype}/{{id}}", "PUT", h["update"], rtype, "update"),
            FhirRoute(
                f"/fhir/{rtype}/{{id}}/_history",
                "GET",
                h["history-instance"],
                rtype,
                "history-instance",
            ),
            FhirRoute(f"/fhir/{rtype}/{{id}}/_history/{{vid}}", "GET", h["vread"], rtype, "vread"),
        ]
    return routes


def _task_routes() -> list[FhirRoute]:
    task = "/fhir/Task/{id}"
    return [
        FhirRoute("/fhir/Task", "POST", task_create, "Task", "create"),
        FhirRoute("/fhir/Task", "GET", task_search, "Task", "search-type"),
        FhirRoute(task, "GET", task_read, "Task", "read"),
        FhirRoute(f"{task}/_history", "GET", task_history, "Task", "history-instance"),
        FhirRoute(f"{task}/_history/{{vid}}", "GET", task_vread, "Task", "vread"),
        *(
            FhirRoute(
                f"{task}/${action.value}",
                "POST",
                _task_operation(action),
                "Task",
                None,
                action.value,
            )
            for action in Action
            if action is not Action.REPORT
        ),
    ]


def _multidose_routes() -> list[FhirRoute]:
    patient, lst = "/fhir/Patient/{id}", "/fhir/List/{id}"
    return [
        FhirRoute(f"{patient}/$multidose", "GET", multidose_read, "Patient", None, "multidose"),
        FhirRoute(
            f"{patient}/$multidose-register",
            "POST",
            multidose_register,
            "Patient",
            None,
            "multidose-register",
        ),
        FhirRoute(
            f"{patient}/$multidose-end", "POST", multidose_end, "Patient", None, "multidose-end"
        ),
        FhirRoute(
            f"{patient}/$paper-multidose",
            "POST",
            paper_multidose,
            "Patient",
            None,
            "paper-multidose",
        ),
        FhirRoute(
            f"{patient}/$paper-multidose-end",
            "POST",
            paper_multidose_end,
            "Patient",
            None,
            "paper-multidose-end",
        ),
        FhirRoute(f"{lst}/$packing-basis", "GET", packing_basis, "List", None, "packing-basis"),
        FhirRoute(f"{lst}/$packing-report", "POST", packing_report, "List", None, "packing-report"),
        FhirRoute(f"{lst}/$propose", "POST", propose, "List", None, "propose"),
        FhirRoute(f"{lst}/$proposals", "GET", proposals, "List", None, "proposals"),
        FhirRoute(f"{lst}/$decide", "POST", decide, "List", None, "decide"),
        FhirRoute(
            "/fhir/MedicationDispense", "POST", dispense_create, "MedicationDispense", "create"
        ),
        FhirRoute(
            "/fhir/MedicationDispense", "GET", dispense_search, "MedicationDispense", "search-type"
        ),
        FhirRoute(
            "/fhir/MedicationDispense/{id}", "GET", dispense_read, "MedicationDispense", "read"
        ),
    ]


ROUTES = _routes()

PAGING = [
    ("_count", "number", "page size, 1-500 (default 50)"),
    ("_offset", "number", "where the page starts"),
]
BY_PATIENT = [
    ("patient", "reference", "the patient (Patient/<id> or <id>)"),
    ("subject", "reference", "the same as patient"),
    ("patient.identifier", "token", "the patient's fødselsnummer/D-nummer: <system>|<value>"),
]
#: Every search parameter each type accepts; the handlers refuse any other, and the
#: CapabilityStatement lists exactly these.
SEARCH_PARAMS: dict[str, list[tuple[str, str, str]]] = {
    "Patient": [("identifier", "token", "fødselsnummer or D-nummer: <system>|<value>")],
    "List": [
        *BY_PATIENT,
        ("_id", "token", "the List by id"),
        ("_include", "special", "List:item adds the entries and their prescriptions"),
    ],
    "MedicationStatement": [*BY_PATIENT, *PAGING],
    "MedicationRequest": [*BY_PATIENT, *PAGING],
    "Provenance": [
        ("target", "reference", "changes that wrote a List, entry or prescription (or a version)"),
        *PAGING,
        ("_upto", "number", "the newest list version the pages cover (set by next links)"),
    ],
    "Consent": BY_PATIENT,
    "AllergyIntolerance": BY_PATIENT,
    "Medication": [
        ("name", "string", "a word of the name starts with this (case and accents ignored)"),
        ("code", "token", "ATC code at any level, a package's Varenr or a FEST id"),
        ("substance", "string", "an active substance: name prefix or FEST id"),
        ("_count", "number", "how many, 1-500 (default 50)"),
    ],
    "AuditEvent": [*BY_PATIENT, *PAGING],
    "MedicationDispense": [*BY_PATIENT, *PAGING],
    "Task": [
        *BY_PATIENT,
        (
            "owner",
            "token",
            "the receiving organisation (organisasjonsnummer): its inbox, your own only",
        ),
        ("status", "token", "requested, in-progress, completed, rejected, cancelled (comma: or)"),
        *PAGING,
    ],
}


def searchable(rtype: str) -> set[str]:
    return {name for name, _, _ in SEARCH_PARAMS[rtype]}


OPERATIONS = {
    "diff": "GET List/{id}/$diff?from=V&to=W: the difference between two list versions",
    "compare": (
        "POST List/{id}/$compare with Parameters source (dispensing | patient | discharge | "
        "other) and, but for dispensing, resource (a Bundle or List of MedicationStatement): "
        "the differences between the list and that source, each with an id"
    ),
    "reconcile": (
        "POST List/{id}/$reconcile with If-Match (the list version compared), the same source, "
        "accept (difference ids) and reason: takes the accepted differences and confirms the "
        "list, as one change"
    ),
    "confirm": "POST List/{id}/$confirm with If-Match: confirm the list as reconciled (samstemt)",
    "pause": "POST List/{id}/$pause with a reason: pause the whole PLL",
    "resume": "POST List/{id}/$resume with If-Match: resume the PLL with a confirmed list",
    "check": "GET List/{id}/$check: decision support on the whole list as it is",
    "getMedication": (
        "POST Patient/$getMedication (SFM Basis): Parameters patient (a Patient with a "
        "fødselsnummer or D-nummer), historyTimestamp, SamtykkeKjernejournal (the access "
        "basis); returns the list as an SFM document Bundle in the parameter 'medication'"
    ),
    "sendMedication": (
        "POST Patient/$sendMedication (SFM Basis): Parameters 'medication' with the doctor's "
        "complete list as a document Bundle whose Composition.relatesTo names the client's "
        "latest $getMedication (under 4 hours old); every statement and head of chain of that "
        "read must be in it. Returns recallCount, prescriptionCount, "
        "prescriptionOperationResult and PllResult"
    ),
    "multidose": (
        "GET Patient/{id}/$multidose: the e-multidose registration (responsible doctor, "
        "multidose pharmacy) and paper multidose"
    ),
    "multidose-register": (
        "POST Patient/{id}/$multidose-register (M27) with Parameters pharmacy (a reference "
        "with the pharmacy's organisation number and name), pharmacyHer, reason: the calling "
        "doctor becomes the responsible multidose doctor; one pharmacy per patient"
    ),
    "multidose-end": (
        "POST Patient/{id}/$multidose-end with an optional reason: only the registered "
        "responsible doctor ends the registration"
    ),
    "paper-multidose": (
        "POST Patient/{id}/$paper-multidose with optional pharmacy and note: records paper "
        "multidose, shown as a risk on the list"
    ),
    "paper-multidose-end": "POST Patient/{id}/$paper-multidose-end: paper multidose has ended",
    "packing-basis": (
        "GET List/{id}/$packing-basis (M25.1): the list the multidose pharmacy packs from, "
        "whether it may be packed now (not while paused), each medicine marked packed or not"
    ),
    "packing-report": (
        "POST List/{id}/$packing-report (M25.3) with period, listVersion and one item per "
        "entry packed (entry, firstDose, lastDose, dispense): responsible pharmacy only; "
        "refused while the PLL is paused"
    ),
    "propose": (
        "POST List/{id}/$propose (M25.2) with items (action new|change|remove, entry "
        "MedicationStatement/<id>/_history/<v>, statement, reason): responsible pharmacy only"
    ),
    "proposals": "GET List/{id}/$proposals?status=pending|accepted|rejected: the proposals",
    "decide": (
        "POST List/{id}/$decide with decision (item, outcome accept|reject, reason): the "
        "responsible doctor; accepted items are one change of the list under their name"
    ),
    "take": (
        "POST Task/{id}/$take (a doctor of the organisation the case went to; optional "
        "comment, optional If-Match): the case is in progress, and theirs"
    ),
    "comment": (
        "POST Task/{id}/$comment with Parameters comment (the reporter, or the receiving "
        "organisation's health personnel): a note on the case"
    ),
    "resolve": (
        "POST Task/{id}/$resolve with an optional comment (a doctor of the receiving "
        "organisation): the discrepancy is dealt with; the case is completed"
    ),
    "reject": (
        "POST Task/{id}/$reject with Parameters comment, why (a doctor of the receiving "
        "organisation): there is no discrepancy; the case is rejected"
    ),
    "withdraw": (
        "POST Task/{id}/$withdraw with an optional comment (the reporter): the case is cancelled"
    ),
    "check-change": (
        "POST List/$check with a transaction Bundle: decision support on that change, "
        "without writing it"
    ),
}


def capability_statement(base: str, software_version: str) -> dict[str, Any]:
    """The CapabilityStatement, built from the route table so it cannot drift."""
    by_type: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        if route.rtype is None:
            continue
        entry = by_type.setdefault(
            route.rtype, {"type": route.rtype, "interaction": [], "operation": []}
        )
        if route.interaction:
            entry["interaction"].append({"code": route.interaction})
        if route.operation:
            entry["operation"].append(
                {
                    "name": route.operation,
                    "definition": f"{PLL_BASE}/OperationDefinition/{route.rtype}-{route.operation}",
                    "documentation": OPERATIONS[route.operation],
                }
            )
    resources = []
    for rtype, entry in by_type.items():
        if rtype in ("List", *LIST_RESOURCES):
            entry |= {
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": False,
                "conditionalUpdate": False,
            }
        if not entry["operation"]:
            del entry["operation"]
        params = SEARCH_PARAMS.get(rtype, [])
        entry["searchParam"] = [
            {"name": n, "type": t, "documentation": d} for n, t, d in params if t != "special"
        ]
        if rtype == "List":
            entry["searchInclude"] = ["List:item"]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "extension": [
            {
                "url": LIMITS,
                "extension": [
                    {"url": "maxBundleEntries", "valueInteger": limits.MAX_BUNDLE_ENTRIES},
                    {"url": "maxListEntries", "valueInteger": limits.MAX_LIST_ENTRIES},
                    {"url": "maxFindings", "valueInteger": limits.MAX_FINDINGS},
                    {"url": "maxSourceItems", "valueInteger": limits.MAX_SOURCE_ITEMS},
                    {"url": "maxSfmEntries", "valueInteger": limits.MAX_SFM_ENTRIES},
                    {"url": "maxSfmStatements", "valueInteger": limits.MAX_SFM_STATEMENTS},
                    {"url": "maxSfmRequests", "valueInteger": limits.MAX_SFM_REQUESTS},
                    {"url": "maxSfmWrites", "valueInteger": limits.MAX_SFM_WRITES},
                    {"url": "maxProposalItems", "valueInteger": limits.MAX_PROPOSAL_ITEMS},
                    {"url": "maxPendingItems", "valueInteger": limits.MAX_PENDING_ITEMS},
                    {"url": "maxPackingItems", "valueInteger": limits.MAX_PACKING_ITEMS},
                    {"url": "maxActiveReactions", "valueInteger": limits.MAX_ACTIVE_REACTIONS},
                ],
            }
        ],
        "status": "active",
        "date": "2026-11-21",
        "kind": "instance",
        "software": {"name": "PLL", "version": software_version},
        "implementation": {"description": "Pasientens legemiddelliste (PLL)", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Writes to existing resources require If-Match "
                    "(412 when stale, 428 when missing). "
                    "The reason for a change may be sent as an X-Provenance header. "
                    "GET List?patient=<id>&_include=List:item returns the whole current list. "
                    "Every change to the list is checked (interactions from FEST, duplicate "
                    "therapy, CAVE against AllergyIntolerance, drugs no longer in FEST): the "
                    "number of findings is in the X-PLL-Findings header, and the findings "
                    "themselves are the body with Prefer: return=OperationOutcome (in a "
                    "transaction, each finding once, in response.outcome of the first entry it "
                    "names). An interaction of relevance 1 "
                    "or a CAVE conflict brought by the change refuses it (422) unless "
                    f"{findings.OVERRIDE_HEADER} gives the reason for going ahead and "
                    f"{findings.OVERRIDE_FINDINGS_HEADER} names the findings accepted (their "
                    "codes, as details.coding.display of the 422); both are kept with the "
                    "change and shown in its Provenance. "
                    f"Limits: a transaction Bundle (and List/$check, and a CDS Hooks request's "
                    f"draft orders) holds at most {limits.MAX_BUNDLE_ENTRIES} entries; a list "
                    f"holds at most {limits.MAX_LIST_ENTRIES} medicines (entries in use or "
                    "discontinued within 90 days, and prescriptions in use without an entry); "
                    "beyond either the request is refused with 422 and nothing is written. One "
                    "answer carries every blocking finding (each one an override must name is "
                    "shown), then warnings and information up to "
                    f"{limits.MAX_FINDINGS} findings in all; an issue (code findings-left-out) "
                    "counts those left out. List/$compare and $reconcile take a source list of "
                    f"at most {limits.MAX_SOURCE_ITEMS} resources. An SFM document "
                    f"($sendMedication) holds at most {limits.MAX_SFM_ENTRIES} entries, "
                    f"{limits.MAX_SFM_STATEMENTS} MedicationStatements and "
                    f"{limits.MAX_SFM_REQUESTS} MedicationRequests, and one send writes at "
                    f"most {limits.MAX_SFM_WRITES} prescriptions and entries (a renewal also "
                    "the prescription it renews). A multidose proposal holds at "
                    f"most {limits.MAX_PROPOSAL_ITEMS} items and a packing report "
                    f"{limits.MAX_PACKING_ITEMS}; at most {limits.MAX_PENDING_ITEMS} proposed "
                    "items wait for the doctor at once (and one $decide names at most as many). "
                    "Past any of these the request is refused with 422 and nothing is written. "
                    f"The same numbers are in the extension {LIMITS}."
                ),
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": (
                        "HelseID access tokens (JWT: RS256, PS256, ES256), sent as "
                        "Authorization: DPoP <token> with a DPoP proof (RFC 9449) or, where "
                        "allowed, Bearer <token>. Health personnel state the basis of every "
                        f"access in the {BASIS_HEADER} header: "
                        + ", ".join(f"{b.value} ({b.display})" for b in Basis)
                        + ". Without a basis there is no data. Patients (security level 4) "
                        "read their own list, its history and its access log "
                        "(AuditEvent?patient=), block named health workers (Consent), and "
                        "act for those they hold a proxy for."
                    ),
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}],
            }
        ],
    }

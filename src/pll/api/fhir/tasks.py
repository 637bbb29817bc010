"""``Task``: discrepancy cases (*avvik*) on a List or a MedicationStatement; report, read,
history, search by patient or by the receiving organisation's inbox, and the operations that
handle a case (``$take``, ``$comment``, ``$resolve``, ``$reject``, ``$withdraw``)
(:class:`~pll.services.cases.CaseService`)."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from pll.api.fhir.common import (
    BY_PATIENT,
    PAGING,
    FhirRoute,
    SearchParam,
    if_match,
    optional_body,
    patient_param,
    searchable,
    stored_response,
    version_param,
)
from pll.api.http import Ctx, Handler, fhir_response
from pll.domain.cases import Action
from pll.domain.errors import InvalidInput, NotFound
from pll.domain.model import Role
from pll.fhir import bundles
from pll.fhir import cases as cases_fhir
from pll.fhir import technical_cases as technical_fhir
from pll.fhir.systems import ORGNR
from pll.services.cases import CaseService
from pll.services.technical_cases import TechnicalCaseService

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "Task": [
        *BY_PATIENT,
        (
            "owner",
            "token",
            "the receiving organisation (organisasjonsnummer): its inbox, your own only",
        ),
        ("status", "token", "requested, in-progress, completed, rejected, cancelled (comma: or)"),
        (
            "overdue",
            "token",
            "true: only the cases still open past their deadline (with owner)",
        ),
        *PAGING,
    ],
}
OPERATIONS = {
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
}


def task_create(ctx: Ctx) -> Response:
    """``POST Task``: report a discrepancy on a List or a MedicationStatement; PLL routes it
    to the responsible prescriber's organisation. A Task with ``code`` ``technical``
    reports a technical error about a client system, routed to its operator."""
    data = ctx.json()
    if technical_fhir.is_technical(data):
        stored = TechnicalCaseService(ctx.service).report(ctx.access, data)
    else:
        stored = CaseService(ctx.service).report(ctx.access, data)
    rid = orjson.loads(stored.text)["id"]
    return fhir_response(
        stored.text,
        201,
        version=stored.version,
        updated=stored.updated,
        location=f"{ctx.base}/Task/{rid}/_history/{stored.version}",
    )


def task_read(ctx: Ctx) -> Response:
    technical = TechnicalCaseService(ctx.service).read(ctx.access, ctx.path["id"])
    if technical is not None:
        return stored_response(technical)
    return stored_response(CaseService(ctx.service).read(ctx.access, ctx.path["id"]))


def task_vread(ctx: Ctx) -> Response:
    version = version_param(ctx.path["vid"])
    technical = TechnicalCaseService(ctx.service).history(ctx.access, ctx.path["id"])
    if technical is not None:
        found = next((v for v in technical if v.version == version), None)
        if found is None:
            raise NotFound(f"Task/{ctx.path['id']} has no version {version}.", "versionId")
        return stored_response(found)
    return stored_response(CaseService(ctx.service).version(ctx.access, ctx.path["id"], version))


def task_history(ctx: Ctx) -> Response:
    ctx.query(set())
    technical = TechnicalCaseService(ctx.service).history(ctx.access, ctx.path["id"])
    items = (
        technical
        if technical is not None
        else CaseService(ctx.service).history(ctx.access, ctx.path["id"])
    )
    return fhir_response(
        bundles.history(
            ctx.base, "Task", ctx.path["id"], items, len(items), str(ctx.request.url), None
        )
    )


def task_search(ctx: Ctx) -> Response:
    """``GET Task?patient=<id>[&status=requested,in-progress]``: the patient's cases, newest
    first (the open ones are those the list shows); or ``GET Task?owner=<orgnr>``: the cases
    addressed to the caller's own organisation, its inbox."""
    params = ctx.query(searchable(SEARCH_PARAMS["Task"]))
    count, offset = ctx.paging(params)
    statuses = cases_fhir.statuses(params["status"]) if "status" in params else None
    only_overdue = _flag(params.get("overdue"))
    if only_overdue and "owner" not in params:
        raise InvalidInput("overdue=true searches an inbox: give owner=<orgnr> too.", "overdue")
    if "owner" in params:
        if {"patient", "subject", "patient.identifier"} & params.keys():
            raise InvalidInput("Search Task by patient or by owner, not both.", "owner")
        system, _, org = params["owner"].rpartition("|")
        if system not in ("", ORGNR) or not (org.isascii() and org.isdigit()):
            raise InvalidInput(
                f"owner is an organisation number: owner={ORGNR}|<orgnr> or the number alone.",
                "owner",
            )
        if ctx.access.actor.role is Role.OPERATOR:
            total, texts = TechnicalCaseService(ctx.service).inbox(
                ctx.access, org, statuses, only_overdue, count, offset
            )
            left_out = 0
        else:
            total, left_out, texts = CaseService(ctx.service).inbox(
                ctx.access, org, statuses, count, offset, only_overdue
            )
        self_url, next_url = ctx.page_urls(count, offset, total)
        bundle = bundles.searchset(ctx.base, texts, total, self_url, next_url, "Task")
        return fhir_response(bundle, headers={"X-PLL-Left-Out": str(left_out)})
    patient_id = patient_param(ctx, params)
    total, texts = (
        CaseService(ctx.service).search(ctx.access, patient_id, statuses, count, offset)
        if patient_id
        else (0, [])
    )
    self_url, next_url = ctx.page_urls(count, offset, total)
    return fhir_response(bundles.searchset(ctx.base, texts, total, self_url, next_url, "Task"))


def _flag(raw: str | None) -> bool:
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise InvalidInput(f"overdue is true or false, not {raw[:20]!r}.", "overdue")


def _task_operation(action: Action) -> Handler:
    """``POST Task/{id}/$<action>`` with an optional ``Parameters`` ``comment`` and an
    optional ``If-Match`` (the case version acted on): the Task as it now is."""

    def handler(ctx: Ctx) -> Response:
        body, expected = optional_body(ctx), if_match(ctx)
        done = TechnicalCaseService(ctx.service).act(
            ctx.access, ctx.path["id"], action, body, expected
        )
        if done is None:
            done = CaseService(ctx.service).act(ctx.access, ctx.path["id"], action, body, expected)
        return stored_response(done)

    handler.__name__ = f"task_{action.value}"
    return handler


def _routes() -> list[FhirRoute]:
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


ROUTES = _routes()

"""The CapabilityStatement served at ``/fhir/metadata``
(https://hl7.org/fhir/R4/capabilitystatement.html), built from the route table so it cannot
drift: each type's interactions and operations are the routes that serve them, its search
parameters those its handlers accept, and the request limits (:mod:`pll.domain.limits`) are
stated in the ``request-limits`` extension and in the documentation."""

from __future__ import annotations

from typing import Any

from pll.api.fhir.common import MIN_VERSION_HEADER
from pll.api.fhir.entries import LIST_RESOURCES
from pll.api.fhir.routes import OPERATIONS, ROUTES, SEARCH_PARAMS
from pll.auth.access import BASIS_HEADER, Basis
from pll.domain import limits
from pll.fhir import findings
from pll.fhir.systems import PLL_BASE

#: The CapabilityStatement extension stating the request limits (:mod:`pll.domain.limits`).
LIMITS = f"{PLL_BASE}/StructureDefinition/request-limits"


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
        # an operation served by GET and POST is one operation
        if route.operation and all(o["name"] != route.operation for o in entry["operation"]):
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
                    "A current-list read (GET List/<id>, GET List?...) may be answered by a "
                    f"read replica: send {MIN_VERSION_HEADER}: <n> (the X-PLL-List-Version of "
                    'your last write) or If-None-Match: W/"<n>" (the list\'s ETag) and the '
                    "answer is version n or later (200 with the list, never 304). "
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

"""What every FHIR route module shares: the route type, search parameters as the
CapabilityStatement states them, and the request parts and responses more than one
resource uses (``If-Match``, version ids, ``patient=``, a stored resource as it is)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from pll.api.http import (
    VERSION_ID,
    AsyncHandler,
    Ctx,
    Handler,
    check_id,
    check_version,
    fhir_response,
)
from pll.auth.access import Verb
from pll.domain.errors import InvalidInput
from pll.services.base import Stored
from pll.services.lists import ChangeResult
from pll.services.transaction import parse_if_match


@dataclass(frozen=True)
class FhirRoute:
    path: str
    method: str
    handler: Handler | AsyncHandler
    rtype: str | None  # for the CapabilityStatement
    interaction: str | None
    operation: str | None = None


#: A search parameter: its name, FHIR type and documentation in the CapabilityStatement.
SearchParam = tuple[str, str, str]

PAGING: list[SearchParam] = [
    ("_count", "number", "page size, 1-500 (default 50)"),
    ("_offset", "number", "where the page starts"),
]
BY_PATIENT: list[SearchParam] = [
    ("patient", "reference", "the patient (Patient/<id> or <id>)"),
    ("subject", "reference", "the same as patient"),
    ("patient.identifier", "token", "the patient's fødselsnummer/D-nummer: <system>|<value>"),
]


def searchable(params: list[SearchParam]) -> set[str]:
    """The names a search accepts: its handler refuses any other."""
    return {name for name, _, _ in params}


def if_match(ctx: Ctx) -> int | None:
    return parse_if_match(ctx.request.headers.get("if-match"))


#: Read-your-writes (issue 21): the list version a client last wrote (``X-PLL-List-Version``
#: of its write) or read (the list's ``ETag``). A read replica whose copy is older does not
#: serve the read; the primary does.
MIN_VERSION_HEADER = "X-PLL-Min-Version"
_ETAG = re.compile(r'(?:W/)?"([0-9]{1,9})"')


def min_version(ctx: Ctx) -> int | None:
    """The least list version the client may be shown: ``X-PLL-Min-Version: <n>`` and
    ``If-None-Match`` with the list's ETag (``W/"n"``; of several, the highest; ``*`` asks
    for none). PLL answers such a read with the list as usual (200), never 304."""
    wanted: list[int] = []
    given = ctx.request.headers.get(MIN_VERSION_HEADER)
    if given is not None:
        if not VERSION_ID.fullmatch(given.strip()):
            raise InvalidInput(
                f"{MIN_VERSION_HEADER} must be a list version number (the X-PLL-List-Version "
                f"or ETag of your last write or read, such as 7), got {given[:40]!r}.",
                MIN_VERSION_HEADER,
            )
        wanted.append(int(given))
    tags = ctx.request.headers.get("if-none-match")
    if tags is not None and tags.strip() != "*":
        for tag in tags.split(","):
            found = _ETAG.fullmatch(tag.strip())
            if found is None:
                raise InvalidInput(
                    'If-None-Match must name list versions as ETags such as W/"7", got '
                    f"{tags[:40]!r}.",
                    "If-None-Match",
                )
            wanted.append(int(found[1]))
    return max(wanted, default=None)


def version_param(value: str, where: str = "versionId") -> int:
    return check_version(value, where)


def optional_body(ctx: Ctx) -> Any:
    """The ``Parameters`` of an operation whose parameters are all optional (or ``None``)."""
    return ctx.json() if ctx.body.strip() else None


def stored_response(stored: Stored) -> Response:
    return fhir_response(stored.text, version=stored.version, updated=stored.updated)


def written_list(result: ChangeResult) -> Stored:
    if result.list is None:  # every list operation makes a version or is refused
        raise RuntimeError("a list operation made no version")
    return result.list


def patient_param(ctx: Ctx, params: dict[str, str], verb: Verb = Verb.READ) -> str | None:
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

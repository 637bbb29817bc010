"""A care unit's settings (:class:`~pll.services.unit_settings.UnitSettingsService`): the
clock time of each round and the group B second-signature rule (issue 17,
docs/administration.md "Unit settings")."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.domain.identifiers import check_orgnr
from pll.fhir import systems
from pll.fhir.administration import schedule_range
from pll.services.unit_settings import UnitSettingsService

OPERATIONS = {
    "care-unit-settings": (
        "POST Organization/$care-unit-settings with Parameters organization (valueIdentifier "
        "with the care unit's organisation number), morgen, formiddag, middag, ettermiddag, "
        "kveld and natt (valueTime, each later than the one before) and "
        "secondSignatureGroupB (valueBoolean): a nurse or doctor of that unit sets its "
        "rounds' clock times and whether prescription group B drugs need a second signer, "
        "from the next day on. GET Organization/$care-unit-settings?organization=<orgnr>"
        "[&date=YYYY-MM-DD]: the settings that apply that day (default today; the defaults "
        "where the unit has set none)"
    ),
}


def set_settings(ctx: Ctx) -> Response:
    """``POST Organization/$care-unit-settings``."""
    return fhir_response(UnitSettingsService(ctx.service).set(ctx.access, ctx.json()))


def get_settings(ctx: Ctx) -> Response:
    """``GET Organization/$care-unit-settings?organization=<orgnr>[&date=YYYY-MM-DD]``."""
    params = ctx.query({"organization", "date"})
    raw = params.get("organization", "")
    orgnr = check_orgnr(raw.removeprefix(f"{systems.ORGNR}|").strip(), "organization")
    day = schedule_range(params, ctx.service.clock().date())[0] if "date" in params else None
    return fhir_response(UnitSettingsService(ctx.service).get(ctx.access, orgnr, day))


_PATH = "/fhir/Organization/$care-unit-settings"

ROUTES = [
    FhirRoute(_PATH, "POST", set_settings, "Organization", None, "care-unit-settings"),
    FhirRoute(_PATH, "GET", get_settings, "Organization", None, "care-unit-settings"),
]

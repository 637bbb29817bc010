"""``List/{id}/$confirm``, ``$pause`` and ``$resume``: the operations that change the state
of the whole list, each one new version under ``If-Match``, with an optional ``reason``."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute, if_match, stored_response, written_list
from pll.api.http import Ctx, Handler
from pll.domain.errors import InvalidInput
from pll.fhir.validate import validate
from pll.services.lists import Op

OPERATIONS = {
    "confirm": "POST List/{id}/$confirm with If-Match: confirm the list as reconciled (samstemt)",
    "pause": "POST List/{id}/$pause with a reason: pause the whole PLL",
    "resume": (
        "POST List/{id}/$resume with If-Match: resume the PLL with a confirmed list (or, "
        "with the parameter confirm=false, resume it without confirming it)"
    ),
}


def _operation_parameters(ctx: Ctx, kind: str) -> tuple[str | None, bool]:
    """``reason`` from a ``Parameters`` body, if any, else from ``X-Provenance``; and, for
    ``$resume``, ``confirm`` (valueBoolean, default true: resuming confirms the list; false
    resumes it and leaves its last confirmation as it was)."""
    if not ctx.body.strip():
        return ctx.reason(), True
    params = validate(ctx.json(), "Parameters")
    allowed = ("reason", "confirm") if kind == "resume" else ("reason",)
    reason: str | None = None
    confirm: bool | None = None
    for i, p in enumerate(params.get("parameter", [])):
        where = f"Parameters.parameter[{i}]"
        name = p.get("name")
        if name not in allowed:
            raise InvalidInput(
                f"Unknown parameter {name!r}; this operation takes only "
                f"{' and '.join(repr(a) for a in allowed)}.",
                f"{where}.name",
            )
        if name == "confirm":
            if not isinstance(p.get("valueBoolean"), bool) or confirm is not None:
                raise InvalidInput("Give one 'confirm', as valueBoolean.", where)
            confirm = p["valueBoolean"]
            continue
        if "valueString" not in p or reason is not None:
            raise InvalidInput("Give one 'reason', as valueString.", where)
        reason = p["valueString"]
    return reason or ctx.reason(), True if confirm is None else confirm


def _list_operation(kind: str) -> Handler:
    def handler(ctx: Ctx) -> Response:
        reason, confirm = _operation_parameters(ctx, kind)
        op = Op(kind, if_match=if_match(ctx), reason=reason, confirm=confirm)  # type: ignore[arg-type]
        result = ctx.service.change_list(ctx.access, ctx.path["id"], [op], reason)
        return stored_response(written_list(result))

    handler.__name__ = f"list_{kind}"
    return handler


ROUTES = [
    FhirRoute(
        "/fhir/List/{id}/$confirm", "POST", _list_operation("confirm"), "List", None, "confirm"
    ),
    FhirRoute("/fhir/List/{id}/$pause", "POST", _list_operation("pause"), "List", None, "pause"),
    FhirRoute("/fhir/List/{id}/$resume", "POST", _list_operation("resume"), "List", None, "resume"),
]

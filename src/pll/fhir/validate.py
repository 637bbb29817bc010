"""Parse and validate incoming FHIR JSON.

Structure is checked with the ``fhir.resources`` R4B models (for the resources PLL accepts,
R4B matches R4); PLL's own rules come after, in :mod:`pll.fhir.resources` and the domain.
The resource is kept as the client sent it once it has passed: nothing the client said is
lost, and two writes that mean the same still compare equal as Python values (``1`` and
``1.0``, key order), so they do not count as a change.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from pll.domain.errors import InvalidInput


def parse_json(body: bytes) -> Any:
    """Decode a request body, or say where the JSON is broken."""
    if not body.strip():
        raise InvalidInput("The request body is empty; send a FHIR resource as JSON.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson does not report a line; the standard library does, for the message only.
    try:
        json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = getattr(exc, "lineno", None)
        position = (
            f" at line {where}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise InvalidInput(
            f"The body is not valid JSON{position}: {getattr(exc, 'msg', exc)}."
        ) from None
    raise InvalidInput("The body is not valid JSON.")


def _path(resource_type: str, loc: tuple[int | str, ...]) -> str:
    out = resource_type
    for part in loc:
        if part == "root":  # pydantic's name for a model's own value, not a FHIR element
            continue
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate(data: Any, expected: str | tuple[str, ...]) -> dict[str, Any]:
    """Check ``data`` is a FHIR resource of an expected type; return it normalised."""
    kinds = (expected,) if isinstance(expected, str) else expected
    if not isinstance(data, dict):
        raise InvalidInput(f"Expected a JSON object holding a {' or '.join(kinds)} resource.")
    rtype = data.get("resourceType")
    if rtype not in kinds:
        raise InvalidInput(
            f"Expected resourceType {' or '.join(repr(k) for k in kinds)}, got {rtype!r}.",
            "resourceType",
        )
    model = get_fhir_model_class(rtype)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str | None]] = [
            (_message(err), _path(rtype, tuple(err["loc"]))) for err in exc.errors()
        ]
        (message, where), *rest = problems
        raise InvalidInput(message, where, others=rest) from None
    return data


def _message(err: Any) -> str:
    kind = err.get("type")
    if kind == "extra_forbidden":
        return "Unknown element: FHIR R4 has no such element here."
    if kind == "missing":
        return "A required element is missing."
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{msg} (got {err.get('input')!r})" if "input" in err else msg

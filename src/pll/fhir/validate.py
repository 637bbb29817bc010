"""Parse and validate incoming FHIR JSON.

Structure is checked with the ``fhir.resources`` R4B models (for the resources PLL accepts,
R4B matches R4); PLL's own rules come after, in :mod:`pll.fhir.resources` and the domain.
The resource is kept as the client sent it once it has passed: nothing the client said is
lost, and two writes that mean the same still compare equal as Python values (``1`` and
``1.0``, key order), so they do not count as a change.
"""

from __future__ import annotations

import json
from datetime import datetime
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
    """Check ``data`` is a FHIR resource of an expected type, exactly as sent; return it.

    The models accept some values by coercing them ("3" for an integer, "true" for a
    boolean); FHIR JSON does not, so a value the model had to change is refused.
    """
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
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str | None]] = [
            (_message(err), _path(rtype, tuple(err["loc"]))) for err in exc.errors()
        ]
        (message, where), *rest = problems
        raise InvalidInput(message, where, others=rest) from None
    where = _first_difference(data, parsed.model_dump(mode="json", exclude_none=True), rtype)
    if where is not None:
        raise InvalidInput(
            "This value is not valid FHIR JSON as sent: a number, boolean or object must not "
            "be given as a string (or the other way round), and elements are never null or "
            "empty.",
            where,
        )
    return data


def _first_difference(sent: Any, valid: Any, path: str) -> str | None:
    """Where the resource as sent differs from the model's reading of it, if anywhere."""
    if isinstance(sent, dict) and isinstance(valid, dict):
        keys = sent.keys() | valid.keys()
        return next(
            (
                found
                for key in sorted(keys)
                if (found := _difference_at(sent, valid, key, f"{path}.{key}"))
            ),
            None,
        )
    if isinstance(sent, list) and isinstance(valid, list) and len(sent) == len(valid):
        return next(
            (
                found
                for i, (a, b) in enumerate(zip(sent, valid, strict=True))
                if (found := _first_difference(a, b, f"{path}[{i}]"))
            ),
            None,
        )
    return None if _same_value(sent, valid) else path


def _difference_at(sent: dict[str, Any], valid: dict[str, Any], key: str, path: str) -> str | None:
    if key not in sent or key not in valid:
        return path
    return _first_difference(sent[key], valid[key], path)


def _same_value(sent: Any, valid: Any) -> bool:
    """Whether a value reads the same after validation: ``1`` and ``1.0`` are one JSON
    number, and an instant may be written back in another (equal) form; a string is never
    the same as a number or a boolean."""
    numbers = (int, float)
    if isinstance(sent, bool) or isinstance(valid, bool):
        return type(sent) is type(valid) and sent == valid
    if isinstance(sent, numbers) and isinstance(valid, numbers):
        return bool(sent == valid)
    if isinstance(sent, str) and isinstance(valid, str):
        return sent == valid or _same_instant(sent, valid)
    return type(sent) is type(valid) and sent == valid


def _same_instant(a: str, b: str) -> bool:
    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except (ValueError, TypeError):
        return False


def _message(err: Any) -> str:
    kind = err.get("type")
    if kind == "extra_forbidden":
        return "Unknown element: FHIR R4 has no such element here."
    if kind == "missing":
        return "A required element is missing."
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{msg} (got {err.get('input')!r})" if "input" in err else msg

"""Parse and validate incoming FHIR JSON.

Structure is checked with the ``fhir.resources`` R4B models (for the resources PLL accepts,
R4B matches R4); PLL's own rules come after, in :mod:`pll.fhir.resources` and the domain.
The resource is kept as the client sent it once it has passed: nothing the client said is
lost, and two writes that mean the same still compare equal as Python values (``1`` and
``1.0``, key order), so they do not count as a change.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.utils import is_primitive_type
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from pll.domain.errors import InvalidInput
from pll.domain.text import CONTROL, control_refusal

#: How deeply arrays and objects may nest in a request body. A FHIR resource PLL takes is
#: about 10 levels deep, a transaction Bundle or Parameters around one some 20; the limit
#: leaves room for that many times over, and keeps every recursive walk over a body (ours,
#: the model library's) far from Python's recursion limit of 1,000.
MAX_DEPTH = 100


def parse_json(body: bytes) -> Any:
    """Decode a request body, or say where the JSON is broken; a body nested deeper than
    :data:`MAX_DEPTH` is refused (with :class:`InvalidInput`, as all bad JSON is)."""
    if not body.strip():
        raise InvalidInput("The request body is empty; send a FHIR resource as JSON.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        refused = str(exc)
    else:
        # fewer brackets than the limit cannot nest past it: the walk is skipped for the
        # bodies of everyday requests
        if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
            raise _too_deep()
        # JSON carries a control character only escaped: a body without such an escape
        # has none, and is not walked
        if _ESCAPED_CONTROL.search(body):
            _refuse_controls(data)
        return data
    # orjson does not report a line; the standard library does, for the message only.
    try:
        json.loads(body)
    except RecursionError:
        raise _too_deep() from None  # deeper than orjson's own limit of 1,024
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = getattr(exc, "lineno", None)
        position = (
            f" at line {where}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise InvalidInput(
            f"The body is not valid JSON{position}: {getattr(exc, 'msg', exc)}."
        ) from None
    # valid JSON that orjson will not take: an integer past 64 bits, a lone surrogate
    raise InvalidInput(
        f"The body is JSON that cannot be taken: {refused.split(':', maxsplit=1)[0]}."
    )


#: An escape that may stand for a C0 control character in a JSON string (``\u0000`` …
#: ``\u001f``, ``\b``, ``\f``); a filter only, the parsed strings decide.
_ESCAPED_CONTROL = re.compile(rb"\\(?:u00[01][0-9A-Fa-f]|[bf])")


def _refuse_controls(data: Any) -> None:
    """Refuse a body with a C0 control character (other than tab, line feed, carriage
    return) in any string or key (:mod:`pll.domain.text`): one check for every body
    (:func:`parse_json`), before anything reads it."""
    root = data.get("resourceType") if isinstance(data, dict) else None
    stack: list[tuple[Any, str]] = [(data, root if isinstance(root, str) else "$")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if CONTROL.search(key):
                    raise control_refusal(key, where)
                stack.append((child, f"{where}.{key}"))
        elif isinstance(value, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(value))
        elif isinstance(value, str) and CONTROL.search(value):
            raise control_refusal(value, where)


def _too_deep() -> InvalidInput:
    return InvalidInput(
        f"The JSON nests arrays and objects more than {MAX_DEPTH} levels deep; "
        "no FHIR resource PLL takes comes near that."
    )


def _depth(data: Any) -> int:
    """How deeply ``data`` nests, found without recursion; stops counting past the limit."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _resource_types(data: Any, path: str) -> None:
    """Refuse a resource nested anywhere in ``data`` (``contained``, ``Bundle.entry.resource``,
    ``Parameters.parameter.resource``) whose ``resourceType`` is not a FHIR R4 resource:
    the model library fails on those with a ``KeyError`` or ``TypeError`` of its own."""
    stack: list[tuple[Any, str]] = [(data, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(value))
        elif isinstance(value, dict):
            if where != path and "resourceType" in value:
                rtype = value["resourceType"]
                if not isinstance(rtype, str) or not is_resource_type(rtype):
                    raise InvalidInput(
                        f"{repr(rtype)[:80]} is not a FHIR R4 resource type.",
                        f"{where}.resourceType",
                    )
            stack.extend((child, f"{where}.{key}") for key, child in value.items())


def _names_more_than_one_type(data: dict[str, Any]) -> bool:
    """Whether anything below the root may name a resource type: in most bodies only the
    root does, and its JSON (which orjson writes in microseconds) says so without a walk."""
    try:
        return orjson.dumps(data).count(b'"resourceType"') > 1
    except (orjson.JSONEncodeError, TypeError):
        return True


def is_resource_type(name: str) -> bool:
    """Whether ``name`` is a concrete FHIR R4 resource (``Patient``; not ``HumanName``, not
    the abstract ``Resource`` or ``DomainResource``)."""
    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError, AttributeError):
        return False
    return issubclass(model, Resource) and model not in (Resource, DomainResource)


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
    if _names_more_than_one_type(data):
        _resource_types(data, rtype)
    model = get_fhir_model_class(rtype)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str | None]] = [
            (_message(err), _path(rtype, tuple(err["loc"]))) for err in exc.errors()
        ]
        (message, where), *rest = problems
        raise InvalidInput(message, where, others=rest) from None
    except (AttributeError, TypeError):
        # the model library reads a string where an object belongs as JSON text, and fails
        # on its own when that text is no object (``"_status": "true"``); it says not where
        raise InvalidInput(
            "This is not valid FHIR JSON: an element that holds an object (a Reference, a "
            "primitive's extension such as _status ...) was given another kind of value.",
            rtype,
        ) from None
    if _reads_as_sent(data, parsed):
        return data
    where = _first_difference(data, parsed.model_dump(mode="json", exclude_none=True), rtype)
    if where is not None:
        raise InvalidInput(
            "This value is not valid FHIR JSON as sent: a number, boolean or object must not "
            "be given as a string (or the other way round), and elements are never null or "
            "empty.",
            where,
        )
    return data


#: per model class: its elements by JSON name, each ``(attribute, is primitive, field)``
_ELEMENTS: dict[type[FHIRAbstractModel], dict[str, tuple[str, bool, FieldInfo]]] = {}


def _elements(model: type[FHIRAbstractModel]) -> dict[str, tuple[str, bool, FieldInfo]]:
    found = _ELEMENTS.get(model)
    if found is None:
        found = _ELEMENTS[model] = {
            info.alias or name: (name, is_primitive_type(info), info)
            for name, info in model.model_fields.items()
        }
    return found


def _reads_as_sent(sent: dict[str, Any], model: FHIRAbstractModel) -> bool:
    """Whether the model's reading of ``sent`` is, element by element, what was sent: a
    proof, from the model's own values, that its JSON (``model_dump``) would compare equal
    in :func:`_first_difference` — at a fraction of the cost of serialising it, which the
    models do in Python (issue 20). ``False`` is no verdict: anything this does not prove
    the same (a coerced value, an empty element, a date written back in another form) is
    left to the exact comparison.

    The models have no defaults but ``None``, so every element the JSON would have comes
    from a key that was sent: the keys sent (less ``resourceType``) must be exactly the
    fields the model was given, each with a value that serialises to what was sent."""
    elements = _elements(type(model))
    values = model.__dict__
    # a resource's JSON names its type: it must have been sent, and be the model's
    typed = model.has_resource_base()
    if typed and sent.get("resourceType") != model.__resource_type__:
        return False
    given = 0
    for key, value in sent.items():
        if key == "resourceType" and typed:
            continue
        element = elements.get(key)  # a field's own name (the JSON has its alias): none
        if element is None or not _element_as_sent(value, values.get(element[0]), element, model):
            return False
        given += 1
    return given == len(model.model_fields_set)


def _element_as_sent(
    sent: Any, read: Any, element: tuple[str, bool, FieldInfo], model: FHIRAbstractModel
) -> bool:
    _, primitive, info = element
    if read is None:
        return False
    if primitive:
        return _primitive_as_sent(sent, read, model, info)
    if type(read) is list:
        return (
            type(sent) is list
            and len(sent) == len(read) > 0
            and all(_complex_as_sent(a, b) for a, b in zip(sent, read, strict=True))
        )
    return _complex_as_sent(sent, read)


def _complex_as_sent(sent: Any, read: Any) -> bool:
    # an empty object is left to the exact comparison (its JSON may leave it out)
    return (
        type(sent) is dict
        and bool(sent)
        and isinstance(read, FHIRAbstractModel)
        and _reads_as_sent(sent, read)
    )


def _primitive_as_sent(sent: Any, read: Any, model: FHIRAbstractModel, info: FieldInfo) -> bool:
    """Whether a primitive element's value, serialised as the model does, is the one sent
    (compared as :func:`_same_value` does)."""
    kind = type(read)
    if kind is str or kind is bool:
        return type(sent) is kind and sent == read
    if kind is int:
        return type(sent) in (int, float) and sent == read
    if kind is list:
        if type(sent) is not list or not sent or len(sent) != len(read):
            return False
        return all(
            (a is None and b is None) or _primitive_as_sent(a, b, model, info)
            for a, b in zip(sent, read, strict=True)
        )
    # a decimal, date, time, instant, base64 or uuid: the model's own serialisation
    written = to_jsonable_python(model._serialize_primitive_value(read, info))
    return written is not None and _same_value(sent, written)


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

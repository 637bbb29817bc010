"""Reading the JSON of SFM exports that are not strict JSON (trailing commas, JSON5), held to
the limits every request body is held to (:func:`pll.fhir.validate.parse_json`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

import json5
import orjson

from pll.domain.errors import InvalidInput
from pll.fhir.validate import MAX_DEPTH, parse_json


def parse_lenient(text: str) -> tuple[Any, list[str]]:
    """JSON, or JSON with the trailing commas some SFM exports have (the reference response
    has one); returns the value and what had to be forgiven. Held to what every request
    body is (:func:`~pll.fhir.validate.parse_json`): JSON nested deeper than any FHIR
    resource is refused, not recursed into."""
    try:
        return parse_json(text.encode()), []
    except InvalidInput as refused:
        try:
            json.loads(text)
        except json.JSONDecodeError as strict:
            return _json5(text, strict), [
                f"not strict JSON at line {strict.lineno}, column {strict.colno} "
                f"({strict.msg}); read as JSON5"
            ]
        except RecursionError:
            raise refused from None  # deeper than the standard library reads, too
        raise refused from None  # valid JSON that PLL does not take (nested too deep, ...)


#: A JSON string (skipped whole), or a comma right after a value with only white space before
#: the ``]`` or ``}`` that closes its array or object: what the SFM exports that are not strict
#: JSON have. (A comma after ``[``, ``{``, another comma or white space is left for the JSON5
#: reader to judge.)
#: The string is matched possessively, its closing quote optional and ``.`` taking a newline
#: (a JSON5 line continuation): a string that never closes then ends the scan in one pass,
#: where backtracking from each later quote made a broken file quadratic to read.
_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\]|\\.)*+"?|(?<![\[{,\s]),(?=\s*[\]}])', re.DOTALL)


def _without_trailing_commas(text: str) -> bytes:
    """The text with every trailing comma outside strings dropped: one pass of a regular
    expression, where the JSON5 reader takes over a second for the 200 kB reference response
    (a folder of them, ``pll import lists``, is read at that speed)."""
    return _STRING_OR_TRAILING_COMMA.sub(
        lambda m: m.group(0) if m.group(0) != "," else "", text
    ).encode()


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON has")


def _finite(text: str) -> float:
    """A JSON5 number as a float, refused when it is too large for one: written back as
    JSON it would be ``null``, a value that silently disappears (a dose, say)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large a number")
    return value


def _json5(text: str, strict: json.JSONDecodeError) -> Any:
    # the common case first: strict JSON but for trailing commas; failing that, something
    # else JSON5 allows (comments, quotes, bare keys), which the full reader decides
    with contextlib.suppress(InvalidInput):
        return parse_json(_without_trailing_commas(text))
    too_deep = InvalidInput(
        f"The JSON nests arrays and objects more than {MAX_DEPTH} levels deep; no FHIR "
        "resource PLL takes comes near that."
    )
    try:
        value = json5.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise InvalidInput(
            f"The file is not JSON: {strict.msg} at line {strict.lineno}, "
            f"column {strict.colno} ({exc})."
        ) from None
    try:
        # the value as strict JSON, read as every body is (the nesting it may have)
        return parse_json(orjson.dumps(value))
    except orjson.JSONEncodeError:
        raise too_deep from None  # past orjson's own limit of 255 levels

"""Reading the FHIR values a ``Dosage`` is made of: JSON objects with known and unsupported
elements, Quantities and numbers. Every refusal names its location (the conventions are in
:mod:`pll.domain.dosage`; FHIR R4 ``Quantity``: https://hl7.org/fhir/R4/datatypes.html#Quantity)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pll.domain.dosage.words import format_number
from pll.domain.errors import InvalidInput

UCUM_SYSTEM = "http://unitsofmeasure.org"
IGNORED = frozenset({"id", "extension"})

HOW_TO_FALL_BACK = "give the whole dosage as text only"


def check_keys(
    raw: Any, where: str, kind: str, known: frozenset[str], unsupported: frozenset[str]
) -> None:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"The {kind} must be a JSON object.", where)
    for key in raw:
        if key in unsupported:
            raise InvalidInput(
                f"{kind}.{key} cannot be written as dosage text; {HOW_TO_FALL_BACK} or leave "
                f"{key} out.",
                f"{where}.{key}",
            )
        if key not in known:
            raise InvalidInput(f"{kind} has no element {key!r}.", f"{where}.{key}")


def quantity(raw: Any, where: str, what: str) -> tuple[Decimal, str | None]:
    """A positive value and its unit text (``unit``, else a UCUM ``code``), if any."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"The {what} must be a Quantity (a JSON object).", where)
    if "comparator" in raw:
        raise InvalidInput(
            f"The {what} cannot have a comparator; give the exact amount.", f"{where}.comparator"
        )
    value = number(raw.get("value"), f"{where}.value", what)
    if value <= 0:
        raise InvalidInput(
            f"The {what} must be greater than zero; got {format_number(value)}.",
            f"{where}.value",
        )
    for key in ("unit", "code", "system"):
        if key in raw and not isinstance(raw[key], str):
            raise InvalidInput(f"The {what}'s {key} must be a string.", f"{where}.{key}")
    unit = raw.get("unit", "").strip()
    if unit:
        return value, unit
    code = raw.get("code", "").strip()
    # Codes from other systems (such as the e-prescription unit code list) are numbers that
    # mean nothing to a reader, so only a UCUM code can stand in for the missing unit text.
    if code and raw.get("system", UCUM_SYSTEM) == UCUM_SYSTEM:
        return value, code
    return value, None


def number(raw: Any, where: str, what: str) -> Decimal:
    if raw is None:
        raise InvalidInput(f"The {what} has no value.", where)
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise InvalidInput(f"The {what}'s value must be a number.", where)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise InvalidInput(f"The {what}'s value must be a finite number.", where)
    if isinstance(raw, Decimal) and not raw.is_finite():
        raise InvalidInput(f"The {what}'s value must be a finite number.", where)
    # repr() of a float is its shortest round-trip form, so 0.1 stays 0.1 and not 0.1000…0555.
    return Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)

"""What an SFM statement says of an entry, and how a send's change to it is written into the
entry PLL holds.

SFM Basis (https://simplifier.net/guide/SFMAPIBasis) carries less than PLL keeps: the dosage as
text, one patient instruction, no period, no coded reasons. :func:`view` is what a statement
says, in a form that compares; a read stores the views it showed (:mod:`.reads`), and a send
changes an entry only where its view differs from the one the read showed (:func:`merged`), so
that what SFM cannot say survives a send that did not touch it. Pure: no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from pll.domain.model import ENDED
from pll.fhir import systems
from pll.fhir.sfm import codes as c


def view(content: dict[str, Any]) -> dict[str, Any]:
    """What an SFM statement says about an entry, to tell whether a send changed it."""
    concept = content.get("medicationCodeableConcept") or {}
    dosages = content.get("dosage") or []
    return {
        "status": content.get("status"),
        "drug": sorted(
            (str(x.get("system")), str(x.get("code"))) for x in concept.get("coding") or []
        )
        or concept.get("text"),
        "dosage": "\n".join(str(d["text"]) for d in dosages if d.get("text")) or None,
        "patientInstruction": next(
            (d["patientInstruction"] for d in dosages if d.get("patientInstruction")), None
        ),
        "additionalInstruction": [
            (str(x.get("system")), str(x.get("code")))
            for d in dosages
            for a in d.get("additionalInstruction") or []
            for x in a.get("coding") or []
        ],
        "use": c.code_of(content.get("category"), systems.TREATMENT_TYPE),
        "area": next((r.get("text") for r in content.get("reasonCode") or []), None),
        "start": content.get("effectiveDateTime")
        or (content.get("effectivePeriod") or {}).get("start"),
        "multidose": c.ext(content, c.ADMINISTRATION),
    }


def plain(value: Any) -> Any:
    """As JSON gives it back (tuples become lists), so stored and fresh views compare."""
    return orjson.loads(orjson.dumps(value))


def _set_dosage_text(merged: dict[str, Any], sent: dict[str, Any]) -> None:
    # SFM says the dosage as text: a new text replaces the regimen (its structure included)
    text = "\n".join(str(d["text"]) for d in sent.get("dosage") or [] if d.get("text"))
    first = dict((merged.get("dosage") or [{}])[0])
    kept = {k: first[k] for k in ("patientInstruction", "additionalInstruction") if k in first}
    if text:
        merged["dosage"] = [{"text": text, **kept}]
    else:
        merged.pop("dosage", None)


def _set_instruction(key: str) -> Any:
    def apply(merged: dict[str, Any], sent: dict[str, Any]) -> None:
        value = next((d[key] for d in sent.get("dosage") or [] if d.get(key)), None)
        dosages = merged.get("dosage") or []
        if not dosages:
            merged["dosage"] = copy.deepcopy(sent.get("dosage") or [])
            return
        if value is None:
            dosages[0].pop(key, None)
        else:
            dosages[0][key] = copy.deepcopy(value)

    return apply


def _set_start(merged: dict[str, Any], sent: dict[str, Any]) -> None:
    start = sent.get("effectiveDateTime")
    if "effectivePeriod" in merged:
        if start:
            merged["effectivePeriod"]["start"] = start
        else:
            merged["effectivePeriod"].pop("start", None)
    elif start:
        merged["effectiveDateTime"] = start
    else:
        merged.pop("effectiveDateTime", None)


def _set_multidose(merged: dict[str, Any], sent: dict[str, Any]) -> None:
    others = [e for e in merged.get("extension") or [] if e.get("url") != c.ADMINISTRATION]
    extensions = others + copy.deepcopy(c.ext(sent, c.ADMINISTRATION))
    if extensions:
        merged["extension"] = extensions
    else:
        merged.pop("extension", None)


def _set(element: str) -> Any:
    def apply(merged: dict[str, Any], sent: dict[str, Any]) -> None:
        if element in sent:
            merged[element] = copy.deepcopy(sent[element])
        else:
            merged.pop(element, None)

    return apply


#: How each part of the view is written into PLL's entry: only that part.
_APPLY = {
    "status": _set("status"),
    "drug": _set("medicationCodeableConcept"),
    "dosage": _set_dosage_text,
    "patientInstruction": _set_instruction("patientInstruction"),
    "additionalInstruction": _set_instruction("additionalInstruction"),
    "use": _set("category"),
    "area": _set("reasonCode"),
    "start": _set_start,
    "multidose": _set_multidose,
}


def merged_entry(
    base: dict[str, Any], sent: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """The entry as PLL holds it, with what the send changed (``after`` differs from what
    the read showed, ``before``) taken from the send: what SFM cannot say (structured
    dosage, a period, coded reasons, notes) survives a send that did not touch it."""
    merged = copy.deepcopy(base)
    for key, apply in _APPLY.items():
        if before.get(key) != after.get(key):
            apply(merged, sent)
    if after["status"] in ENDED and before.get("status") not in ENDED and sent.get("statusReason"):
        merged["statusReason"] = copy.deepcopy(sent["statusReason"])
    return merged

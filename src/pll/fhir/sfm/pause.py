"""Pause PLL in SFM Basis documents: the marker ``$getMedication`` shows and the resume a
``$sendMedication`` can carry.

SFM Basis has no element for a paused list: ``sfm-PLL-info`` (the M25 messages) and its
``sfm-pllInformation`` extension say when the list was sent, by whom and who the multidose
parties are, nothing of a pause (https://simplifier.net/guide/SFMAPIBasis/sfm-PLL-info2). The
list's own message, M25.1, is where SFM states the list's status, so the pause goes there in
PLL's namespace, as PLL's FHIR ``List`` carries it:

- ``pll-paused`` on the M25.1 ``Basic``: ``at`` (since when), ``by`` (a reference to the
  ``sfm-PractitionerRole`` of the doctor who paused it, as SFM references its parties) and
  ``reason``; and the same in words in ``sectionPLLinfo``'s narrative, for a journal system
  that shows only the text;
- ``pll-resume`` on the M25.1 ``Basic`` of a send: resume the list with this send, with an
  optional ``confirm`` (valueBoolean, default true: the list as sent is confirmed, as
  ``List/$resume`` does). A send only resumes when it says so: a system that does not know
  the marker and leaves it out of what it sends back leaves the list paused.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from pll.domain.errors import InvalidInput
from pll.domain.model import Pause
from pll.fhir import systems
from pll.fhir.resources import instant
from pll.fhir.sfm import codes as c

EXT_RESUME = f"{systems.PLL_BASE}/StructureDefinition/pll-resume"


@dataclass(frozen=True)
class Resume:
    """A send's request to resume the paused list (``pll-resume``)."""

    confirm: bool = True


def paused_extension(pause: Pause, by: dict[str, Any]) -> dict[str, Any]:
    """``pll-paused`` for the M25.1 ``sfm-PLL-info``; ``by`` references the doctor's
    ``sfm-PractitionerRole`` in the document."""
    return {
        "url": systems.EXT_PAUSED,
        "extension": [
            {"url": "at", "valueDateTime": instant(pause.at)},
            {"url": "by", "valueReference": by},
            {"url": "reason", "valueString": pause.reason},
        ],
    }


def paused_words(pause: Pause) -> str:
    """The pause in ``sectionPLLinfo``'s narrative (XHTML-escaped: the reason is free text)."""
    return html.escape(
        f"Legemiddellisten er pauset (Pause PLL) siden {pause.at.isoformat(timespec='minutes')} "
        f"av {pause.by.label()}: {pause.reason}",
        quote=False,
    )


def read_resume(basic: dict[str, Any], where: str) -> Resume | None:
    """The ``pll-resume`` of an ``sfm-PLL-info`` in a send, ``None`` without one. Refused
    (400) when it is given twice or ``confirm`` is not one boolean."""
    found = c.ext(basic, EXT_RESUME)
    if not found:
        return None
    at = f"{where}.extension"
    if len(found) > 1:
        raise InvalidInput("Give pll-resume once.", at)
    subs = found[0].get("extension") or []
    if any(not isinstance(s, dict) or s.get("url") != "confirm" for s in subs) or len(subs) > 1:
        raise InvalidInput(
            "pll-resume takes one sub-extension, 'confirm' (valueBoolean), or none.", at
        )
    if not subs:
        return Resume()
    confirm = subs[0].get("valueBoolean")
    if not isinstance(confirm, bool):
        raise InvalidInput("pll-resume's 'confirm' is a valueBoolean.", at)
    return Resume(confirm)

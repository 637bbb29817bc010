"""Which code names an entry's medicine when its concept carries several: the first of each
system, for decision support's checks and for the units every dosing page offers (both read
the FEST code through :func:`pll.services.decision_support.named`)."""

from __future__ import annotations

from pll.fhir import systems
from pll.services.decision_support import FEST, named


def test_the_first_fest_and_atc_codes_name_the_medicine() -> None:
    concept = {
        "coding": [
            {"system": FEST, "code": "ID_FIRST"},
            {"system": systems.ATC, "code": "c10aa01"},
            {"system": FEST, "code": "ID_SECOND"},
            {"system": systems.ATC, "code": "A10BA02"},
        ],
        "text": "Simvastatin",
    }
    n = named("e1", {"medicationCodeableConcept": concept})
    assert (n.fest, n.atc, n.name) == ("ID_FIRST", "C10AA01", "Simvastatin")


def test_a_code_that_no_catalogue_could_hold_is_passed_over() -> None:
    concept = {"coding": [{"system": FEST, "code": "x" * 65}, {"system": FEST, "code": "ID_OK"}]}
    assert named("e1", {"medicationCodeableConcept": concept}).fest == "ID_OK"

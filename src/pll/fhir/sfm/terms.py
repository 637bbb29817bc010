"""What an SFM Basis document is read into (:func:`pll.fhir.sfm.reading.read_document`):
its statements as PLL's entries and prescriptions, its M25 messages, its dispensings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pll.domain.errors import InvalidInput
from pll.fhir.sfm.parties import Party
from pll.fhir.sfm.pause import Resume


@dataclass
class Recall:
    """``recallinfo``: why a prescription is recalled, and for a renewal which one."""

    code: str
    recall_id: str | None = None
    text: str | None = None


@dataclass
class Item:
    """One SFM ``MedicationStatement``: an entry, a prescription, or both."""

    index: int
    ref: str
    status: str
    pll_id: str | None
    resept_id: str | None
    #: PLL's ``MedicationStatement`` content (no subject, no ``basedOn`` yet)
    entry: dict[str, Any]
    #: PLL's ``MedicationRequest`` content, when the statement carries a ReseptId
    prescription: dict[str, Any] | None
    ended_at: datetime | None = None
    create: bool = False
    recall: Recall | None = None
    discontinued: bool = False
    #: ``basedOn``: the statement of the prescription this one renews (urn)
    based_on: list[str] = field(default_factory=list)
    prescriber: Party | None = None
    #: checked ahead (:func:`pll.fhir.sfm.bounds.check_ahead`), and what was wrong if anything
    checked: bool = False
    refusal: InvalidInput | None = None

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


@dataclass
class Delivery:
    """One line of a packing report (M25.3): what was packed from which prescription."""

    prescription: str | None  # the statement's urn in the document
    first_dose: str | None
    last_dose: str | None
    dispense: str | None  # the dispense's urn in the document
    ref_m10: str | None


@dataclass
class Message:
    """An M25 message as ``sfm-PLL-info`` shows it: the list (M25.1), a pharmacy's proposal
    (M25.2) or a packing report (M25.3)."""

    kind: str
    identifier: str | None
    sent_at: str | None
    author: Party | None
    parties: list[Party]
    create_pll: bool | None = None
    substitute: bool | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    #: PLL's ``pll-resume`` on a send's M25.1: resume the paused list (:mod:`.pause`)
    resume: Resume | None = None


@dataclass
class Dispense:
    ref: str
    id: str | None
    prescription_id: str | None
    #: the statement the dispensing names in ``authorizingPrescription`` (urn)
    prescription_ref: str | None
    #: PLL's ``MedicationDispense`` content (no subject, no authorizingPrescription yet)
    content: dict[str, Any]


@dataclass
class Document:
    composition_identifier: str | None
    relates_to: str | None
    author: Party | None
    patient: dict[str, Any] | None
    #: the statements of ``sectionMedication``
    items: list[Item]
    #: statements only reachable through ``basedOn`` (older links of renewal chains)
    older: list[Item]
    messages: list[Message]
    dispenses: list[Dispense]
    allergies: list[dict[str, Any]]
    #: BANDA prescriptions (``sectionOtherPrescriptions``), kept as they came
    other: list[dict[str, Any]]

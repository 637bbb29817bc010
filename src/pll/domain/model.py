"""The medication list as plain data: entries, prescriptions, the list and its versions.

Resource *content* is kept as the FHIR JSON a client sent, normalised by the FHIR layer
(no ``id``/``meta``, canonical references, generated dosage text). The domain reads the few
fields it has rules about from that content and compares whole contents to decide whether
something really changed (DESIGN §3 rule 3: ``last changed`` moves only on a real change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

#: DESIGN §3 rule 3 / M25: discontinued entries stay visible this long.
DISCONTINUED_VISIBLE_FOR = timedelta(days=90)

#: Entry statuses that put a medicine on the list as "in use" (a prescription may be linked
#: to at most one entry in these statuses).
IN_USE = frozenset({"active", "on-hold"})
#: Entry statuses that end the use of a medicine; the entry stays visible for 90 days.
ENDED = frozenset({"stopped", "completed"})
REMOVED = "entered-in-error"
ENTRY_STATUSES = IN_USE | ENDED | {REMOVED}

#: Prescription statuses. ``stopped`` is a recall (*tilbakekalling*); ``completed`` is an
#: older prescription in a renewal chain whose successor is the head of chain.
RX_ACTIVE = frozenset({"active", "on-hold"})


class Role(StrEnum):
    """What an authenticated caller is, as far as list rules care (DESIGN §3 rule 4)."""

    DOCTOR = "doctor"
    #: a dentist (HPR TL) and a midwife (HPR JO) prescribe within their scope: what they
    #: prescribe goes on the list, and they change only their own entries (issue 18)
    DENTIST = "dentist"
    MIDWIFE = "midwife"
    NURSE = "nurse"
    #: other health personnel (physiotherapists, psychologists, any other HPR category):
    #: read with a basis and report discrepancies, never write (issue 18)
    HEALTH_WORKER = "health-worker"
    #: a care worker (helsefagarbeider) giving medicines by delegation at a care unit: no
    #: prescriber's authorisation; reads and gives only for patients of their unit
    CARE_WORKER = "care-worker"
    PHARMACIST = "pharmacist"
    PATIENT = "patient"
    #: PLL itself, for changes the rules make by the passing of time (never a baton holder)
    SYSTEM = "system"
    #: the operator of a client system (a journal system's vendor, or PLL's own operations)
    #: handling technical cases: a system token with PLL's operations scope, no HPR number,
    #: and never access to any patient's data (issue 18)
    OPERATOR = "operator"
    #: the rollout and payment team (issue 19): a token with PLL's rollout scope reads the
    #: non-public rollout reports (first lists per GP, per journal system, per GP office) and
    #: no patient's data
    ROLLOUT = "rollout"


#: Health personnel who use the list pages (/lege, and a journal system's SMART launch into
#: them) and state a basis for each patient there: doctors, the other prescribers (dentists,
#: midwives), nurses and other health personnel. What each may do is the access policy's.
CLINICIANS = frozenset({Role.DOCTOR, Role.DENTIST, Role.MIDWIFE, Role.NURSE, Role.HEALTH_WORKER})


@dataclass(frozen=True)
class Author:
    """Who made a change: a health worker (HPR number) acting for an organisation."""

    name: str
    role: Role
    hpr: str | None = None
    org_id: str | None = None
    org_name: str | None = None
    pid: str | None = None
    #: the organisation's HER-id (its address in the health network), as SFM names it
    her: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Author:
        return cls(
            name=data["name"],
            role=Role(data["role"]),
            hpr=data.get("hpr"),
            org_id=data.get("org_id"),
            org_name=data.get("org_name"),
            pid=data.get("pid"),
            her=data.get("her"),
        )

    def label(self) -> str:
        parts = [self.name]
        if self.hpr:
            parts.append(f"HPR {self.hpr}")
        if self.org_name:
            parts.append(self.org_name)
        return ", ".join(parts)


def _refs(content: dict[str, Any], key: str, prefix: str) -> tuple[str, ...]:
    out = []
    for ref in content.get(key) or []:
        value = ref.get("reference", "")
        if value.startswith(prefix):
            out.append(value[len(prefix) :])
    return tuple(out)


@dataclass
class Entry:
    """One medicine on the list (*LIB*): a ``MedicationStatement`` whose id never changes."""

    id: str
    version: int
    content: dict[str, Any]
    last_changed: datetime
    changed_by: Author
    ended_at: datetime | None = None

    @property
    def status(self) -> str:
        return str(self.content["status"])

    @property
    def prescription_ids(self) -> tuple[str, ...]:
        return _refs(self.content, "basedOn", "MedicationRequest/")

    def visible_at(self, now: datetime) -> bool:
        """Whether the entry is shown on the list at ``now`` (rule 3)."""
        if self.status in IN_USE:
            return True
        if self.status in ENDED:
            return self.ended_at is not None and now < self.ended_at + DISCONTINUED_VISIBLE_FOR
        return False

    def hidden_after(self) -> datetime | None:
        """When a visible ended entry drops off the list, if it will."""
        if self.status in ENDED and self.ended_at is not None:
            return self.ended_at + DISCONTINUED_VISIBLE_FOR
        return None


@dataclass
class Prescription:
    """An e-prescription (``MedicationRequest``, M1); renewals link to their predecessor."""

    id: str
    version: int
    content: dict[str, Any]
    last_changed: datetime
    changed_by: Author
    #: when PLL first recorded it (its first version's time): the issue date of last resort
    #: for its validity (:func:`pll.domain.prescriptions.end_of`); ``None`` when unknown
    recorded: datetime | None = None

    @property
    def status(self) -> str:
        return str(self.content["status"])

    @property
    def prior_id(self) -> str | None:
        ref = (self.content.get("priorPrescription") or {}).get("reference", "")
        return ref.removeprefix("MedicationRequest/") or None


@dataclass(frozen=True)
class Confirmation:
    """The list was reconciled (*samstemt*) and confirmed correct by a doctor."""

    by: Author
    at: datetime
    version: int


@dataclass(frozen=True)
class Pause:
    """The whole PLL is paused (Pause PLL): readers see it is not being kept current."""

    by: Author
    at: datetime
    reason: str


@dataclass(frozen=True)
class Pharmacy:
    """A pharmacy: its organisation number (what a pharmacist's token carries), its name and
    its HER-id. A registration brought in from SFM may know the pharmacy only by HER-id."""

    name: str
    org_id: str | None = None
    her: str | None = None

    def label(self) -> str:
        return ", ".join(p for p in (self.name, self.org_id and f"orgnr {self.org_id}") if p)


@dataclass(frozen=True)
class ReceivingUnit:
    """The nursing home or home-care unit that receives a multidose patient's bags (issue
    17): its organisation number, and its name when the doctor gave one."""

    orgnr: str
    name: str | None = None

    def label(self) -> str:
        return ", ".join(p for p in (self.name, f"orgnr {self.orgnr}") if p)


@dataclass(frozen=True)
class Registration:
    """e-multidose (M27): the patient's responsible multidose doctor and the one pharmacy
    that packs the patient's multidose from the list, and the care unit that receives the
    bags, if the doctor named one."""

    doctor: Author
    pharmacy: Pharmacy
    at: datetime
    by: Author
    receiver: ReceivingUnit | None = None


@dataclass(frozen=True)
class PaperMultidose:
    """Multidose still ordered on paper (*papirmultidose*): beside a PLL a risk of a
    fragmented list, shown wherever the list is shown."""

    at: datetime
    by: Author
    pharmacy: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Multidose:
    """What the list shows of the patient's multidose: the e-multidose registration and
    paper multidose, each if there is one."""

    registration: Registration | None = None
    paper: PaperMultidose | None = None


@dataclass(frozen=True)
class Dispensed:
    """What has been dispensed on one prescription: its last dispensing, and what remains."""

    last: str  #: the MedicationDispense id
    handed_over: str  #: when, as the pharmacy said it
    quantity: float  #: of the last dispensing
    total: float  #: of every dispensing
    count: int
    unit: str | None = None
    #: what the prescription still allows, when it says how much it allows
    remaining: float | None = None


@dataclass(frozen=True)
class Touched:
    """One resource an accepted change wrote, with the version it wrote."""

    resource_type: str
    id: str
    version: int
    action: str  # create | update


@dataclass(frozen=True)
class ListVersion:
    """One accepted change to a PLL: who, when, what and why (rule 1)."""

    version: int
    recorded: datetime
    author: Author
    activity: str
    reason: str | None
    touched: tuple[Touched, ...]
    #: blocking decision-support findings the author overrode, and why (rule 6)
    override: str | None = None


@dataclass
class MedicationList:
    """A patient's PLL: at most one per patient, versioned on every accepted change."""

    id: str
    patient_id: str
    version: int
    created: datetime
    updated: datetime
    baton: Author
    entries: dict[str, Entry] = field(default_factory=dict)
    prescriptions: dict[str, Prescription] = field(default_factory=dict)
    pause: Pause | None = None
    confirmation: Confirmation | None = None
    #: entries whose medicine the drug catalogue no longer has as an active drug (flagged)
    withdrawn: frozenset[str] = frozenset()
    #: the e-multidose registration and paper multidose, as the list shows them
    multidose: Multidose = field(default_factory=Multidose)
    #: by prescription id: what has been dispensed on it
    dispensed: dict[str, Dispensed] = field(default_factory=dict)

    def visible_entries(self, now: datetime) -> list[Entry]:
        return [e for e in self.entries.values() if e.visible_at(now)]

    def next_hide(self, now: datetime) -> datetime | None:
        """The earliest moment a visible entry drops off, so the stored document can expire."""
        times = [
            t for e in self.entries.values() if (t := e.hidden_after()) is not None and t > now
        ]
        return min(times, default=None)

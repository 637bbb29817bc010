"""Who may see and change a patient's list: decided once per request (DESIGN §3 rules 4, 5).

The HTTP edge builds one :class:`Access` per request from the verified token and the stated
access basis. The services never look at roles themselves: before touching a patient's data
they load the few :class:`PatientFacts` the policy needs and ask :meth:`Access.decide`, which
returns a :class:`Decision` that is both the verdict and the audit record's what/why. The
same rule, compiled by :meth:`Access.read_rule`, is what the hot read on PostgreSQL evaluates
inside its single statement (STYLE: permissions decided once per request, compiled into what
the handler gets).

Access bases are the codes the national services use for health personnel
(Kjernejournal's ``HPAKUTT``, ``HPMOTTATTSAMTYKKE``, ``HPUNNTAK``), plus
``HPBEHANDLINGSRELASJON`` for the ordinary case: the worker treats the patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pll.auth.policy import PRESCRIBER_WRITE, REFUSALS, ROLE_NB, Grant, Verb, grant
from pll.domain.errors import InvalidInput
from pll.domain.model import Author, Role

__all__ = [
    "BASIS_HEADER",
    "BASIS_SYSTEM",
    "EMERGENCY_OVERRIDE",
    "NOT_YOURS",
    "Access",
    "Basis",
    "Decision",
    "Grant",
    "Outcome",
    "PatientFacts",
    "ReadLog",
    "ReadRule",
    "Verb",
    "in_norwegian",
    "parse_basis",
]

#: The header that carries the access basis (documented in the CapabilityStatement).
BASIS_HEADER = "X-PLL-Access-Basis"
#: AuditEvent/Consent code system for access bases.
BASIS_SYSTEM = "http://pll.invalid/fhir/CodeSystem/access-basis"


class Basis(StrEnum):
    """Why a health worker reads a patient's list."""

    TREATMENT = "HPBEHANDLINGSRELASJON"
    EMERGENCY = "HPAKUTT"
    CONSENT = "HPMOTTATTSAMTYKKE"
    EXCEPTION = "HPUNNTAK"

    @property
    def display(self) -> str:
        return _BASIS_DISPLAY[self]


_BASIS_DISPLAY = {
    Basis.TREATMENT: "Behandlingsrelasjon",
    Basis.EMERGENCY: "Akutt (nødrett)",
    Basis.CONSENT: "Mottatt samtykke fra pasienten",
    Basis.EXCEPTION: "Unntak fra samtykke",
}


class Outcome(StrEnum):
    """FHIR AuditEvent.outcome codes (http://hl7.org/fhir/R4/valueset-audit-event-outcome.html)."""

    SUCCESS = "0"
    REFUSED = "4"


#: Flag on an audit record of a blocked worker's emergency access: followed up, and shown
#: to the patient.
EMERGENCY_OVERRIDE = "emergency-override-of-block"


NOT_YOURS = (
    "A patient can see only their own list, or that of a person they hold a proxy (fullmakt) for."
)
_PATIENT_READS = (
    "Only doctors change the medication list; a patient can read it, its history and who "
    "has looked at it."
)
_CASES_BY_PRESCRIBERS = (
    "Discrepancy cases are handled by the responsible prescriber's organisation; a patient "
    "can report one and follow it."
)
_BLOCKED = (
    "The patient has blocked your access to their medication list. In an emergency state "
    "the basis HPAKUTT; the access is then logged for follow-up and shown to the patient."
)
_BLOCKED_FOLLOW = (
    "The patient has blocked your access to their medication list, so you cannot follow "
    "it with a subscription, whatever the basis. In an emergency, read the list with the "
    "basis HPAKUTT; the access is then logged for follow-up and shown to the patient."
)


_ONLY_PHARMACY_PROPOSES = (
    "Only the patient's responsible multidose pharmacy proposes changes to the "
    "list; the doctor then accepts or rejects them."
)
_ONLY_PHARMACY_PACKS = "Only the patient's responsible multidose pharmacy reports what it packed."
#: An operator of a client system handles technical cases, never a patient's data (issue 18):
#: not a column of the policy table (pll.auth.policy), so it may nothing with a patient's data.
OPERATORS_SEE_NO_PATIENT = (
    "An operator of a client system sees no patient's data; a technical case about a patient "
    "is shown to the operator without it."
)
#: The rollout and payment team reads the rollout reports (issue 19), never a patient's data:
#: like the operator, not a column of the policy table.
ROLLOUT_SEES_NO_PATIENT = "The rollout team reads the rollout reports, not any patient's data."
_NOT_OUR_PATIENT = (
    "A care worker reads and gives medicines only for patients registered with their care "
    "unit; this patient is not registered with yours."
)
_NOT_AT_YOUR_UNIT = (
    "The patient is not registered with your care unit: only nurses and care workers of a "
    "unit the patient is registered with record what is given."
)
_NOT_AT_YOUR_UNIT_ACK = (
    "The patient is not registered with your care unit: only nurses of a unit the patient "
    "is registered with acknowledge the list's changes for it."
)
#: what a ``unit`` cell's refusal says when the patient is not in the caller's care
_NOT_IN_CARE = {Verb.ADMINISTER: _NOT_AT_YOUR_UNIT, Verb.ACKNOWLEDGE: _NOT_AT_YOUR_UNIT_ACK}

#: The policy's refusals in Norwegian (bokmål) for people reading a page rather than an
#: API answer, kept beside the English so the two say the same thing.
_NORWEGIAN = {
    NOT_YOURS: (
        "Du kan bare se din egen legemiddelliste, eller listen til en du har fullmakt for."
    ),
    _PATIENT_READS: (
        "Bare leger endrer legemiddellisten; som pasient kan du lese den, se hva som er "
        "endret og hvem som har sett den."
    ),
    _BLOCKED: (
        "Pasienten har sperret din tilgang til legemiddellisten. I en akutt situasjon kan "
        "du åpne pasienten på nytt med grunnlaget «Akutt (nødrett)»; tilgangen logges da "
        "for oppfølging og vises for pasienten."
    ),
    _BLOCKED_FOLLOW: (
        "Pasienten har sperret din tilgang til legemiddellisten, så du kan ikke abonnere på "
        "endringer i den, uansett grunnlag. I en akutt situasjon kan du lese listen med "
        "grunnlaget «Akutt (nødrett)»; tilgangen logges da for oppfølging og vises for "
        "pasienten."
    ),
    _CASES_BY_PRESCRIBERS: (
        "Avvik behandles av virksomheten til den ansvarlige forskriveren; som pasient kan du "
        "melde et avvik og følge det."
    ),
    _ONLY_PHARMACY_PROPOSES: (
        "Bare pasientens multidoseapotek foreslår endringer i listen; legen godtar eller "
        "avviser dem."
    ),
    _ONLY_PHARMACY_PACKS: "Bare pasientens multidoseapotek melder hva som er pakket.",
    _NOT_OUR_PATIENT: (
        "Som helsefagarbeider leser og gir du legemidler bare til pasienter som er "
        "registrert ved din enhet; denne pasienten er ikke det."
    ),
    _NOT_AT_YOUR_UNIT_ACK: (
        "Pasienten er ikke registrert ved din enhet: bare sykepleiere ved en enhet pasienten "
        "er registrert ved, kvitterer for endringer i listen."
    ),
    OPERATORS_SEE_NO_PATIENT: (
        "En driftsoperatør for et journalsystem ser ingen pasientopplysninger; en teknisk sak "
        "om en pasient vises operatøren uten dem."
    ),
    ROLLOUT_SEES_NO_PATIENT: (
        "Innføringsteamet leser rapportene om innføringen, ikke pasientopplysninger."
    ),
    _NOT_AT_YOUR_UNIT: (
        "Pasienten er ikke registrert ved din enhet: bare sykepleiere og helsefagarbeidere "
        "ved en enhet pasienten er registrert ved, registrerer hva som er gitt."
    ),
} | {
    english.format(role=role.value): norwegian.format(role=ROLE_NB[role])
    for english, norwegian in (*REFUSALS.values(), PRESCRIBER_WRITE)
    for role in Role
}


def in_norwegian(message: str) -> str | None:
    """A refusal of this policy in Norwegian, if ``message`` is one."""
    return _NORWEGIAN.get(message)


def _not_our_pharmacy(facts: PatientFacts) -> str:
    """Why a pharmacy may not do a multidose pharmacy's work for this patient (read the
    packing basis, propose, report packing), and the basis it has instead, in Norwegian:
    the English refusals name one verb and say nothing of the patient."""
    why = (
        "Pasienten har ingen e-multidoseregistrering (M27), så ingen multidoseapotek "
        "pakker for pasienten."
        if facts.multidose_pharmacy is None
        else "Apoteket ditt er ikke registrert som pasientens multidoseapotek (M27)."
    )
    return (
        f"{why} Pakkegrunnlaget, forslag til endringer og pakkerapporter er bare for "
        "pasientens multidoseapotek. Legemiddellisten kan du lese med grunnlaget "
        "behandlingsrelasjon (HPBEHANDLINGSRELASJON), for eksempel når du utleverer en resept."
    )


def _not_responsible_doctor(facts: PatientFacts) -> str:
    if facts.multidose_doctor is None:
        return (
            "This patient has no e-multidose registration (M27): there is no responsible "
            "multidose doctor to act as."
        )
    return (
        "Only the patient's registered responsible multidose doctor (HPR "
        f"{facts.multidose_doctor}) decides on the pharmacy's proposals and ends the "
        "registration (M27)."
    )


_BASES = {b.value: b for b in Basis}


def parse_basis(raw: str | None) -> Basis | None:
    """The basis a request states, or ``None``; an unknown code is refused with the list."""
    if raw is None:
        return None
    found = _BASES.get(raw)  # the usual case: a code exactly as defined
    if found is not None:
        return found
    code = raw.strip().upper()
    if not code:
        return None
    found = _BASES.get(code)
    if found is None:
        known = ", ".join(b.value for b in Basis)
        raise InvalidInput(f"Unknown access basis {code[:40]!r}; use one of {known}.", BASIS_HEADER)
    return found


@dataclass(frozen=True)
class PatientFacts:
    """What the store knows about one patient that access depends on, for this caller."""

    patient_id: str
    identifier: str
    #: the patient has blocked this health worker (by HPR number)
    blocked: bool = False
    #: the caller holds a registered proxy (fullmakt) for this patient
    proxy: bool = False
    #: organisation number of the patient's one responsible multidose pharmacy, if any
    multidose_pharmacy: str | None = None
    #: HPR number of the patient's responsible multidose doctor, if any (M27)
    multidose_doctor: str | None = None
    #: the patient is registered with the caller's care unit (the organisation in the
    #: caller's token) and the registration has not ended (issue 17)
    in_callers_care: bool = False

    @classmethod
    def of(cls, patient_id: str, row: Any) -> PatientFacts:
        """The facts from a row that names them ``identifier_value``, ``blocked``,
        ``proxy``, ``pharmacy``, ``doctor`` and ``in_care``, as the store's query
        (:func:`pll.store.audit_log.facts`) and the read copy's
        (:func:`pll.events.readcopy_facts.facts`) both answer, each for the caller's
        :meth:`Access.fact_keys`."""
        return cls(
            patient_id,
            row.identifier_value,
            bool(row.blocked),
            bool(row.proxy),
            multidose_pharmacy=row.pharmacy,
            multidose_doctor=row.doctor,
            in_callers_care=bool(row.in_care),
        )


@dataclass(frozen=True)
class Decision:
    """The verdict on one request for one patient, and what its audit record says."""

    allowed: bool
    message: str = ""
    flag: str | None = None
    #: the refusal in Norwegian for a page, when it says more than :func:`in_norwegian`
    #: knows from ``message`` (what this patient's facts make of it)
    norwegian: str | None = None

    @property
    def outcome(self) -> Outcome:
        return Outcome.SUCCESS if self.allowed else Outcome.REFUSED


@dataclass(frozen=True)
class ReadRule:
    """:meth:`Access.decide` for a read, as parameters a single SQL statement can apply.

    Admitted when (the caller is the patient or holds a proxy, if ``own_only``) and (the
    worker is not blocked, or ``allow_blocked``); the record gets ``flag_if_blocked`` when a
    block was overridden. A rule that can admit nobody is ``None`` instead (see
    :meth:`Access.read_rule`).
    """

    own_only: bool
    pid: str | None
    hpr: str | None
    allow_blocked: bool
    flag_if_blocked: str | None


@dataclass
class ReadLog:
    """The patients one request has read and logged, for a caller (a page of the web UI)
    whose view of a patient is one look however many reads make it: the access log gets one
    record per page view (DESIGN §3 rule 5), not one per read the page makes.

    A read counts once its record is durable: the audit trail notes it as :meth:`pending`
    when it writes the record, and the use case's guard settles it (:meth:`settle`) when the use
    case has ended (its transaction committed) or drops it when it failed."""

    logged: set[str] = field(default_factory=set)
    _pending: set[str] = field(default_factory=set)

    def __contains__(self, patient_id: object) -> bool:
        return patient_id in self.logged

    def pending(self, patient_id: str) -> None:
        self._pending.add(patient_id)

    def settle(self, *, committed: bool) -> None:
        if committed:
            self.logged |= self._pending
        self._pending.clear()


@dataclass(frozen=True)
class Access:
    """The authenticated caller, the basis they state, and the client system they use."""

    actor: Author
    basis: Basis | None = None
    client_id: str | None = None
    #: the reason the caller gives for overriding blocking decision-support findings
    #: (``X-PLL-Override``), kept with the change
    override: str | None = None
    #: the findings the override accepts (``X-PLL-Override-Findings``); ``None`` accepts
    #: every one, which only PLL's own callers (demo data, dry runs) use
    override_findings: frozenset[str] | None = None
    #: the reads of one page view, logged once (:class:`ReadLog`); ``None`` (the API, every
    #: other caller) logs every read. Not part of who the caller is (equality, hash)
    reads: ReadLog | None = field(default=None, compare=False, repr=False)

    @property
    def is_patient(self) -> bool:
        return self.actor.role is Role.PATIENT

    def fact_keys(self) -> dict[str, str | None]:
        """What of the caller a patient's :class:`PatientFacts` are looked up by: their
        HPR number (``hpr``: blocks), their person number if they are a patient (``holder``:
        proxies) and their organisation (``org``: care unit registrations)."""
        return {
            "hpr": self.actor.hpr,
            "holder": self.actor.pid if self.is_patient else None,
            "org": self.actor.org_id,
        }

    def speaks_for(self, identifier: str, proxy: bool) -> bool:
        """Whether a patient caller may name the person ``identifier``: themselves, or a
        person they hold a proxy for (``proxy``). Asked before a person is looked up, so
        a refusal cannot tell who is registered; :meth:`decide` holds the same rule."""
        return bool(self.actor.pid) and (identifier == self.actor.pid or proxy)

    def decide(self, verb: Verb, facts: PatientFacts) -> Decision:  # noqa: PLR0911 - one rule per return
        """May this caller do ``verb`` on this patient's data? The table's cell
        (:data:`pll.auth.policy.POLICY`), its condition on this patient's facts, then the
        patient's blocks (DESIGN §3 rules 4 and 5). An ``own entries`` cell admits the
        request; which entries are the caller's own the change itself decides
        (:mod:`pll.domain.prescribers`)."""
        if self.is_patient and not self.speaks_for(facts.identifier, facts.proxy):
            return Decision(False, NOT_YOURS)
        refusal = self.refusal(verb)
        if refusal is not None:
            return Decision(False, refusal)
        if self.is_patient:
            return Decision(True)
        cell = grant(self.actor.role, verb)
        if cell is Grant.RESPONSIBLE:
            if verb is Verb.DECIDE and not self._responsible_doctor(facts):
                return Decision(False, _not_responsible_doctor(facts))
            if verb is Verb.PROPOSE and not self._responsible_pharmacy(facts):
                return Decision(False, _ONLY_PHARMACY_PROPOSES, norwegian=_not_our_pharmacy(facts))
            if verb is Verb.PACK and not self._responsible_pharmacy(facts):
                return Decision(False, _ONLY_PHARMACY_PACKS, norwegian=_not_our_pharmacy(facts))
        if cell is Grant.UNIT and not facts.in_callers_care:
            return Decision(False, _NOT_IN_CARE.get(verb, _NOT_OUR_PATIENT))
        if facts.blocked:
            if verb is Verb.FOLLOW:
                return Decision(False, _BLOCKED_FOLLOW)
            if self.basis is not Basis.EMERGENCY:
                return Decision(False, _BLOCKED)
            return Decision(True, flag=EMERGENCY_OVERRIDE)
        return Decision(True)

    def refusal(self, verb: Verb) -> str | None:  # noqa: PLR0911 - one rule per return
        """Why this caller may not ``verb`` anyone's data, whoever the patient is: the
        table's cell is ``no``, or a health worker states no basis. Services ask before they
        look anyone up, so a refusal cannot tell who is registered."""
        role = self.actor.role
        cell = grant(role, verb)
        if self.is_patient:
            if cell is not Grant.NO:
                return None
            return _CASES_BY_PRESCRIBERS if verb is Verb.HANDLE else _PATIENT_READS
        if role is Role.OPERATOR:
            return OPERATORS_SEE_NO_PATIENT
        if role is Role.ROLLOUT:
            return ROLLOUT_SEES_NO_PATIENT
        if cell is Grant.NO:
            if verb is Verb.WRITE and grant(role, Verb.PRESCRIBE) is not Grant.NO:
                return PRESCRIBER_WRITE[0].format(role=role.value)
            return REFUSALS[verb][0].format(role=role.value)
        if self.basis is None:
            return (
                f"State the basis for this access in the {BASIS_HEADER} header: "
                + ", ".join(b.value for b in Basis)
                + "."
            )
        return None

    def _responsible_pharmacy(self, facts: PatientFacts) -> bool:
        return (
            self.actor.role is Role.PHARMACIST
            and facts.multidose_pharmacy is not None
            and self.actor.org_id == facts.multidose_pharmacy
        )

    def _responsible_doctor(self, facts: PatientFacts) -> bool:
        return (
            self.actor.role is Role.DOCTOR
            and facts.multidose_doctor is not None
            and self.actor.hpr == facts.multidose_doctor
        )

    def read_rule(self) -> ReadRule | None:
        """This caller's read permission, compiled for the one-statement read; ``None``
        when no patient's data can be read (the slow path then refuses and logs why)."""
        if self.is_patient:
            if not self.actor.pid:
                return None
            return ReadRule(True, self.actor.pid, None, True, None)
        if self.basis is None or grant(self.actor.role, Verb.READ) is not Grant.YES:
            # a care worker's read depends on their unit's registrations, which the
            # one-statement read does not know: the general path decides it (and refuses
            # a role the table gives no read, an operator among them)
            return None
        emergency = self.basis is Basis.EMERGENCY
        return ReadRule(
            False, None, self.actor.hpr, emergency, EMERGENCY_OVERRIDE if emergency else None
        )

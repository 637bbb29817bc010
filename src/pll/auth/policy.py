"""The access policy as one table: who may do what with a patient's data (DESIGN §3 rule 4).

:data:`POLICY` says, for every :class:`Verb` and every :class:`~pll.domain.model.Role`, whether
the role may do it at all and on which condition (a :class:`Grant`). It is the single source
:class:`pll.auth.access.Access` decides from, and ``docs/access.md`` shows the same table; a
test (``tests/unit/test_policy_table.py``) reads the document's table and compares it with this
one, cell by cell, so the text a reader checks is the rule the code keeps.

What the conditions rest on:

* every health worker states a basis (:class:`pll.auth.access.Basis`) and is held to the
  patient's blocks, emergency access aside (rule 5);
* ``own entries``: a dentist (HPR TL) or midwife (HPR JO) puts what they prescribe on the
  list and changes, renews, recalls or discontinues only what they prescribed — which
  entries and prescriptions are theirs is :mod:`pll.domain.prescribers`;
* ``responsible``: only the patient's registered multidose pharmacy (proposals, packing) or
  responsible multidose doctor (decisions) (M27);
* ``unit``: only for patients registered with the caller's care unit (issue 17);
* ``self``: the patient's own data, or that of a person they hold a proxy for.
"""

from __future__ import annotations

from enum import StrEnum

from pll.domain.model import Role


class Verb(StrEnum):
    """What a request does with a patient's data."""

    READ = "read"
    #: change the list beyond one's own prescribing: any prescriber's entries, the list as a
    #: whole (create it with a patient's registration, confirm, pause, resume, reconcile),
    #: drug reactions (CAVE), multidose registrations: doctors
    WRITE = "write"
    #: put what one prescribes on the list, and renew, recall, change or discontinue it:
    #: doctors (anything on the list, with :attr:`WRITE`); dentists and midwives their own
    #: entries only (pll.domain.prescribers). The REST list writes and ``$sendMedication``
    #: ask for this; the domain holds a non-doctor to their own entries
    PRESCRIBE = "prescribe"
    #: propose a change for the responsible doctor to accept or reject (M25.2, e-multidose)
    PROPOSE = "propose"
    #: report a discrepancy on the list or an entry (case handling): anyone with access to
    #: the list, the patient (or their proxy) too; also comment on or withdraw one's own case
    REPORT = "report"
    #: handle a reported discrepancy (take it, resolve it, reject it): prescribers; which
    #: cases they may handle (their organisation's) is the case's own rule (pll.domain.cases)
    HANDLE = "handle"
    #: report what was packed for which period (M25.3, e-multidose): the responsible pharmacy
    PACK = "pack"
    #: act as the patient's responsible multidose doctor (M27): accept or reject the
    #: pharmacy's proposals, end the multidose registration
    DECIDE = "decide"
    #: record what a pharmacy hands out: a dispensing (M10), paper multidose it packs
    DISPENSE = "dispense"
    #: the patient's own access log and blocks
    OWN = "own"
    #: a standing read: a subscription to the patient's list, decided when it is made and
    #: again before each notification. An emergency basis does not lift a block for it:
    #: an emergency gives a read now, not a feed of what happens later
    FOLLOW = "follow"
    #: register the patient with a care unit (nursing home, home care) or end that
    #: registration; which unit a nurse or doctor acts for is the registration's own rule
    #: (pll.domain.care_units)
    CARE_UNIT = "care-unit"
    #: record what was given (or not) from the list: nurses and care workers of a care unit
    #: the patient is registered with (issue 17)
    ADMINISTER = "administer"
    #: acknowledge a list's changes for the care unit (issue 17): nurses (HPR SP) of a unit
    #: the patient is registered with; a care worker gives, but a change is taken in by a nurse
    ACKNOWLEDGE = "acknowledge"


class Grant(StrEnum):
    """A cell of the table: may the role do the verb, and on what condition."""

    NO = "no"
    #: with a stated basis, the patient's blocks honoured
    YES = "yes"
    #: as ``yes``, and only what the caller prescribed (pll.domain.prescribers)
    OWN_ENTRIES = "own entries"
    #: as ``yes``, and only the patient's responsible multidose pharmacy or doctor (M27)
    RESPONSIBLE = "responsible"
    #: as ``yes``, and only for a patient registered with the caller's care unit
    UNIT = "unit"
    #: the patient's own data, or that of a person they hold a proxy for
    SELF = "self"


#: The columns of the table, in the order the document shows them. :attr:`Role.SYSTEM`
#: (PLL's own changes by the passing of time) never acts through the policy: it may nothing.
ROLES = (
    Role.DOCTOR,
    Role.DENTIST,
    Role.MIDWIFE,
    Role.NURSE,
    Role.HEALTH_WORKER,
    Role.CARE_WORKER,
    Role.PHARMACIST,
    Role.PATIENT,
)

_N, _Y, _O, _R, _U, _S = (
    Grant.NO,
    Grant.YES,
    Grant.OWN_ENTRIES,
    Grant.RESPONSIBLE,
    Grant.UNIT,
    Grant.SELF,
)


def _row(*grants: Grant) -> dict[Role, Grant]:
    return dict(zip(ROLES, grants, strict=True))


#: role × verb → grant. Columns: doctor, dentist, midwife, nurse, health worker, care worker,
#: pharmacist, patient (:data:`ROLES`).
POLICY: dict[Verb, dict[Role, Grant]] = {
    Verb.READ: _row(_Y, _Y, _Y, _Y, _Y, _U, _Y, _S),
    Verb.PRESCRIBE: _row(_Y, _O, _O, _N, _N, _N, _N, _N),
    Verb.WRITE: _row(_Y, _N, _N, _N, _N, _N, _N, _N),
    Verb.REPORT: _row(_Y, _Y, _Y, _Y, _Y, _U, _Y, _S),
    Verb.HANDLE: _row(_Y, _Y, _Y, _N, _N, _N, _N, _N),
    Verb.FOLLOW: _row(_Y, _Y, _Y, _Y, _Y, _U, _Y, _S),
    Verb.OWN: _row(_N, _N, _N, _N, _N, _N, _N, _S),
    Verb.DECIDE: _row(_R, _N, _N, _N, _N, _N, _N, _N),
    Verb.PROPOSE: _row(_N, _N, _N, _N, _N, _N, _R, _N),
    Verb.PACK: _row(_N, _N, _N, _N, _N, _N, _R, _N),
    Verb.DISPENSE: _row(_N, _N, _N, _N, _N, _N, _Y, _N),
    Verb.CARE_UNIT: _row(_Y, _N, _N, _Y, _N, _N, _N, _N),
    Verb.ADMINISTER: _row(_N, _N, _N, _U, _N, _U, _N, _N),
    Verb.ACKNOWLEDGE: _row(_N, _N, _N, _U, _N, _N, _N, _N),
}


def grant(role: Role, verb: Verb) -> Grant:
    """The table's cell for ``role`` doing ``verb``; a role not in the table may nothing."""
    return POLICY[verb].get(role, Grant.NO)


#: What a health worker whose cell is ``no`` is told, in English and Norwegian (bokmål);
#: ``{role}`` is the caller's role. The patient's refusals are the access module's own.
REFUSALS: dict[Verb, tuple[str, str]] = {
    Verb.READ: (
        "A {role} does not read medication lists.",
        "Som {role} leser du ikke legemiddellister.",
    ),
    Verb.FOLLOW: (
        "A {role} does not follow medication lists.",
        "Som {role} kan du ikke abonnere på legemiddellister.",
    ),
    Verb.REPORT: (
        "A {role} does not report discrepancies.",
        "Som {role} kan du ikke melde avvik.",
    ),
    Verb.PRESCRIBE: (
        "Only prescribers change the list: doctors (HPR authorisation LE), and dentists (TL) "
        "and midwives (JO) for what they prescribe; a {role} may read it and report a "
        "discrepancy.",
        "Bare forskrivere endrer listen: leger (HPR-autorisasjon LE), og tannleger (TL) og "
        "jordmødre (JO) for det de selv forskriver; som {role} kan du lese den og melde avvik.",
    ),
    Verb.WRITE: (
        "Only doctors (HPR authorisation LE) change the list; a {role} may read it.",
        "Bare leger (HPR-autorisasjon LE) endrer listen; som {role} kan du lese den.",
    ),
    Verb.PROPOSE: (
        "Only the patient's responsible multidose pharmacy proposes changes.",
        "Bare pasientens multidoseapotek foreslår endringer.",
    ),
    Verb.PACK: (
        "Only the patient's responsible multidose pharmacy reports what it packed.",
        "Bare pasientens multidoseapotek melder hva som er pakket.",
    ),
    Verb.DISPENSE: (
        "Only pharmacies register dispensings; a {role} may not.",
        "Bare apotek registrerer utleveringer; som {role} kan du ikke det.",
    ),
    Verb.DECIDE: (
        "Only the patient's responsible multidose doctor decides on the pharmacy's proposals "
        "and ends the registration; a {role} may not.",
        "Bare pasientens ansvarlige multidoselege tar stilling til apotekets forslag og "
        "avslutter registreringen; som {role} kan du ikke det.",
    ),
    Verb.HANDLE: (
        "Only prescribers take, resolve or reject a discrepancy case; a {role} may report one.",
        "Bare forskrivere tar, løser eller avviser et avvik; som {role} kan du melde avvik.",
    ),
    Verb.OWN: (
        "The access log and blocks are the patient's own.",
        "Innsynsloggen og sperringene er pasientens egne.",
    ),
    Verb.CARE_UNIT: (
        "Only a nurse or doctor of the care unit registers its patients or ends a "
        "registration; a {role} may not.",
        "Bare en sykepleier eller lege ved enheten registrerer enhetens pasienter eller "
        "avslutter en registrering.",
    ),
    Verb.ADMINISTER: (
        "Only nurses and care workers of a care unit the patient is registered with record "
        "what is given.",
        "Bare sykepleiere og helsefagarbeidere ved en enhet pasienten er registrert ved, "
        "registrerer hva som er gitt.",
    ),
    Verb.ACKNOWLEDGE: (
        "Only nurses of a care unit the patient is registered with acknowledge the list's "
        "changes for the unit.",
        "Bare sykepleiere ved en enhet pasienten er registrert ved, kvitterer for endringer "
        "i legemiddellisten.",
    ),
}

#: What a dentist or midwife is told when a change needs a doctor (:attr:`Verb.WRITE`): they
#: do change the list, but only through what they prescribe.
PRESCRIBER_WRITE = (
    "Only doctors (HPR authorisation LE) change other prescribers' entries, confirm, pause "
    "or resume the list, register drug reactions and multidose; a {role} puts what they "
    "prescribe on the list and changes only their own entries.",
    "Bare leger (HPR-autorisasjon LE) endrer andre forskriveres legemidler, bekrefter, "
    "pauser eller gjenopptar listen og registrerer legemiddelreaksjoner og multidose; som "
    "{role} fører du opp det du selv forskriver og endrer bare dine egne legemidler.",
)

#: Roles in Norwegian, for the refusals on pages.
ROLE_NB = {
    Role.DOCTOR: "lege",
    Role.DENTIST: "tannlege",
    Role.MIDWIFE: "jordmor",
    Role.NURSE: "sykepleier",
    Role.HEALTH_WORKER: "helsepersonell",
    Role.PHARMACIST: "farmasøyt",
    Role.CARE_WORKER: "helsefagarbeider",
    Role.PATIENT: "pasient",
    Role.SYSTEM: "system",
    Role.OPERATOR: "driftsoperatør",
    Role.ROLLOUT: "innføringsteam",
}

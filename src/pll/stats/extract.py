"""The pseudonymised event-level extract for the evaluators (issue 19): what one row holds and
how a patient, an entry, a prescription or a case becomes a keyed pseudonym. Pure: no
database, no files (:mod:`pll.services.extract` reads the rows and writes the file).

One row per list version, dispensing, administration record version and case event
(discrepancy and technical cases). A row names the patient only by

- a **pseudonym**: HMAC-SHA256 of PLL's patient id under a key only the operator holds
  (``PLL_PSEUDONYM_KEY``), so the same patient has the same pseudonym in every extract made
  with that key, and nobody without the key can compute it from a fødselsnummer or a PLL id;
- the **birth year** (``Patient.birthDate``, else the date the fødselsnummer or D-nummer
  encodes) and the **home municipality** (kommunenummer, as the statistics count it).

Organisation numbers, HPR numbers, roles and the journal system's ``client_id`` are kept:
they are what the evaluation is about. Never written: fødselsnummer, names (of patients,
health workers or organisations), free text (reasons, comments, descriptions, dose text) and
PLL's internal ids; entries, prescriptions and cases are keyed pseudonyms like the patient,
so rows about one entry can be linked without pointing back into PLL. Codes (activity, status,
action) are passed only when they look like codes, so a free-text value that some day lands
in such a column is dropped rather than published. ``docs/statistics.md`` lists the columns.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from pll.domain.errors import InvalidInput
from pll.domain.identifiers import parse_person_identifier
from pll.fhir import systems
from pll.fhir.administrations import NOT_GIVEN_SYSTEM
from pll.stats.indicators import home_of

#: The shortest key accepted, in bytes of its UTF-8 text: 32 bytes (256 bits) as made by
#: ``python -c "import secrets; print(secrets.token_hex(32))"`` (64 hex digits).
MIN_KEY_BYTES = 32
#: The fewest distinct characters a key may have: refuses "aaaa…" and "0123012301…" that are
#: long enough but guessable. 64 random hex digits hold fewer than 8 distinct ones with a
#: probability below 10^-18.
MIN_KEY_DISTINCT = 8
#: Hex digits of a pseudonym: 128 bits, no collision in Norway's 5.6 million patients.
PSEUDONYM_HEX = 32

KINDS = ("list-version", "dispense", "administration", "case", "technical-case")

#: The columns, in order, with their type: ``str``, ``int``, ``bool`` or ``time`` (UTC).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "str"),
    ("kind", "str"),
    ("event_time", "time"),
    ("patient", "str"),
    ("birth_year", "int"),
    ("municipality", "str"),
    ("actor_role", "str"),
    ("hpr", "str"),
    ("orgnr", "str"),
    ("action", "str"),
    ("status", "str"),
    ("status_reason", "str"),
    ("list_version", "int"),
    ("entries_touched", "int"),
    ("override", "bool"),
    ("entry", "str"),
    ("prescription", "str"),
    ("case", "str"),
    ("case_kind", "str"),
    ("owner_orgnr", "str"),
    ("client_id", "str"),
    ("atc", "str"),
    ("as_needed", "bool"),
    ("verifier_hpr", "str"),
)
NAMES = tuple(name for name, _ in COLUMNS)

Row = dict[str, Any]

_CODE = re.compile(r"[a-z0-9][a-z0-9+_.-]{0,79}")
_ATC = re.compile(r"[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?")
_DIGITS = re.compile(r"[0-9]{4,16}")
_CLIENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:/._@-]{0,99}")


class Pseudonymiser:
    """Keyed pseudonyms under one key: the same input and key give the same pseudonym, another
    key another one. Each kind of thing is hashed under its own label, so a patient's and an
    entry's pseudonyms can never coincide."""

    def __init__(self, key: str | None) -> None:
        """Refuses (``ValueError``, saying what to do) a missing key or one too short or too
        uniform to be secret."""
        if not key:
            raise ValueError(
                "PLL_PSEUDONYM_KEY is not set: the extract's pseudonyms need a secret key only "
                "the operator holds (make one with: python -c "
                '"import secrets; print(secrets.token_hex(32))")'
            )
        raw = key.encode()
        if len(raw) < MIN_KEY_BYTES:
            raise ValueError(
                f"PLL_PSEUDONYM_KEY is {len(raw)} bytes: a key must be at least {MIN_KEY_BYTES} "
                "bytes to be secret (for example 64 random hex digits from "
                "secrets.token_hex(32))"
            )
        if len(set(key)) < MIN_KEY_DISTINCT:
            raise ValueError(
                f"PLL_PSEUDONYM_KEY has only {len(set(key))} different characters: it is too "
                "regular to be secret; use a random one (secrets.token_hex(32))"
            )
        self._key = raw

    def of(self, label: str, value: str) -> str:
        """The pseudonym of ``value`` as a ``label`` (patient, entry, prescription, case ...)."""
        mac = hmac.new(self._key, f"{label}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:PSEUDONYM_HEX]


@dataclass(frozen=True)
class Person:
    """What a row says about a patient."""

    pseudonym: str
    birth_year: int | None
    municipality: str | None


def person(keys: Pseudonymiser, patient_id: str, system: str, value: str, resource: str) -> Person:
    """The patient as the extract shows them, from the stored Patient row."""
    patient = orjson.loads(resource)
    return Person(
        keys.of("patient", patient_id),
        birth_year(patient, system, value),
        home_of(patient).municipality or None,
    )


def birth_year(patient: dict[str, Any], system: str, value: str) -> int | None:
    """``Patient.birthDate``'s year, else the one the person identifier encodes."""
    born = patient.get("birthDate")
    if isinstance(born, str) and re.fullmatch(r"[0-9]{4}(-.*)?", born):
        return int(born[:4])
    if system in (systems.FNR, systems.DNR):
        try:
            return parse_person_identifier(system, value).birth_date.year
        except InvalidInput:
            return None
    return None


def code(value: Any) -> str | None:
    """``value`` when it is a code (lower case, digits, ``+ - _ .``), else nothing."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def digits(value: Any) -> str | None:
    """An HPR or organisation number (4 to 16 digits), else nothing."""
    return value if isinstance(value, str) and _DIGITS.fullmatch(value) else None


def atc_of(resource: dict[str, Any]) -> str | None:
    """The ATC code of a resource's ``medicationCodeableConcept``, when it has a well-formed
    one (the drug's group is no personal data; its name and text are left out)."""
    concept = resource.get("medicationCodeableConcept")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and coding.get("system") == systems.ATC:
            found = coding.get("code")
            if isinstance(found, str) and _ATC.fullmatch(found):
                return found
    return None


def _actor(author: str | None) -> Row:
    """Role, HPR number and organisation number of a stored author; never the name or the
    patient's own fødselsnummer (a patient acting on their list carries one)."""
    data = orjson.loads(author) if author else {}
    if not isinstance(data, dict):
        data = {}
    return {
        "actor_role": code(data.get("role")),
        "hpr": digits(data.get("hpr")),
        "orgnr": digits(data.get("org_id")),
    }


def _base(keys: Pseudonymiser, kind: str, source: str, at: datetime, who: Person | None) -> Row:
    row: Row = dict.fromkeys(NAMES)
    row.update(
        event_id=keys.of("event", f"{kind}/{source}"),
        kind=kind,
        event_time=at,
        patient=who.pseudonym if who else None,
        birth_year=who.birth_year if who else None,
        municipality=who.municipality if who else None,
    )
    return row


def list_version_row(keys: Pseudonymiser, r: Any, who: Person) -> Row:
    """A list version: who (role, HPR, organisation), what (the activity codes, how many
    entries and prescriptions it touched, whether a decision-support finding was overridden);
    the reason, a free text, is left out."""
    touched = orjson.loads(r.touched) if r.touched else []
    row = _base(keys, "list-version", f"{r.list_id}/{r.version}", r.recorded_at, who)
    row.update(_actor(r.author))
    row.update(
        action=code(r.activity),
        list_version=r.version,
        entries_touched=sum(1 for t in touched if t.get("type") != "List"),
        override=bool(r.override),
    )
    return row


def dispense_row(keys: Pseudonymiser, r: Any, who: Person) -> Row:
    """A dispensing: the pharmacy's organisation number, the drug's ATC code and the
    prescription's pseudonym."""
    res = orjson.loads(r.resource)
    performer = (res.get("performer") or [{}])[0]
    identifier = ((performer or {}).get("actor") or {}).get("identifier") or {}
    row = _base(keys, "dispense", r.id, r.recorded_at, who)
    row.update(
        actor_role="pharmacist",
        orgnr=digits(identifier.get("value")),
        action="dispense",
        status=code(res.get("status")),
        prescription=keys.of("prescription", r.prescription_id) if r.prescription_id else None,
        atc=atc_of(res),
    )
    return row


def not_given_reason(res: dict[str, Any]) -> str | None:
    """The reason a version of an administration record states for a dose not given: its
    own ``statusReason`` coding (:data:`NOT_GIVEN_SYSTEM`), not the record's current one —
    a correction to entered-in-error states its reason as text, and publishes no code."""
    for concept in res.get("statusReason") or []:
        for coding in concept.get("coding") or []:
            if coding.get("system") == NOT_GIVEN_SYSTEM:
                return str(coding.get("code") or "") or None
    return None


def administration_row(keys: Pseudonymiser, r: Any, who: Person) -> Row:
    """A version of an administration record: recorded (version 1) or corrected, given or not
    and why (a code, the version's own: :func:`not_given_reason`), planned or as needed, the
    second signer's HPR number."""
    res = orjson.loads(r.resource)
    row = _base(keys, "administration", f"{r.administration_id}/{r.version}", r.recorded_at, who)
    row.update(_actor(r.author))
    row.update(
        action="record" if r.version == 1 else "correct",
        status=code(r.status),
        status_reason=code(not_given_reason(res)),
        entry=keys.of("entry", r.entry_id),
        atc=atc_of(res),
        as_needed=r.slot_key is None,
        verifier_hpr=digits(r.verifier_hpr),
    )
    return row


def case_row(keys: Pseudonymiser, r: Any, who: Person) -> Row:
    """An event of a discrepancy case (reported, taken, commented, closed): its action and
    status, the organisation it went to, the entry it is about; never the description or
    the comment."""
    row = _base(keys, "case", f"{r.case_id}/{r.version}", r.recorded_at, who)
    row.update(_actor(r.author))
    row.update(
        action=code(r.action),
        status=code(r.status),
        case=keys.of("case", r.case_id),
        case_kind=code(r.kind) or "discrepancy",
        owner_orgnr=digits(r.owner_org),
        entry=keys.of("entry", r.entry_id) if r.entry_id else None,
    )
    return row


def technical_case_row(keys: Pseudonymiser, r: Any, who: Person | None) -> Row:
    """An event of a technical case: the journal system (``client_id``) it is about, the
    operator it went to; the patient only when the case is about one."""
    row = _base(keys, "technical-case", f"{r.case_id}/{r.version}", r.recorded_at, who)
    row.update(_actor(r.author))
    client = r.client_id if isinstance(r.client_id, str) else None
    row.update(
        action=code(r.action),
        status=code(r.status),
        case=keys.of("case", r.case_id),
        owner_orgnr=digits(r.owner_org),
        client_id=client if client and _CLIENT.fullmatch(client) else None,
    )
    return row

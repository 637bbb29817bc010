"""SMART EHR launch: a journal system opens PLL's doctor pages for the patient it has open.

The SMART App Launch framework (https://hl7.org/fhir/smart-app-launch/app-launch.html, EHR
launch) has the EHR open the app at its launch URL with ``iss`` (the FHIR server) and an
opaque ``launch`` that the authorization server resolves to the launch context. PLL is both
the FHIR server and the app here, and the health worker is already logged in to HelseID in
the journal system, which holds an access token for PLL's API in their name (the one its SFM
calls use). So the journal system registers the launch with PLL itself, with that token:
:meth:`Launches.register` keeps the token, the patient and the access basis under the SHA-256
of a fresh random launch id; :meth:`Launches.redeem` gives them back once, within
:data:`LIFETIME`, to the browser that opens ``/launch?iss=…&launch=…``. The user's HelseID
identity is handed over (no second login inside the frame, where HelseID's own pages cannot
be shown), and the patient is the one the journal system named (no second search).

What binds a launch: it can only be made with a verified access token of a health worker,
through a named client system (``client_id``); the patient is resolved when it is made,
under that caller's access rules; the web session it opens acts with that same token,
verified again on every request; and the launch id is 256 random bits, used once, kept
minutes. A patient id in a URL is never trusted on its own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access, Basis, Verb
from pll.domain.errors import DomainError, Forbidden, InvalidInput, NotFound
from pll.domain.identifiers import parse_person_identifier
from pll.domain.model import CLINICIANS
from pll.services.patient_records import PatientRecords
from pll.store import smart_launches as store
from pll.store.db import Database

#: How long a registered launch may wait for the browser: the journal system opens the
#: frame at once; a launch id found later in a log or a history opens nothing.
LIFETIME = timedelta(minutes=5)
#: Who may be launched into PLL's doctor pages: the pages' own roles (pll.web.edge.doctors),
#: so a dental or midwifery journal system opens them as a GP's does (issue 18).
LAUNCHABLE = CLINICIANS


class LaunchRefused(DomainError):
    """A launch id that opens nothing: unknown (forged or mistyped), used or expired. The
    message is for the person in front of the frame, in Norwegian."""


@dataclass(frozen=True)
class LaunchContext:
    """What a redeemed launch hands the web UI."""

    #: the health worker's access token, as the journal system holds it
    token: str
    client_id: str
    #: the HPR number of the health worker the token names
    hpr: str
    patient_id: str
    person_number: str
    basis: Basis


def _key(launch: str) -> str:
    return hashlib.sha256(launch.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Launches:
    db: Database
    patients: PatientRecords
    clock: Callable[[], datetime] = _now

    def register(self, access: Access, token: str, patient: str) -> tuple[str, datetime]:
        """Register a launch for ``patient`` (a fødselsnummer or D-nummer) by the caller of
        ``access``, whose bearer ``token`` it is; returns the opaque launch id and when it
        expires. The caller must be a clinician (:data:`LAUNCHABLE`) with an HPR number,
        acting through a client system (the token's ``client_id``), on a stated basis; the
        patient must be registered and not hidden from the caller (the same lookup as the
        API's search). Nothing of the patient is read or logged here: the page the launch
        opens does that, on this basis."""
        actor = access.actor
        if actor.role not in LAUNCHABLE or actor.hpr is None:
            raise Forbidden(
                "Only health personnel who use PLL's doctor pages (doctors, dentists, "
                "midwives, nurses, other health personnel) are launched into them; "
                f"this token is a {actor.role.value}'s."
            )
        if not access.client_id:
            raise Forbidden("A launch comes from a client system: the token names no client_id.")
        if access.basis is None:
            raise InvalidInput(
                "State the basis for the access the launched pages make in the "
                "X-PLL-Access-Basis header: " + ", ".join(b.value for b in Basis) + ".",
                "X-PLL-Access-Basis",
            )
        parsed = parse_person_identifier(None, patient, "patient")
        patient_id = self.patients.patient_by_identifier(
            access, Verb.READ, parsed.system, parsed.value
        )
        if patient_id is None:
            raise NotFound(f"No patient is registered with the number {parsed.value}.", "patient")
        launch = secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.write() as conn:
            store.add(
                conn,
                _key(launch),
                now,
                token=token,
                client_id=access.client_id,
                hpr=actor.hpr,
                patient_id=patient_id,
                person_number=parsed.value,
                basis=access.basis.value,
                expires_at=now + LIFETIME,
            )
        return launch, now + LIFETIME

    def peek(self, launch: str) -> LaunchContext:
        """The context of ``launch``, leaving it unused: the browser that opens it may first
        have to ask whether to leave another person's login (:mod:`pll.web.launch`).
        :class:`LaunchRefused` as :meth:`redeem`."""
        return self._context(launch, store.look)

    def redeem(self, launch: str) -> LaunchContext:
        """The context of ``launch``, once: the launch is used up by this call whatever
        the caller then does. :class:`LaunchRefused` for a launch that is unknown, used or
        past :data:`LIFETIME`."""
        return self._context(launch, store.take)

    def _context(
        self, launch: str, find: Callable[[Connection, str, datetime], tuple[str, Any]]
    ) -> LaunchContext:
        if not launch or len(launch) > 128:
            raise LaunchRefused("unknown launch", "launch", norwegian=_UNKNOWN)
        with self.db.write() as conn:
            outcome, row = find(conn, _key(launch), self.clock())
        if row is None:
            message = {"used": _USED, "expired": _EXPIRED}.get(outcome, _UNKNOWN)
            raise LaunchRefused(f"{outcome} launch", "launch", norwegian=message)
        return LaunchContext(
            token=str(row.token),
            client_id=str(row.client_id),
            hpr=str(row.hpr),
            patient_id=str(row.patient_id),
            person_number=str(row.person_number),
            basis=Basis(row.basis),
        )


_AGAIN = "Åpne pasientens legemiddelliste på nytt fra journalsystemet."
_UNKNOWN = f"Denne oppstartslenken er ikke gyldig for PLL; ingenting ble åpnet. {_AGAIN}"
_USED = (
    "Denne oppstartslenken er allerede brukt; en lenke åpner PLL bare én gang. "
    f"Ingenting ble åpnet. {_AGAIN}"
)
_EXPIRED = f"Denne oppstartslenken er for gammel (den gjelder i fem minutter). {_AGAIN}"

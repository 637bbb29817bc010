"""FHIR R4 Subscriptions (rest-hook, R4 Subscriptions Backport style) to a patient's list.

A journal system subscribes with criteria ``List?patient=<id>`` (changes to the list) or
``Task?patient=<id>`` (the patient's discrepancy cases), a ``rest-hook`` endpoint and
a secret of its own (extension ``subscription-secret``, at least 32 characters) that signs the
notifications. Subscribing reveals when a patient's list changes, so a subscription is a
standing read of that patient (:attr:`~pll.auth.access.Verb.FOLLOW`): decided and logged when
it is made, and decided again before each notification (:class:`Following`) and when the
patient blocks a health worker (:func:`end_refused`). Once refused, it is ended (status
``off``, the reason in ``error``) and the refusal is logged like any refused read, so the
patient sees it. A subscription hears of what happens after it was made; it is seen
and ended only by the user and client system that made it. Delivery is the dispatcher's
(:mod:`pll.events.dispatcher`); a failing endpoint shows as status ``error`` with the reason.
See https://hl7.org/fhir/R4/subscription.html.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import Connection

from pll.auth.access import Access, Decision, Verb, parse_basis
from pll.domain.errors import Conflict, InvalidInput, NotFound
from pll.domain.model import Author
from pll.events import outbox
from pll.fhir.resources import instant
from pll.fhir.systems import PLL_BASE
from pll.fhir.validate import validate
from pll.services.audit import AuditTrail, actor_json, decide
from pll.services.lists import PLLService
from pll.store import audit_log
from pll.store import repository as repo
from pll.store import subscriptions as store
from pll.store.db import Database
from pll.store.repository import dumps

log = logging.getLogger("pll.events")

SECRET_EXTENSION = f"{PLL_BASE}/StructureDefinition/subscription-secret"
#: Who made the subscription and on what basis, kept in the stored Subscription (never
#: shown) so that access can be decided again for them: ``actor`` as the audit trail writes
#: it (person, organisation, client system), ``basis`` the access basis they stated.
OWNER_EXTENSION = f"{PLL_BASE}/StructureDefinition/subscription-owner"
_NOT_SHOWN = (SECRET_EXTENSION, OWNER_EXTENSION)
#: The audit record's action for a notification refused to the subscription's owner.
NOTIFY = "notify"
CRITERIA = re.compile(r"(?:List|Task)\?patient=(?:Patient/)?([A-Za-z0-9\-.]{1,64})")
MIN_SECRET = 32
#: each subscription has a worker of its own in the dispatcher
MAX_PER_OWNER = 200


def owner_of(access: Access) -> str:
    who = access.actor.hpr or access.actor.pid or access.actor.name
    return f"{access.client_id or '-'}|{who}"


@dataclass
class Subscriptions:
    service: PLLService

    def create(self, access: Access, resource: Any) -> dict[str, Any]:
        data = validate(resource, "Subscription")
        patient_id, endpoint, secret = _parsed(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            if repo.get_patient(conn, patient_id) is None:
                raise InvalidInput(f"Patient/{patient_id} does not exist.", "Subscription.criteria")
            sid = svc.ids()
            svc.trail.admit(conn, access, Verb.FOLLOW, patient_id, "subscribe", "Subscription", sid)
            if store.active_count(conn, owner_of(access)) >= MAX_PER_OWNER:
                raise Conflict(
                    f"You have {MAX_PER_OWNER} active subscriptions; end one (DELETE) before "
                    "making another.",
                    "Subscription",
                )
            now = svc.clock()
            shown = _shown(data, sid, "active", now)
            store.add(
                conn,
                {
                    "id": sid,
                    "status": "active",
                    "criteria": data["criteria"],
                    "patient_id": patient_id,
                    "endpoint": endpoint,
                    "secret": secret,
                    "owner": owner_of(access),
                    "created_at": now,
                    "updated_at": now,
                    "resource": dumps(_kept(shown, access)),
                },
            )
            # from now on: the subscription's place starts at the end of the outbox
            outbox.place(conn, f"subscription:{sid}", now, start_at_end=True)
            return shown

    def read(self, access: Access, subscription_id: str) -> dict[str, Any]:
        with self.service.db.read() as conn:
            row = self._own(conn, access, subscription_id)
            return _with_state(row)

    def search(self, access: Access) -> list[dict[str, Any]]:
        with self.service.db.read() as conn:
            return [
                _with_state(store.get(conn, r.id)) for r in store.owned_by(conn, owner_of(access))
            ]

    def end(self, access: Access, subscription_id: str) -> dict[str, Any]:
        """End a subscription: it is kept, with status ``off``, and no longer delivered to."""
        svc = self.service
        with svc.db.write() as conn:
            row = self._own(conn, access, subscription_id)
            kept = {**orjson.loads(row.resource), "status": "off"}
            store.end(conn, subscription_id, dumps(kept), svc.clock())
            return _public(kept)

    @staticmethod
    def _own(conn: Any, access: Access, subscription_id: str) -> Any:
        row = store.get(conn, subscription_id)
        if row is None or row.owner != owner_of(access):
            # another's subscription is as unknown as a missing one
            raise NotFound(f"Subscription/{subscription_id} does not exist.", "Subscription.id")
        return row


def _parsed(data: dict[str, Any]) -> tuple[str, str, str]:
    if data.get("end"):
        raise InvalidInput(
            "PLL does not end subscriptions at a time; end one with DELETE "
            "/fhir/Subscription/<id>.",
            "Subscription.end",
        )
    match = CRITERIA.fullmatch(str(data.get("criteria", "")))
    if match is None:
        raise InvalidInput(
            "PLL notifies about one patient's list: criteria must be List?patient=<id> "
            "(changes to the list) or Task?patient=<id> (its discrepancy cases).",
            "Subscription.criteria",
        )
    channel = data.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise InvalidInput("PLL delivers to rest-hook channels.", "Subscription.channel.type")
    endpoint = str(channel.get("endpoint") or "")
    try:
        url = httpx.URL(endpoint)
    except (httpx.InvalidURL, ValueError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise InvalidInput(
            "channel.endpoint must be an http(s) URL.", "Subscription.channel.endpoint"
        )
    if channel.get("payload") not in (None, "application/fhir+json", "application/json"):
        raise InvalidInput(
            "Notifications are FHIR JSON: channel.payload application/fhir+json.",
            "Subscription.channel.payload",
        )
    secret = next(
        (
            str(e.get("valueString"))
            for e in data.get("extension") or []
            if e.get("url") == SECRET_EXTENSION and e.get("valueString")
        ),
        "",
    )
    if len(secret) < MIN_SECRET:
        raise InvalidInput(
            f"Give a secret of at least {MIN_SECRET} characters in the extension "
            f"{SECRET_EXTENSION}; notifications are signed with it (X-PLL-Signature).",
            "Subscription.extension",
        )
    return match.group(1), endpoint, secret


def _shown(data: dict[str, Any], sid: str, status: str, now: Any) -> dict[str, Any]:
    """The Subscription as PLL shows it: never with its secret."""
    shown = {k: v for k, v in data.items() if k not in ("id", "meta", "text", "extension")}
    extensions = [e for e in data.get("extension") or [] if e.get("url") not in _NOT_SHOWN]
    if extensions:
        shown["extension"] = extensions
    shown.update(
        {
            "resourceType": "Subscription",
            "id": sid,
            "meta": {"lastUpdated": instant(now)},
            "status": status,
        }
    )
    return shown


def _with_state(row: Any) -> dict[str, Any]:
    shown = _public(orjson.loads(row.resource))
    if row.status == "active" and row.last_error:
        shown["status"] = "error"
        shown["error"] = f"{row.last_error} (attempt {row.attempts}; retried with back-off)"
        if getattr(row, "technical_case", None):
            # the failures have lasted long enough for PLL to tell the client's operator
            shown["error"] += (
                f"; technical case Task/{row.technical_case} is open with the client "
                "system's operator"
            )
    return shown


def _kept(shown: dict[str, Any], access: Access) -> dict[str, Any]:
    """The Subscription as stored: as shown, with its owner for deciding access again."""
    owner: list[dict[str, Any]] = [{"url": "actor", "valueString": actor_json(access)}]
    if access.basis is not None:
        owner.append({"url": "basis", "valueCode": access.basis.value})
    extensions = [*shown.get("extension", []), {"url": OWNER_EXTENSION, "extension": owner}]
    return {**shown, "extension": extensions}


def _public(kept: dict[str, Any]) -> dict[str, Any]:
    """The stored Subscription as its owner sees it (without the owner extension)."""
    shown = {k: v for k, v in kept.items() if k != "extension"}
    extensions = [e for e in kept.get("extension") or [] if e.get("url") not in _NOT_SHOWN]
    if extensions:
        shown["extension"] = extensions
    return shown


# -- deciding again ---------------------------------------------------------------------------


def _owner(conn: Connection, row: Any, kept: dict[str, Any]) -> Access | None:
    """The access the subscription was made with: from the Subscription as stored, or, for
    one stored before the owner was kept there, from the audit record of its making."""
    for extension in kept.get("extension") or []:
        if extension.get("url") == OWNER_EXTENSION:
            parts = {p.get("url"): p for p in extension.get("extension") or []}
            actor = (parts.get("actor") or {}).get("valueString")
            basis = (parts.get("basis") or {}).get("valueCode")
            found = _access(actor, basis) if actor else None
            # one a client sent before PLL kept its own would not name the owner
            if found is not None and owner_of(found) == row.owner:
                return found
    made = store.made_by(conn, row.id, row.patient_id)
    return _access(made.actor, made.basis) if made is not None else None


def _access(actor: str, basis: str | None) -> Access:
    data = orjson.loads(actor)
    client_id = data.pop("client_id", None)
    return Access(Author.from_json(data), parse_basis(basis), client_id)


@dataclass(frozen=True)
class _Verdict:
    """What deciding again found for one active subscription."""

    access: Access | None
    decision: Decision


def _verdict(conn: Connection, row: Any) -> _Verdict:
    """May the owner of this (active) subscription still follow its patient?"""
    access = _owner(conn, row, orjson.loads(row.resource))
    if access is None:
        gone = "PLL no longer knows who made this subscription; make it again."
        return _Verdict(None, Decision(False, gone))
    try:
        _, decision = decide(conn, access, Verb.FOLLOW, row.patient_id)
    except NotFound as exc:
        return _Verdict(None, Decision(False, str(exc)))
    return _Verdict(access, decision)


def _end(
    conn: Connection, trail: Callable[[], AuditTrail], row: Any, verdict: _Verdict, now: datetime
) -> bool:
    """End a refused subscription with the reason, and log the refusal in the patient's
    audit trail, in the caller's transaction; whether it was still active."""
    kept: dict[str, Any] = orjson.loads(row.resource)
    kept.update(
        status="off",
        error=(
            f"Ended by PLL at {instant(now)}: access to Patient/{row.patient_id} was decided "
            f"again and refused, so nothing more is sent. {verdict.decision.message}"
        ),
        meta={**kept.get("meta", {}), "lastUpdated": instant(now)},
    )
    if not store.end_active(conn, row.id, dumps(kept), now):
        return False
    if verdict.access is not None:
        record = trail().record(
            verdict.access, NOTIFY, "Subscription", row.id, row.patient_id, verdict.decision, now
        )
        audit_log.append(conn, record)
    log.info("Subscription/%s ended: %s", row.id, verdict.decision.message)
    return True


def end_refused(conn: Connection, trail: AuditTrail, patient_id: str, now: datetime) -> int:
    """Decide again for every active subscription to this patient, in the caller's
    transaction (the one that made a block), and end those now refused; returns how many."""
    return sum(
        _end(conn, lambda: trail, row, verdict, now)
        for row in store.active_on(conn, patient_id)
        if not (verdict := _verdict(conn, row)).decision.allowed
    )


@dataclass
class Following:
    """Access decided again before each notification (DESIGN §3 rule 5): the dispatcher asks
    :meth:`admits` before it sends one. ``trail`` is asked for only when a refusal is
    logged (the dispatcher's process may have to read the audit key for it)."""

    db: Database
    trail: Callable[[], AuditTrail]
    clock: Callable[[], datetime]

    def admits(self, subscription_id: str) -> bool:
        """Whether the subscription is active and its owner may still follow its patient.
        Refused: it is ended, with the reason, and the refusal logged, in one transaction."""
        with self.db.read() as conn:
            row = store.get(conn, subscription_id)
            if row is None or row.status != "active":
                return False
            if _verdict(conn, row).decision.allowed:
                return True
        with self.db.write() as conn:
            # decided once more where it is ended: the facts may have moved since
            row = store.get(conn, subscription_id)
            if row is None or row.status != "active":
                return False
            verdict = _verdict(conn, row)
            if verdict.decision.allowed:
                return True
            _end(conn, self.trail, row, verdict, self.clock())
        return False

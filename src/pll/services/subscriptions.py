"""FHIR R4 Subscriptions (rest-hook, R4 Subscriptions Backport style) to a patient's list.

A journal system subscribes with criteria ``List?patient=<id>`` (changes to the list) or
``Task?patient=<id>`` (the patient's discrepancy cases), a ``rest-hook`` endpoint and
a secret of its own (extension ``subscription-secret``, at least 32 characters) that signs the
notifications. Subscribing reveals when a patient's list changes, so it is decided and logged
as a read of that patient. A subscription hears of what happens after it was made; it is seen
and ended only by the user and client system that made it. Delivery is the dispatcher's
(:mod:`pll.events.dispatcher`); a failing endpoint shows as status ``error`` with the reason.
See https://hl7.org/fhir/R4/subscription.html.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from pll.auth.access import Access, Verb
from pll.domain.errors import Conflict, InvalidInput, NotFound
from pll.events import outbox
from pll.fhir.resources import instant
from pll.fhir.systems import PLL_BASE
from pll.fhir.validate import validate
from pll.services.lists import PLLService
from pll.store import repository as repo
from pll.store import subscriptions as store
from pll.store.repository import dumps

SECRET_EXTENSION = f"{PLL_BASE}/StructureDefinition/subscription-secret"
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
            svc.trail.admit(conn, access, Verb.READ, patient_id, "subscribe", "Subscription", sid)
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
                    "resource": dumps(shown),
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
            shown = {**orjson.loads(row.resource), "status": "off"}
            store.end(conn, subscription_id, dumps(shown), svc.clock())
            return dict(shown)

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
    extensions = [e for e in data.get("extension") or [] if e.get("url") != SECRET_EXTENSION]
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
    shown: dict[str, Any] = orjson.loads(row.resource)
    if row.status == "active" and row.last_error:
        shown["status"] = "error"
        shown["error"] = f"{row.last_error} (attempt {row.attempts}; retried with back-off)"
    return shown

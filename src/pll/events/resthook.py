"""Delivering events to FHIR rest-hook subscriptions, as the R4 Subscriptions Backport does.

Each notification is a ``history`` Bundle (id = the event id, so a subscriber deduplicates by
it) whose first entry is the backport's ``SubscriptionStatus`` as ``Parameters``, followed by
the changed List (``id-only`` content: its versioned URL). The body is signed with the
subscriber's secret: ``X-PLL-Signature: sha256=<HMAC-SHA256 of the body, hex>``.

A subscription hears what its criteria name: ``List?patient=`` the changes to the list (not
the events about discrepancy cases, which leave the list as it was), ``Task?patient=`` the
patient's discrepancy cases (each report, status change and comment, with the Task's
versioned URL as the focus). Events that say who may see a list (``access-changed``) go to
no subscription: they change no list, and they are the read copy's.

Before each notification the subscription's owner must still be allowed to follow the patient
(``admits``, :class:`pll.services.subscriptions.Following`): a refusal ends the subscription
and nothing is sent (:class:`~pll.events.dispatcher.Ended`).
See https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/channels.html.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from pll.domain.cases import EVENT_PREFIX as CASE_EVENTS
from pll.events.dispatcher import Ended
from pll.events.outbox import ACCESS_CHANGED, Event
from pll.fhir.systems import PLL_BASE

STATUS_PROFILE = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-status-r4"
)
TOPIC = f"{PLL_BASE}/SubscriptionTopic/list-changed"
CASE_TOPIC = f"{PLL_BASE}/SubscriptionTopic/case-changed"
SIGNATURE_HEADER = "X-PLL-Signature"
EVENT_HEADER = "X-PLL-Event-Id"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class DeliveryFailed(Exception):
    """The subscriber did not take the notification."""


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _about_case(event: Event) -> bool:
    return event.kind.startswith(CASE_EVENTS) and "task" in event.payload


def notification(subscription_id: str, base: str, event: Event) -> dict[str, Any]:
    topic, focus = TOPIC, f"List/{event.list_id}/_history/{event.list_version}"
    request, answer = {"method": "PUT", "url": f"List/{event.list_id}"}, "200"
    if _about_case(event):
        topic, focus = CASE_TOPIC, str(event.payload["task"])  # Task/<id>/_history/<v>
        if focus.endswith("/_history/1"):
            request, answer = {"method": "POST", "url": "Task"}, "201"
        else:
            request = {"method": "PUT", "url": focus.split("/_history/")[0]}
    return {
        "resourceType": "Bundle",
        "id": event.event_id,
        "type": "history",
        "timestamp": event.created_at.isoformat(),
        "entry": [
            {
                "fullUrl": f"urn:uuid:{event.event_id}",
                "resource": {
                    "resourceType": "Parameters",
                    "meta": {"profile": [STATUS_PROFILE]},
                    "parameter": [
                        {
                            "name": "subscription",
                            "valueReference": {"reference": f"Subscription/{subscription_id}"},
                        },
                        {"name": "topic", "valueCanonical": topic},
                        {"name": "status", "valueCode": "active"},
                        {"name": "type", "valueCode": "event-notification"},
                        {
                            "name": "notification-event",
                            "part": [
                                {"name": "event-number", "valueString": str(event.id)},
                                {"name": "timestamp", "valueInstant": event.created_at.isoformat()},
                                {"name": "focus", "valueReference": {"reference": focus}},
                            ],
                        },
                    ],
                },
                "request": {"method": "GET", "url": f"Subscription/{subscription_id}/$status"},
                "response": {"status": "200"},
            },
            {
                "fullUrl": f"{base}/{focus}",
                "request": request,
                "response": {"status": answer},
            },
        ],
    }


class RestHook:
    """One subscription as a consumer of the outbox."""

    start_at_end = True  # a subscription hears of what happens after it was made

    def __init__(
        self,
        subscription_id: str,
        endpoint: str,
        secret: str,
        patient_id: str | None,
        base: str,
        client: httpx.Client | None = None,
        *,
        resource: str = "List",
        admits: Callable[[], bool] | None = None,
    ) -> None:
        self.name = f"subscription:{subscription_id}"
        self.subscription_id, self.endpoint, self.secret = subscription_id, endpoint, secret
        self.patient_id, self.base = patient_id, base
        #: what the criteria name: List (changes to the list) or Task (discrepancy cases)
        self.resource = resource
        #: asked before each notification: is the subscription still active, and may its
        #: owner still follow the patient? (``None``: not asked, for tests of delivery alone)
        self.admits = admits
        self._client = client
        self._own = client is None

    def deliver(self, event: Event) -> None:
        if self.patient_id is not None and event.patient_id != self.patient_id:
            return  # not what this subscription asked for
        if event.kind == ACCESS_CHANGED:
            return  # who may see the list changed, not the list: for the read copy only
        if _about_case(event) != (self.resource == "Task"):
            return  # a case event for a list subscription, or the other way round
        if self.admits is not None and not self.admits():
            raise Ended(f"Subscription/{self.subscription_id} has ended")
        body = orjson.dumps(notification(self.subscription_id, self.base, event))
        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT)
        try:
            response = self._client.post(
                self.endpoint,
                content=body,
                headers={
                    "Content-Type": "application/fhir+json",
                    SIGNATURE_HEADER: signature(self.secret, body),
                    EVENT_HEADER: event.event_id,
                },
            )
        except httpx.HTTPError as exc:
            # not the network's own words: the subscriber learns no more than that
            raise DeliveryFailed(f"{self.endpoint} could not be reached") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"{self.endpoint} answered {response.status_code}")

    def close(self) -> None:
        if self._own and self._client is not None:
            self._client.close()
            self._client = None

"""Which consumers the dispatcher runs: the active subscriptions, and NATS JetStream when
``PLL_NATS_URL`` is set.

This is where the dispatcher is wired to the services: each subscription's consumer asks
:class:`pll.services.subscriptions.Following` before every notification whether its owner
may still follow the patient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from pll.events.dispatcher import Consumer
from pll.events.jetstream import JetStream
from pll.events.outbox import SUBSCRIPTION_PREFIX
from pll.events.resthook import RestHook
from pll.services.audit import AuditTrail
from pll.services.base import ServiceBase
from pll.services.subscriptions import Following
from pll.services.technical_cases import TechnicalCaseService
from pll.store import subscriptions
from pll.store.db import Database


def consumers(
    db: Database,
    base: str,
    nats_url: str | None,
    trail: AuditTrail,
    *,
    nats_replicas: int | None = None,
) -> Callable[[], list[Consumer]]:
    """A function that lists the consumers as they are now (asked again as the dispatcher
    runs, so new and ended subscriptions are picked up). ``nats_url`` names the NATS server
    or cluster (``PLL_NATS_URL``), ``nats_replicas`` the copies of its stream
    (``PLL_NATS_REPLICAS``; :class:`JetStream`).

    ``trail`` logs the notifications refused because a subscription's owner may no longer
    see the patient (signed with the deployment's audit key, like every other record).
    """
    following = Following(db, lambda: trail, trail.clock)

    def current() -> list[Consumer]:
        with db.read() as conn:
            rows = subscriptions.active(conn)
        out: list[Consumer] = [
            RestHook(
                r.id,
                r.endpoint,
                r.secret,
                r.patient_id,
                base,
                resource=str(r.criteria).split("?", 1)[0],
                admits=functools.partial(following.admits, r.id),
            )
            for r in rows
        ]
        if nats_url:
            out.append(JetStream(nats_url, replicas=nats_replicas))
        return out

    return current


def failing(service: ServiceBase) -> Callable[[str, datetime], None]:
    """What the dispatcher tells of a consumer that keeps failing: a subscription's opens a
    technical case for its client system once it has failed long enough
    (:meth:`TechnicalCaseService.subscription_failing`)."""
    cases = TechnicalCaseService(service)

    def tell(name: str, since: datetime) -> None:
        if name.startswith(SUBSCRIPTION_PREFIX):
            cases.subscription_failing(name.removeprefix(SUBSCRIPTION_PREFIX), since)

    return tell

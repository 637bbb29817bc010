"""Which consumers the dispatcher runs: the active subscriptions, and NATS JetStream when
``PLL_NATS_URL`` is set."""

from __future__ import annotations

from collections.abc import Callable

from pll.events.dispatcher import Consumer
from pll.events.jetstream import JetStream
from pll.events.resthook import RestHook
from pll.store import subscriptions
from pll.store.db import Database


def consumers(db: Database, base: str, nats_url: str | None) -> Callable[[], list[Consumer]]:
    """A function that lists the consumers as they are now (asked again as the dispatcher
    runs, so new and ended subscriptions are picked up)."""

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
            )
            for r in rows
        ]
        if nats_url:
            out.append(JetStream(nats_url))
        return out

    return current

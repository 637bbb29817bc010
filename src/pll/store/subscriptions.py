"""Rows of FHIR Subscriptions. Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from pll.store.schema import consumer, subscription


def add(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(subscription).values(**row))


def get(conn: Connection, subscription_id: str) -> Any:
    """The subscription with its delivery state (the consumer's last error, if any)."""
    return conn.execute(
        select(subscription, consumer.c.last_error, consumer.c.attempts)
        .outerjoin(consumer, consumer.c.name == "subscription:" + subscription.c.id)
        .where(subscription.c.id == subscription_id)
    ).first()


def owned_by(conn: Connection, owner: str) -> Sequence[Any]:
    return conn.execute(
        select(subscription.c.id).where(subscription.c.owner == owner).order_by(subscription.c.id)
    ).all()


def active_count(conn: Connection, owner: str) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                subscription.c.owner == owner, subscription.c.status == "active"
            )
        ).scalar_one()
    )


def active(conn: Connection) -> Sequence[Any]:
    return conn.execute(
        select(subscription).where(subscription.c.status == "active").order_by(subscription.c.id)
    ).all()


def end(conn: Connection, subscription_id: str, resource: str, now: datetime) -> None:
    conn.execute(
        update(subscription)
        .where(subscription.c.id == subscription_id)
        .values(status="off", resource=resource, updated_at=now)
    )

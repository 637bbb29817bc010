"""Rows of FHIR Subscriptions. Every function takes the caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from pll.store.schema import audit_event, consumer, subscription, technical_case


def add(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(subscription).values(**row))


def get(conn: Connection, subscription_id: str, *, lock: bool = False) -> Any:
    """The subscription with its delivery state (the consumer's last error, if any, and the
    technical case PLL opened for its failures while that case is open)."""
    case = (
        select(technical_case.c.id)
        .where(
            technical_case.c.subscription_id == subscription.c.id,
            technical_case.c.status.in_(["open", "in-progress"]),
        )
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            subscription,
            consumer.c.last_error,
            consumer.c.attempts,
            case.label("technical_case"),
        )
        .outerjoin(consumer, consumer.c.name == "subscription:" + subscription.c.id)
        .where(subscription.c.id == subscription_id)
    )
    if lock:
        query = query.with_for_update(of=subscription)
    return conn.execute(query).first()


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


def active_on(conn: Connection, patient_id: str) -> Sequence[Any]:
    """The active subscriptions to one patient (few: each is one owner's standing read)."""
    return conn.execute(
        select(subscription)
        .where(subscription.c.patient_id == patient_id, subscription.c.status == "active")
        .order_by(subscription.c.id)
    ).all()


def made_by(conn: Connection, subscription_id: str, patient_id: str) -> Any:
    """``(actor, basis)`` of the admitted access that made the subscription, from the audit
    trail: who owns one stored before the owner was kept in the Subscription itself."""
    return conn.execute(
        select(audit_event.c.actor, audit_event.c.basis)
        .where(
            audit_event.c.patient_id == patient_id,
            audit_event.c.resource_type == "Subscription",
            audit_event.c.resource_id == subscription_id,
            audit_event.c.action == "subscribe",
            audit_event.c.outcome == "0",
        )
        .order_by(audit_event.c.id)
        .limit(1)
    ).first()


def end(conn: Connection, subscription_id: str, resource: str, now: datetime) -> None:
    conn.execute(
        update(subscription)
        .where(subscription.c.id == subscription_id)
        .values(status="off", resource=resource, updated_at=now)
    )


def end_active(conn: Connection, subscription_id: str, resource: str, now: datetime) -> bool:
    """End the subscription if it is still active; whether this call ended it (so two
    dispatchers that both find it refused end it, and log it, once)."""
    done = conn.execute(
        update(subscription)
        .where(subscription.c.id == subscription_id, subscription.c.status == "active")
        .values(status="off", resource=resource, updated_at=now)
    )
    return done.rowcount == 1

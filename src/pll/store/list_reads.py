"""The read paths' lists: the current List or list document as stored text, and a list's
versions. Every function takes the caller's open transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, and_, bindparam, func, select

from pll.store.schema import patient, pll, pll_version

#: The List at the list's current version: its version row, where it is stored once
#: (migration 0028); the stored document holds it too, inside the Bundle.
CURRENT_LIST = (
    select(pll_version.c.list_json)
    .where(pll_version.c.list_id == pll.c.id, pll_version.c.version == pll.c.version)
    .scalar_subquery()
)


# The read path's statements are built once: constructing a statement costs more than
# running it (DESIGN §6: a read is one keyed lookup plus its audit row).
def _document_query(key: str, column: str) -> Select[Any]:
    wanted = (pll.c.id, pll.c.patient_id, pll.c.version, pll.c.updated_at, pll.c.expires_at)
    text = pll.c.document if column == "document" else CURRENT_LIST
    query = select(*wanted, text.label("text"), patient.c.identifier_value).join(
        patient, patient.c.id == pll.c.patient_id
    )
    if key == "list":
        return query.where(pll.c.id == bindparam("key"))
    if key == "patient":
        return query.where(pll.c.patient_id == bindparam("key"))
    return query.where(
        patient.c.identifier_system == bindparam("system"),
        patient.c.identifier_value == bindparam("key"),
    )


_DOCUMENT = {
    (key, column): _document_query(key, column)
    for key in ("list", "patient", "identifier")
    for column in ("list_json", "document")
}


def list_document(
    conn: Connection, key: str, value: str, *, document: bool, system: str | None = None
) -> Row[Any] | None:
    """The current List or list document as stored text, by list id, patient id or the
    patient's identifier (``key`` list/patient/identifier): one keyed lookup, nothing parsed,
    only the one text column asked for."""
    query = _DOCUMENT[(key, "document" if document else "list_json")]
    params = {"key": value, "system": system} if key == "identifier" else {"key": value}
    return conn.execute(query, params).first()


def list_version_row(conn: Connection, list_id: str, version: int) -> Row[Any] | None:
    return conn.execute(
        select(pll_version).where(
            pll_version.c.list_id == list_id, pll_version.c.version == version
        )
    ).first()


def list_versions(
    conn: Connection, list_id: str, limit: int, offset: int, upto: int
) -> tuple[int, Sequence[Row[Any]]]:
    """A page of a list's versions up to ``upto``, newest first; pages stay put while the
    list moves on, because later versions are outside ``upto``."""
    where = and_(pll_version.c.list_id == list_id, pll_version.c.version <= upto)
    total = conn.execute(select(func.count()).select_from(pll_version).where(where)).scalar_one()
    rows = conn.execute(
        select(pll_version)
        .where(where)
        .order_by(pll_version.c.version.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows


def overridden_versions(
    conn: Connection, list_id: str, low: int, high: int, limit: int
) -> Sequence[Row[Any]]:
    """The versions in ``low..high`` that overrode findings, newest first, at most ``limit``:
    ``(version, recorded_at, author, override)``."""
    rows = conn.execute(
        select(
            pll_version.c.version,
            pll_version.c.recorded_at,
            pll_version.c.author,
            pll_version.c.override,
        )
        .where(
            pll_version.c.list_id == list_id,
            pll_version.c.version.between(low, high),
            pll_version.c.override.is_not(None),
        )
        .order_by(pll_version.c.version.desc())
        .limit(limit)
    ).all()
    return cast("Sequence[Row[Any]]", rows)

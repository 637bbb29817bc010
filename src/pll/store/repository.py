"""Reading and writing PLL rows. Every function takes the caller's open transaction.

The write path loads a list *aggregate*: the list row (locked), the entries shown on the
list, the prescriptions in use, and any extra rows a request names, so that the domain can
check its rules on everything that matters without loading years of history.

The patients' rows are read and written here. The rest is kept by use case, and named here
too, so callers use ``pll.store.repository`` whichever module holds a function:

- :mod:`pll.store.list_rows`: the list aggregate and its rows, and how stored JSON is
  written and read back;
- :mod:`pll.store.list_writes`: an accepted change's list version, resource versions and
  outgoing event;
- :mod:`pll.store.list_reads`: the stored list documents and a list's versions, for the read
  paths;
- :mod:`pll.store.resource_history`: a resource's current row, versions and provenance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from pll.store.list_reads import list_document, list_version_row, list_versions, overridden_versions
from pll.store.list_rows import (
    all_entries,
    all_prescriptions,
    author_of,
    coded_entries,
    content_of,
    dumps,
    flagged_lists,
    list_exists_for,
    list_row,
    load_list,
    pause_of,
)
from pll.store.list_writes import (
    add_event,
    add_patient_event,
    insert_list,
    save_documents,
    save_list,
    save_version,
)
from pll.store.resource_history import (
    RESOURCE_TABLES,
    list_of,
    provenance_rows,
    resource_row,
    resource_version,
    resource_versions,
    resources_for_list,
    touched_between,
    versions_until,
)
from pll.store.schema import patient

__all__ = [
    "RESOURCE_TABLES",
    "add_event",
    "add_patient_event",
    "all_entries",
    "all_prescriptions",
    "author_of",
    "coded_entries",
    "content_of",
    "dumps",
    "find_patient",
    "flagged_lists",
    "get_patient",
    "insert_list",
    "insert_patient",
    "list_document",
    "list_exists_for",
    "list_of",
    "list_row",
    "list_version_row",
    "list_versions",
    "load_list",
    "overridden_versions",
    "pause_of",
    "provenance_rows",
    "resource_row",
    "resource_version",
    "resource_versions",
    "resources_for_list",
    "save_documents",
    "save_list",
    "save_version",
    "touched_between",
    "versions_until",
]


# -- patients ------------------------------------------------------------------------------


def find_patient(conn: Connection, system: str, value: str) -> Row[Any] | None:
    return conn.execute(
        select(patient).where(
            patient.c.identifier_system == system, patient.c.identifier_value == value
        )
    ).first()


def get_patient(conn: Connection, patient_id: str) -> Row[Any] | None:
    return conn.execute(select(patient).where(patient.c.id == patient_id)).first()


def insert_patient(
    conn: Connection, pid: str, system: str, value: str, now: datetime, resource: str
) -> None:
    conn.execute(
        insert(patient).values(
            id=pid,
            identifier_system=system,
            identifier_value=value,
            version=1,
            created_at=now,
            updated_at=now,
            resource=resource,
        )
    )

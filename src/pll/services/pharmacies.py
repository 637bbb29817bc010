"""The pharmacies a doctor may choose as a patient's multidose pharmacy (M27): those of the
organisation register (``pll stats organisations``, actor type ``apotek``)."""

from __future__ import annotations

from pll.domain.model import Pharmacy
from pll.store import stats as store
from pll.store.db import Database

#: at most this many are offered (a national register has under 1,000 pharmacies)
LIMIT = 1000


def pharmacies(db: Database, limit: int = LIMIT) -> list[Pharmacy]:
    """The registered pharmacies, by name. Register data, not patient data: no access is
    logged."""
    with db.read() as conn:
        rows = store.organisations_of_type(conn, "apotek", limit)
    return [Pharmacy(r.name, r.id, r.her) for r in rows]

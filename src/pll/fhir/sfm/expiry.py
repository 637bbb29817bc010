"""An expired prescription in a ``$getMedication`` answer.

SFM shows a prescription's validity end as ``expirationdate`` in ``sfm-reseptamendment``
(PLL writes it for every prescription, also one stored before PLL stated its validity, which
is valid one year from issue); past that date it is no longer dispensable, so it has no
``rfstatus`` *E* (Ekspederbar) or *U* (Under ekspedering), and the statement carries PLL's
expired marker (:data:`pll.fhir.expiry.EXT_EXPIRED`) beside SFM's own extensions.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pll.domain.model import Prescription
from pll.domain.prescriptions import end_of, is_expired
from pll.fhir.expiry import EXT_EXPIRED
from pll.fhir.sfm import codes as c


def shown(amendment: dict[str, Any], rx: Prescription, today: date) -> dict[str, Any] | None:
    """Write the validity end into ``amendment`` and, when the prescription has expired by
    ``today``, take away its dispensable status; returns the expired marker then."""
    end = end_of(rx.content, rx.recorded)
    if end is None:
        return None
    subs = amendment.setdefault("extension", [])
    if not c.first(amendment, "expirationdate"):
        subs.append({"url": "expirationdate", "valueDate": end.isoformat()})
    if not is_expired(rx.content, today, rx.recorded):
        return None
    status = c.code_of(c.sub_value(c.first(amendment, "rfstatus"), "status"), c.RF_STATUS)
    if status in ("E", "U"):
        subs[:] = [e for e in subs if e.get("url") != "rfstatus"]
    return {"url": EXT_EXPIRED, "valueDate": end.isoformat()}

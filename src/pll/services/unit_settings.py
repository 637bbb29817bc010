"""A care unit's settings (issue 17, docs/administration.md "Unit settings"): set and read
them, and find the settings that apply to a schedule or a recording.

Setting opens one transaction: the caller must be a nurse or doctor acting for the unit
(:func:`pll.domain.administration.unit_settings.acting_for`), the unit must be known to PLL
(it has registered a patient). A refusal is logged as a refused access and writes nothing
else; accepted settings are written with their audit record, as a care-unit registration
is (who, when, which unit). Settings are no patient's data: reading them is not logged, and
any health worker may read them (a care system shows its unit's rounds); a patient may not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection

from pll.auth.access import Access, Decision
from pll.domain.administration import OSLO
from pll.domain.administration import unit_settings as rules
from pll.domain.administration.unit_settings import UnitSettings
from pll.domain.errors import Forbidden, InvalidInput, NotFound
from pll.fhir import unit_settings as fhir_us
from pll.services.audit import Refused
from pll.services.lists import PLLService
from pll.store import audit_log
from pll.store import unit_settings as store

#: The audit action of setting a unit's settings.
ACTION = "care-unit-settings"
_R = "Organization"


@dataclass
class UnitSettingsService:
    service: PLLService

    def set(self, access: Access, data: Any) -> dict[str, Any]:
        """Set the unit's settings from the next local day on; the stored settings as
        ``Parameters``. Refused, nothing written: bad input (400), a caller who is not a
        nurse or doctor of the unit (403, logged), a unit PLL does not know (404)."""
        orgnr, times, group_b, where = fhir_us.settings_request(data)
        svc = self.service
        with svc.guard(access), svc.db.write() as conn:
            now = svc.clock()
            try:
                made = rules.make(orgnr, times, group_b, access.actor, now, where["organization"])
            except Forbidden as exc:
                record = svc.trail.record(
                    access, ACTION, _R, orgnr, None, Decision(False, exc.message), now
                )
                raise Refused(
                    exc.message, exc.expression, norwegian=exc.norwegian, record=record
                ) from None
            except InvalidInput as exc:
                slot = (exc.expression or "").removeprefix("slots.")
                raise replace(exc, expression=where.get(slot, exc.expression)) from None
            _known(conn, orgnr)
            store.save(conn, made)
            audit_log.append(
                conn, svc.trail.record(access, ACTION, _R, orgnr, None, Decision(True), now)
            )
            return fhir_us.settings_resource(made)

    def get(self, access: Access, orgnr: str, day: date | None) -> dict[str, Any]:
        """The unit's settings that apply on ``day`` (default: today in Norway), as
        ``Parameters``; the defaults where it has set none. Refused: a patient (403), a unit
        PLL does not know (404)."""
        if access.is_patient:
            raise Forbidden("A care unit's settings are read by health personnel.", "organization")
        svc = self.service
        with svc.db.read() as conn:
            _known(conn, orgnr)
            on = day or svc.clock().astimezone(OSLO).date()
            found = rules.in_force(store.history(conn, orgnr, on), on, orgnr)
            return fhir_us.settings_resource(found)


def _known(conn: Connection, orgnr: str) -> None:
    if not store.unit_known(conn, orgnr):
        raise NotFound(
            f"Care unit {orgnr} is not known to PLL: a unit is known once it has registered "
            "a patient ($care-unit-register).",
            "organization",
        )


def acting_unit(conn: Connection, access: Access, patient_id: str) -> str | None:
    """The care unit whose settings apply to this caller's chart of this patient: the unit
    the caller acts for when the patient is registered there, else none (the defaults)."""
    orgnr = access.actor.org_id
    return orgnr if store.registered_with(conn, patient_id, orgnr) else None


def periods(
    conn: Connection, access: Access, patient_id: str, first: date, last: date
) -> list[tuple[date, date, UnitSettings]]:
    """The days ``first`` .. ``last`` cut where the settings of the caller's unit change
    (one period with the defaults when no unit's settings apply)."""
    orgnr = acting_unit(conn, access, patient_id)
    history = store.history(conn, orgnr, last) if orgnr else []
    return rules.periods(history, first, last, orgnr)


def of_unit(conn: Connection, orgnr: str, day: date) -> UnitSettings:
    """The settings of the unit ``orgnr`` on ``day`` (its chart for every patient it has)."""
    return rules.in_force(store.history(conn, orgnr, day), day, orgnr)


def on_day(conn: Connection, access: Access, patient_id: str, day: date) -> UnitSettings:
    """The settings of the caller's unit on ``day`` (the giver's unit, for a recording)."""
    return periods(conn, access, patient_id, day, day)[0][2]

"""Drug lookup in the catalogue in use (``GET /fhir/Medication``): by name (word prefix, case
and accents ignored), by code (ATC at any level, a Varenr or a FEST id) and by substance.

Names are indexed one word per row (``fest_name``), lower case without accents, so a prefix
is one index range on both databases instead of a scan; the other words of a query filter
that range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pll.catalog.fest import tokens
from pll.domain.errors import InvalidInput, NotFound
from pll.fhir.medication import fest_id, medication
from pll.store import catalog as store
from pll.store.db import Database

KINDS = ("package", "brand", "generic")
_ATC = re.compile(r"[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?")


@dataclass
class Catalogue:
    db: Database

    def search(
        self,
        *,
        name: str | None = None,
        code: str | None = None,
        substance: str | None = None,
        count: int = 50,
    ) -> list[dict[str, Any]]:
        """Medications matching every given parameter (at least one)."""
        if not (name or code or substance):
            raise InvalidInput(
                "Search by name, code or substance.",
                "name",
                norwegian="Skriv et navn, en kode eller et virkestoff å søke etter.",
            )
        for param, value in (("name", name), ("code", code), ("substance", substance)):
            if value is not None and (not value.isprintable() or len(value) > 100):
                raise InvalidInput(
                    f"{param} must be printable text of at most 100 characters.",
                    param,
                    norwegian="Søket må være vanlig tekst på høyst 100 tegn.",
                )
        with self.db.read() as conn:
            version = store.active(conn)
            if version is None:
                return []
            found: dict[str, Any] | None = None
            limit = 2000  # candidates before the other parameters narrow them

            def narrow(rows: Any) -> None:
                nonlocal found
                got = {r.id: r for r in rows}
                found = got if found is None else {k: v for k, v in found.items() if k in got}

            if name:
                words = sorted(tokens(name), key=len, reverse=True)
                if not words:
                    raise InvalidInput(
                        "The name has no letters or digits to search for.",
                        "name",
                        norwegian=(
                            f"«{name[:40]}» har ingen bokstaver eller sifre å søke etter; "
                            "skriv navnet eller virkestoffet."
                        ),
                    )
                rows = store.search(conn, version, words[0], limit, KINDS)
                narrow(r for r in rows if _all_words(r.name, words[1:]))
            if code:
                value = code.rpartition("|")[2].strip()
                if _ATC.fullmatch(value.upper()):
                    narrow(store.by_atc(conn, version, value.upper(), limit, KINDS))
                else:
                    narrow(store.drugs_by_code(conn, version, [value]).values())
            if substance:
                ids = store.substances_named(conn, version, substance.casefold()) or [substance]
                narrow(store.by_substance(conn, version, ids, limit, KINDS))
            drugs = sorted((found or {}).values(), key=lambda r: (r.name, r.id))[:count]
            ingredients = store.substances_of(conn, version, [d.id for d in drugs])
            return [medication(d, ingredients.get(d.id, [])) for d in drugs]

    def read(self, drug_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            version = store.active(conn)
            row = store.drug(conn, version, fest_id(drug_id)) if version is not None else None
            if version is None or row is None:
                raise NotFound(
                    f"Medication/{drug_id} does not exist in the catalogue in use.", "Medication.id"
                )
            return medication(row, store.substances_of(conn, version, [row.id])[row.id])


def _all_words(name: str, words: list[str]) -> bool:
    have = tokens(name)
    return all(any(h.startswith(w) for h in have) for w in words)

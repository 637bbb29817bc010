"""Drug lookup in the catalogue in use (``GET /fhir/Medication``, :meth:`Catalogue.search`):
by name (each typed word begins a word of the name, case and accents ignored, ranked as
:mod:`pll.catalog.ranking` says), by code (ATC at any level, a Varenr or a FEST id) and by
substance; and drug search as a doctor types it (:meth:`Catalogue.find`, the prescribing
page), ranked the same way and grouped.

Names are indexed one word per row (``fest_name``), lower case without accents, so a prefix
is one index range on both databases instead of a scan; the other words of a query filter
that range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pll.catalog import ranking
from pll.catalog.fest import words
from pll.domain.errors import InvalidInput, NotFound
from pll.fhir.medication import fest_id, medication
from pll.fhir.medication import resource_id as fhir_id
from pll.services.decision_support import named
from pll.store import catalog as store
from pll.store.db import Database

KINDS = ("package", "brand", "generic")
#: How many name-index rows one typed word may read, and how many groups and packages a
#: search shows: bounded work per search whatever is typed.
CANDIDATES = 400
GROUPS = 25
PACKAGES = 12
#: How many drugs one ``GET /fhir/Medication`` reads per parameter, ranks and pages through.
MATCHES = 2000
#: Ties within a rank: brands, then generics, then packages.
_KIND_ORDER = {"brand": 0, "generic": 1, "package": 2}


@dataclass(frozen=True)
class Choice:
    """A drug or package a doctor can pick, as the search shows it."""

    id: str  #: the Medication id
    kind: str  #: package, brand or generic
    name: str
    form: str
    strength: str
    pack: str
    code: str  #: a package's Varenr, else the FEST id


@dataclass
class Group:
    """A brand (or generic) and, under it, its packages."""

    drug: Choice
    packages: list[Choice] = field(default_factory=list)


@dataclass
class Found:
    groups: list[Group]
    #: the search read as far as it may: more drugs may match; the doctor should type more
    more: bool = False


@dataclass
class Matches:
    """One page of a Medication search, best first."""

    resources: list[dict[str, Any]]
    #: how many drugs matched among those the search read
    total: int
    #: the parameter that named more drugs than a search reads (:data:`MATCHES`), if one
    #: did: drugs past those read are neither counted nor ranked
    more: str | None = None


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
        """The first ``count`` Medications of :meth:`search_page`."""
        return self.search_page(name=name, code=code, substance=substance, count=count).resources

    def search_page(
        self,
        *,
        name: str | None = None,
        code: str | None = None,
        substance: str | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> Matches:
        """Medications matching every given parameter (at least one), ``count`` from
        ``offset``. With a name, best first as :mod:`pll.catalog.ranking` ranks it (the
        prescribing page's order), then brands, generics, packages, by name; without one, by
        name. ``%`` and ``_`` are characters, not wildcards. Raises :class:`InvalidInput`
        naming the parameter that cannot be searched."""
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
        typed = words(name) if name else []
        if name and not typed:
            raise InvalidInput(
                "The name has no letters or digits to search for.",
                "name",
                norwegian=(
                    f"«{name[:40]}» har ingen bokstaver eller sifre å søke etter; "
                    "skriv navnet eller virkestoffet."
                ),
            )
        with self.db.read() as conn:
            version = store.active(conn)
            if version is None:
                return Matches([], 0)
            found: dict[str, Any] | None = None
            more: str | None = None

            def narrow(rows: Any) -> None:
                nonlocal found
                got = {r.id: r for r in rows}
                found = got if found is None else {k: v for k, v in found.items() if k in got}

            rank: dict[str, tuple[int, int]] = {}
            if typed:
                rows, cut = self._candidates(conn, version, typed, MATCHES, substances=False)
                more = "name" if cut else None
                ranked = self._ranked(conn, version, typed, rows, prescribable=False)
                rank = {r.id: k for r, k in ranked}
                narrow(r for r, _ in ranked)
            if code:
                value = code.rpartition("|")[2].strip()
                if _ATC.fullmatch(value.upper()):
                    rows = list(store.by_atc(conn, version, value.upper(), MATCHES + 1, KINDS))
                    more = more or ("code" if len(rows) > MATCHES else None)
                    narrow(rows[:MATCHES])
                else:
                    narrow(store.drugs_by_code(conn, version, [value]).values())
            if substance:
                ids = store.substances_named(conn, version, substance.casefold()) or [substance]
                rows = list(store.by_substance(conn, version, ids, MATCHES + 1, KINDS))
                more = more or ("substance" if len(rows) > MATCHES else None)
                narrow(rows[:MATCHES])
            drugs = list((found or {}).values())
            if rank:
                drugs.sort(key=lambda r: _order(r, rank[r.id]))
            else:
                drugs.sort(key=lambda r: (r.name, r.id))
            page = drugs[offset : offset + count]
            ingredients = store.substances_of(conn, version, [d.id for d in page])
            resources = [medication(d, ingredients.get(d.id, [])) for d in page]
            return Matches(resources, len(drugs), more)

    def find(self, query: str) -> Found:
        """Drugs as a doctor types them: brand, substance or ATC code, with or without a
        form and strength ("Paracet 500", "Tab 100", "zopiklon", "N05CF01"). Ranked by
        :mod:`pll.catalog.ranking`; grouped so the doctor picks a drug, then a package (a
        brand's active packages under it). Bounded: each typed word reads at most
        :data:`CANDIDATES` rows of the name index. Raises :class:`InvalidInput` in Norwegian
        on a query that cannot be searched."""
        if len(query) > 100 or not query.isprintable():
            raise InvalidInput("Søket kan være høyst 100 tegn, uten linjeskift.", "q")
        typed = words(query)
        code = query.strip().upper()
        if not typed:
            raise InvalidInput("Skriv minst én bokstav eller ett tall å søke etter.", "q")
        with self.db.read() as conn:
            version = store.active(conn)
            if version is None:
                return Found([])
            if _ATC.fullmatch(code):
                rows = list(store.by_atc(conn, version, code, CANDIDATES, KINDS))
                more = len(rows) >= CANDIDATES
                ranked = [(r, (0, 0)) for r in rows]
            else:
                rows, more = self._candidates(conn, version, typed, CANDIDATES)
                ranked = self._ranked(conn, version, typed, rows)
            return self._grouped(conn, version, ranked, more)

    @staticmethod
    def _candidates(
        conn: Any, version: int, typed: list[str], limit: int, *, substances: bool = True
    ) -> tuple[list[Any], bool]:
        """The drugs the most selective typed word names (its own name, or with
        ``substances`` a substance's), reading at most ``limit`` rows of the name index, and
        whether it named more than that."""
        best: tuple[list[str], bool] | None = None
        for word in sorted(set(typed), key=len, reverse=True):
            hits = store.named(conn, version, word, limit)
            if best is None or len(hits[0]) < len(best[0]):
                best = hits
            if len(best[0]) < limit // 4:
                break  # selective enough; the other words filter these
        ids, more = best or ([], False)
        drugs = store.drugs_by_code(conn, version, ids)
        found = {r.id: r for i in ids if (r := drugs.get(i)) is not None and r.id == i}
        if substances:
            held = [i for i in ids if i not in found]
            for row in store.by_substance(conn, version, held, limit, KINDS):
                found.setdefault(row.id, row)
        return list(found.values()), more

    @staticmethod
    def _ranked(
        conn: Any, version: int, typed: list[str], rows: list[Any], *, prescribable: bool = True
    ) -> list[tuple[Any, tuple[int, int]]]:
        """The rows that match what was typed, with their :func:`ranking.key`. For the
        prescribing page (``prescribable``) a substance's name matches too and packages no
        longer marketed are left out; the FHIR search matches names only and keeps every
        package, since a client may look up a drug already on a list."""
        ingredients = (
            store.substances_of(conn, version, [r.id for r in rows]) if prescribable else {}
        )
        out = []
        for row in rows:
            if prescribable and row.kind == "package" and not row.active:
                continue
            name = words(row.name)
            held = [w for s in ingredients.get(row.id, []) for w in words(s.name)]
            if ranking.matches(typed, name, held):
                out.append((row, ranking.key(typed, name)))
        return out

    @staticmethod
    def _grouped(
        conn: Any, version: int, ranked: list[tuple[Any, tuple[int, int]]], more: bool
    ) -> Found:
        """Brands and generics with their packages under them, best first; a package found
        on its own stands under its brand."""
        ranked.sort(key=lambda x: _order(x[0], x[1]))
        heads: dict[str, Any] = {}
        for row, _ in ranked:
            key = row.brand if row.kind == "package" and row.brand else row.id
            heads.setdefault(key, row if key == row.id else None)
            if len(heads) >= GROUPS:
                break
        missing = [k for k, v in heads.items() if v is None]
        brands = store.drugs_by_code(conn, version, missing)
        for k in missing:
            heads[k] = brands.get(k)
        brand_ids = [k for k, v in heads.items() if v is not None and v.kind == "brand"]
        packages: dict[str, list[Any]] = {}
        for p in store.packages_of(conn, version, brand_ids, GROUPS * PACKAGES):
            packages.setdefault(p.brand, []).append(p)
        strengths = store.strengths_of(conn, version, [k for k, v in heads.items() if v])
        groups = []
        for key, head in heads.items():
            if head is None:  # a package whose brand the catalogue lacks: it stands alone
                lone = next(r for r, _ in ranked if r.brand == key)
                groups.append(Group(_choice(lone, strengths.get(key, ""))))
                continue
            strength = strengths.get(head.id, "")
            groups.append(
                Group(
                    _choice(head, strength),
                    [_choice(p, strength) for p in packages.get(head.id, [])[:PACKAGES]],
                )
            )
        return Found(groups, more)

    def form_of(self, concept: dict[str, Any]) -> str | None:
        """The FEST pharmaceutical form ("Tablett", "Krem") of the medicine a
        ``medicationCodeableConcept`` names, as decision support's dose checks read it: by
        the concept's FEST code (:func:`~pll.services.decision_support.named`) in the
        catalogue in use. ``None`` for a medicine named by text or ATC only, or one the
        catalogue does not have: any unit is then accepted. Every page that doses a
        medicine on the list offers (and checks) the units of this form."""
        fest = named("", {"medicationCodeableConcept": concept}).fest
        if fest is None:
            return None
        with self.db.read() as conn:
            version = store.active(conn)
            row = store.drugs_by_code(conn, version, [fest]).get(fest) if version else None
        return str(row.form) if row is not None and row.form else None

    def read(self, drug_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            version = store.active(conn)
            row = store.drug(conn, version, fest_id(drug_id)) if version is not None else None
            if version is None or row is None:
                raise NotFound(
                    f"Medication/{drug_id} does not exist in the catalogue in use.", "Medication.id"
                )
            return medication(row, store.substances_of(conn, version, [row.id])[row.id])


def _choice(row: Any, strength: str) -> Choice:
    return Choice(
        id=fhir_id(row.id),
        kind=row.kind,
        name=row.name,
        form=row.form or "",
        strength=strength,
        pack=row.pack or "",
        code=row.code,
    )


def _order(row: Any, rank: tuple[int, int]) -> tuple[tuple[int, int], int, str, str]:
    """The one order of search results: the rank, then brands, generics, packages, by name."""
    return rank, _KIND_ORDER[row.kind], row.name, row.id

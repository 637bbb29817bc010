"""Rows of the drug catalogue (FEST): loading a new version beside the active one, switching,
and the lookups decision support and drug search make. Every function takes the caller's
open transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from pll.store.schema import (
    fest_catalog,
    fest_drug,
    fest_drug_substance,
    fest_interaction,
    fest_interaction_atc,
    fest_name,
    fest_not_assessed,
    fest_ref,
    fest_strength,
    fest_substance,
)

VERSIONED: tuple[Table, ...] = (
    fest_drug,
    fest_substance,
    fest_strength,
    fest_ref,
    fest_drug_substance,
    fest_interaction,
    fest_interaction_atc,
    fest_not_assessed,
    fest_name,
)


_ACTIVE = select(fest_catalog.c.version).where(fest_catalog.c.status == "active")


def active(conn: Connection) -> int | None:
    """The catalogue version in use, if any has been imported."""
    row = conn.execute(_ACTIVE).first()
    return int(row[0]) if row else None


#: An import that has been loading this long is taken to have died (its process killed).
STALE = timedelta(hours=2)


def begin(conn: Connection, source: str, now: datetime) -> int | None:
    """Start loading a new version; ``None`` while another import is loading one. A loading
    version older than :data:`STALE` is an import that died, and is cleared first. (At most
    one version can be loading: a partial unique index on the status says so.)"""
    for row in conn.execute(
        select(fest_catalog.c.version, fest_catalog.c.imported_at).where(
            fest_catalog.c.status == "loading"
        )
    ):
        if now - row.imported_at < STALE:
            return None
        drop(conn, int(row.version))
    for row in conn.execute(
        select(fest_catalog.c.version).where(fest_catalog.c.status == "retired")
    ):
        drop(conn, int(row.version))
    newest = conn.execute(select(func.max(fest_catalog.c.version))).scalar()
    version = int(newest or 0) + 1
    conn.execute(
        insert(fest_catalog).values(
            version=version, status="loading", imported_at=now, source=source, counts="{}"
        )
    )
    return version


def add(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table), list(rows))


def activate(
    conn: Connection, version: int, extracted_at: datetime | None, counts: str
) -> int | None:
    """Make ``version`` the catalogue in use; returns the version it replaces."""
    previous = active(conn)
    if previous is not None:
        conn.execute(
            update(fest_catalog).where(fest_catalog.c.version == previous).values(status="retired")
        )
    conn.execute(
        update(fest_catalog)
        .where(fest_catalog.c.version == version)
        .values(status="active", extracted_at=extracted_at, counts=counts)
    )
    return previous


def analyze(conn: Connection) -> None:
    """Refresh the planner's statistics on the catalogue's tables: without them SQLite scans
    a whole version for an interaction lookup instead of using the ATC index."""
    for table in VERSIONED:
        conn.execute(text(f"ANALYZE {table.name}"))


def drop(conn: Connection, version: int) -> None:
    """Remove a version's rows (a retired or failed one)."""
    for table in VERSIONED:
        conn.execute(delete(table).where(table.c.catalog == version))
    conn.execute(delete(fest_catalog).where(fest_catalog.c.version == version))


def catalogue(conn: Connection, version: int) -> Row[Any] | None:
    return conn.execute(select(fest_catalog).where(fest_catalog.c.version == version)).first()


# -- lookups --------------------------------------------------------------------------------


def drugs_by_code(conn: Connection, version: int, codes: Iterable[str]) -> dict[str, Row[Any]]:
    """Drugs by the code an entry carries: a package's Varenr, or any drug's FEST id."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = conn.execute(
        select(fest_drug).where(
            fest_drug.c.catalog == version,
            or_(fest_drug.c.code.in_(wanted), fest_drug.c.id.in_(wanted)),
        )
    ).all()
    found = {r.id: r for r in rows}
    found |= {r.code: r for r in rows}
    return found


def drug(conn: Connection, version: int, drug_id: str) -> Row[Any] | None:
    return conn.execute(
        select(fest_drug).where(fest_drug.c.catalog == version, fest_drug.c.id == drug_id)
    ).first()


def substances_of(
    conn: Connection, version: int, drug_ids: Iterable[str]
) -> dict[str, list[Row[Any]]]:
    wanted = sorted(set(drug_ids))
    out: dict[str, list[Row[Any]]] = {d: [] for d in wanted}
    if not wanted:
        return out
    rows = conn.execute(
        select(fest_drug_substance.c.drug, fest_substance)
        .join(
            fest_substance,
            (fest_substance.c.catalog == fest_drug_substance.c.catalog)
            & (fest_substance.c.id == fest_drug_substance.c.substance),
        )
        .where(fest_drug_substance.c.catalog == version, fest_drug_substance.c.drug.in_(wanted))
    ).all()
    for row in rows:
        out[row.drug].append(row)
    return out


def prefixes(atc: str) -> list[str]:
    """The ATC code at each of its levels: N02BE01 → N, N02, N02B, N02BE, N02BE01."""
    return [atc[:n] for n in (1, 3, 4, 5, 7) if n <= len(atc)]


def interactions(
    conn: Connection, version: int, names: Iterable[str]
) -> list[tuple[Row[Any], list[Row[Any]]]]:
    """Every interaction whose two substance groups both name one of ``names`` (ATC codes at
    any level, ``@`` + substance id; see :func:`pll.domain.checks.codes`), with both groups:
    the candidates for a pair on one list. Asking for both sides at once matters: a class
    named at level 4 is in many interactions, nearly all with drugs that are not on it."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    a = fest_interaction_atc.alias("a")
    b = fest_interaction_atc.alias("b")
    ids = [
        r[0]
        for r in conn.execute(
            select(a.c.interaction)
            .join(
                b,
                (b.c.catalog == a.c.catalog)
                & (b.c.interaction == a.c.interaction)
                & (b.c.side != a.c.side),
            )
            .where(a.c.catalog == version, a.c.atc.in_(wanted), b.c.atc.in_(wanted))
            .distinct()
        )
    ]
    if not ids:
        return []
    rules = conn.execute(
        select(fest_interaction).where(
            fest_interaction.c.catalog == version, fest_interaction.c.id.in_(ids)
        )
    ).all()
    sides: dict[str, list[Row[Any]]] = {i: [] for i in ids}
    for row in conn.execute(
        select(fest_interaction_atc).where(
            fest_interaction_atc.c.catalog == version, fest_interaction_atc.c.interaction.in_(ids)
        )
    ):
        sides[row.interaction].append(row)
    return [(rule, sides[rule.id]) for rule in rules]


def not_assessed(conn: Connection, version: int, atcs: Iterable[str]) -> set[str]:
    """Which of these ATC codes FEST marks as not assessed for interactions (at any level)."""
    codes = set(atcs)
    wanted = sorted({p for atc in codes for p in prefixes(atc)})
    if not wanted:
        return set()
    marked = {
        r[0]
        for r in conn.execute(
            select(fest_not_assessed.c.atc).where(
                fest_not_assessed.c.catalog == version, fest_not_assessed.c.atc.in_(wanted)
            )
        )
    }
    return {atc for atc in codes if any(p in marked for p in prefixes(atc))}


def search(
    conn: Connection, version: int, token: str, limit: int, kinds: Sequence[str]
) -> Sequence[Row[Any]]:
    """Drugs with a word of their name starting with ``token`` (normalised), by name."""
    hits = (
        select(fest_name.c.drug)
        .where(
            fest_name.c.catalog == version,
            fest_name.c.token >= token,
            fest_name.c.token < token + "\uffff",
        )
        .distinct()
        .subquery()
    )
    return conn.execute(
        select(fest_drug)
        .join(hits, hits.c.drug == fest_drug.c.id)
        .where(fest_drug.c.catalog == version, fest_drug.c.kind.in_(kinds))
        .order_by(fest_drug.c.name, fest_drug.c.id)
        .limit(limit)
    ).all()


def named(conn: Connection, version: int, word: str, limit: int) -> tuple[list[str], bool]:
    """Up to ``limit`` ids of drugs and substances with a word of their name starting with
    ``word`` (normalised): one range of the name index, read no further than ``limit`` rows;
    and whether the range holds more rows than that. The word is compared as it is: ``%``
    and ``_`` are characters, not wildcards."""
    rows = conn.execute(
        select(fest_name.c.drug)
        .where(
            fest_name.c.catalog == version,
            fest_name.c.token >= word,
            fest_name.c.token < word + "\uffff",
        )
        .limit(limit + 1)
    ).all()
    return list(dict.fromkeys(r[0] for r in rows[:limit])), len(rows) > limit


def packages_of(
    conn: Connection, version: int, brand_ids: Iterable[str], limit: int
) -> list[Row[Any]]:
    """The active packages of these brands (by the brand index), at most ``limit``."""
    wanted = sorted(set(brand_ids))
    if not wanted:
        return []
    return list(
        conn.execute(
            select(fest_drug)
            .where(
                fest_drug.c.catalog == version,
                fest_drug.c.brand.in_(wanted),
                fest_drug.c.kind == "package",
                fest_drug.c.active.is_(True),
            )
            .order_by(fest_drug.c.pack_amount, fest_drug.c.code)
            .limit(limit)
        ).all()
    )


def strengths_of(conn: Connection, version: int, drug_ids: Iterable[str]) -> dict[str, str]:
    """Each brand's or generic's strength as a doctor reads it ("5 mg", "0,1 mg/dose";
    a combination "5 mg/10 mg"); drugs that state none are left out."""
    wanted = sorted(set(drug_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        select(fest_ref.c.drug, fest_strength.c.label)
        .join(
            fest_strength,
            (fest_strength.c.catalog == fest_ref.c.catalog)
            & (fest_strength.c.id == fest_ref.c.ref),
        )
        .where(fest_ref.c.catalog == version, fest_ref.c.drug.in_(wanted))
        .order_by(fest_ref.c.drug, fest_ref.c.ref)
    )
    out: dict[str, list[str]] = {}
    for drug_id, label in rows:
        if label:
            out.setdefault(drug_id, []).append(label)
    return {d: "/".join(labels) for d, labels in out.items()}


def by_atc(
    conn: Connection, version: int, atc: str, limit: int, kinds: Sequence[str]
) -> Sequence[Row[Any]]:
    return conn.execute(
        select(fest_drug)
        .where(
            fest_drug.c.catalog == version,
            fest_drug.c.atc >= atc,
            fest_drug.c.atc < atc + "\uffff",
            fest_drug.c.kind.in_(kinds),
        )
        .order_by(fest_drug.c.name, fest_drug.c.id)
        .limit(limit)
    ).all()


def by_substance(
    conn: Connection, version: int, substance_ids: Iterable[str], limit: int, kinds: Sequence[str]
) -> Sequence[Row[Any]]:
    wanted = sorted(set(substance_ids))
    if not wanted:
        return []
    drugs = (
        select(fest_drug_substance.c.drug)
        .where(
            fest_drug_substance.c.catalog == version,
            fest_drug_substance.c.substance.in_(wanted),
        )
        .distinct()
        .subquery()
    )
    return conn.execute(
        select(fest_drug)
        .join(drugs, drugs.c.drug == fest_drug.c.id)
        .where(fest_drug.c.catalog == version, fest_drug.c.kind.in_(kinds))
        .order_by(fest_drug.c.name, fest_drug.c.id)
        .limit(limit)
    ).all()


def substances_named(conn: Connection, version: int, token: str) -> list[str]:
    pattern = token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = conn.execute(
        select(fest_substance.c.id).where(
            fest_substance.c.catalog == version,
            func.lower(fest_substance.c.name).like(pattern, escape="\\"),
        )
    )
    return [r[0] for r in rows]


# Resolution over the whole extract: a strength stands for its substance; a direct
# RefVirkestoff is the substance itself; a package has its brand's substances.
_RESOLVE_REFS = """
INSERT INTO fest_drug_substance (catalog, drug, substance)
SELECT DISTINCT r.catalog, r.drug, COALESCE(s.substance, r.ref)
FROM fest_ref r
LEFT JOIN fest_strength s ON s.catalog = r.catalog AND s.id = r.ref
WHERE r.catalog = :v
"""
_RESOLVE_PACKAGES = """
INSERT INTO fest_drug_substance (catalog, drug, substance)
SELECT DISTINCT p.catalog, p.id, ds.substance
FROM fest_drug p
JOIN fest_drug_substance ds ON ds.catalog = p.catalog AND ds.drug = p.brand
WHERE p.catalog = :v AND p.kind = 'package'
"""
_MISSING_STRENGTH_SUBSTANCE = """
SELECT st.id, st.substance FROM fest_strength st
WHERE st.catalog = :v AND NOT EXISTS (
    SELECT 1 FROM fest_substance s WHERE s.catalog = st.catalog AND s.id = st.substance)
LIMIT 3
"""
_MISSING_SUBSTANCE = """
SELECT ds.drug, ds.substance FROM fest_drug_substance ds
WHERE ds.catalog = :v AND NOT EXISTS (
    SELECT 1 FROM fest_substance s WHERE s.catalog = ds.catalog AND s.id = ds.substance)
LIMIT 3
"""
_DUPLICATE_CODES = """
SELECT code, count(*) FROM fest_drug WHERE catalog = :v GROUP BY code HAVING count(*) > 1
LIMIT 3
"""
_DANGLING_BRANDS = """
SELECT count(*) FROM fest_drug p
WHERE p.catalog = :v AND p.kind = 'package' AND p.brand IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM fest_drug b WHERE b.catalog = p.catalog AND b.id = p.brand)
"""


# A package's prescription validity is its brand's. A generic (LegemiddelVirkestoff) has
# none in FEST [M 2470]; it takes its brands' (same ATC code and form, [G 963-997]) when they
# all give the same one, and none when they differ or some give none.
_VALIDITY_OF_PACKAGES = """
UPDATE fest_drug SET validity = (
    SELECT b.validity FROM fest_drug b
    WHERE b.catalog = fest_drug.catalog AND b.id = fest_drug.brand)
WHERE catalog = :v AND kind = 'package'
"""
_VALIDITY_OF_GENERICS = """
UPDATE fest_drug SET validity = (
    SELECT min(b.validity) FROM fest_drug b
    WHERE b.catalog = fest_drug.catalog AND b.atc = fest_drug.atc AND b.kind = 'brand'
      AND b.form = fest_drug.form
    HAVING count(DISTINCT b.validity) = 1 AND count(b.validity) = count(*))
WHERE catalog = :v AND kind = 'generic'
"""

#: What must hold after each resolution step, and how a failure is named.
_CHECKS: tuple[tuple[str | None, str, str], ...] = (
    (None, _MISSING_STRENGTH_SUBSTANCE, "strength {0} names substance {1}, which it lacks"),
    (_RESOLVE_REFS, _MISSING_SUBSTANCE, "{0} names substance or strength {1}, which it lacks"),
    (_RESOLVE_PACKAGES, _DUPLICATE_CODES, "Varenr {0} is on {1} packages"),
)


def resolve(conn: Connection, version: int) -> tuple[list[str], int]:
    """Link every drug to its substances and give packages and generics their prescription
    validity; returns what does not hold together (empty when all is well) and how many
    packages name a brand the version lacks."""
    params = {"v": version}
    for step, check, message in _CHECKS:
        if step is not None:
            conn.execute(text(step), params)
        problems = [message.format(*row) for row in conn.execute(text(check), params)]
        if problems:
            return problems, 0
    conn.execute(text(_VALIDITY_OF_PACKAGES), params)
    conn.execute(text(_VALIDITY_OF_GENERICS), params)
    return [], int(conn.execute(text(_DANGLING_BRANDS), params).scalar_one())

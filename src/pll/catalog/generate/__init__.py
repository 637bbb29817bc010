"""Synthetic FEST extracts (catalogue message M30) of invented drugs, for tests, demos and
benchmarks.

The output follows ``docs/fest-m30.md`` and the hand-written fixture
``tests/fixtures/fest/small.xml``: a ``FEST`` root in the KITH ``m30`` namespace, ``Kat…``
catalogues of ``Oppf…`` entries (``Id``, ``Tidspunkt``, ``Status V="A"``) around entities in
the ``forskrivning`` namespace, and coded values as ``V``/``S``/``DN`` attributes. At
``scale=1.0`` it is about the size of the real catalogue: ~2,000 substances, ~6,000 brands,
~10,000 packages, ~3,000 active-substance groups and ~25,000 interactions.

Everything is invented: substance, brand and company names, ids, article numbers, ATC codes
below level 2 and all clinical text; code-system OIDs and most code values are the real ones
(form codes the reference does not list are invented in the 900 range, see
:mod:`.vocabulary`). The document is written entry by entry; only small tuples of ids and
codes are kept in memory to draw references from. The same ``seed``, ``scale`` and ``today``
give byte-identical output.

The parts: :mod:`.vocabulary` (the words and codes), :mod:`.plan` (choosing substances,
brands and packages), :mod:`.m30` (the document's shape), and the writers of each catalogue,
:mod:`.drugs`, :mod:`.substances` and :mod:`.interactions`. Every part draws from the plan's
random streams in the one order :func:`generate` calls them, which is what keeps a seed's
output the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import IO

from pll.catalog.generate.drugs import write_brands, write_generics, write_packages
from pll.catalog.generate.interactions import write_interactions
from pll.catalog.generate.m30 import M30, Writer
from pll.catalog.generate.plan import Plan
from pll.catalog.generate.substances import write_substances

__all__ = ["BASE", "DEFAULT_TODAY", "KINDS", "generate"]

#: Entity counts of the real catalogue at ``scale=1.0``.
BASE = {
    "Virkestoff": 2000,
    "LegemiddelMerkevare": 6000,
    "Legemiddelpakning": 10000,
    "LegemiddelVirkestoff": 3000,
    "Interaksjon": 25000,
    "InteraksjonIkkeVurdert": 50,
}
#: The keys of :func:`generate`'s result: the local names of the entity elements written.
KINDS = (
    "Virkestoff",
    "VirkestoffMedStyrke",
    "LegemiddelMerkevare",
    "Legemiddelpakning",
    "LegemiddelVirkestoff",
    "Interaksjon",
    "InteraksjonIkkeVurdert",
)
DEFAULT_TODAY = date(2026, 11, 1)


def _count(kind: str, scale: float) -> int:
    return max(1, round(BASE[kind] * scale))


def generate(
    out: IO[bytes],
    *,
    scale: float = 1.0,
    seed: int = 2026,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
    demo: bool = False,
) -> dict[str, int]:
    """Write a synthetic FEST extract to `out`; returns counts per entity kind. With
    ``demo``, the demo lists' drugs (:mod:`pll.catalog.demo_drugs`) are in it too."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    today = today or DEFAULT_TODAY
    plan = Plan(seed, today)
    plan.plan_substances(_count("Virkestoff", scale))
    plan.plan_generics(_count("LegemiddelVirkestoff", scale))
    plan.plan_brands(_count("LegemiddelMerkevare", scale))
    packages = _count("Legemiddelpakning", scale)
    plan.plan_packages(packages)
    if demo:
        plan.plan_demo()

    w = Writer(out, progress, plan.new_id)
    w.raw(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!-- Synthetic FEST M30 extract (pll.catalog.generate, scale={scale}, seed={seed}): "
        "every drug, name, id, article number and text is invented. -->\n"
        f'<FEST xmlns="{M30}">\n'
        f"  <HentetDato>{today.isoformat()}T03:10:47</HentetDato>\n"
    )
    write_brands(plan, w)
    write_packages(plan, w, packages)
    write_substances(plan, w)
    write_generics(plan, w)
    write_interactions(
        plan, w, _count("Interaksjon", scale), _count("InteraksjonIkkeVurdert", scale)
    )
    w.raw("</FEST>\n")
    w.done()
    return {k: w.counts.get(k, 0) for k in KINDS}

"""Writing the substance catalogue (``KatVirkestoff``): each substance, then each of its
strengths (``VirkestoffMedStyrke``), from a :class:`.Plan`."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from pll.catalog.generate.m30 import Writer, cv, el, entity
from pll.catalog.generate.plan import Plan


def write_substances(plan: Plan, w: Writer) -> None:
    w.raw("  <KatVirkestoff>\n")
    for s in plan.substances:
        body = entity("Virkestoff", [el("Id", s.id), el("Navn", s.name)])
        w.entry("Virkestoff", w.oppf("Virkestoff", s.tidspunkt, body))
    for st in plan.strengths:
        lines = [el("Id", st.id), f"<Styrke V={quoteattr(st.value)} U={quoteattr(st.unit)}/>"]
        if st.per:
            lines.append(f'<StyrkeNevner V="1" U={quoteattr(st.per)}/>')
        lines += [
            el("RefVirkestoff", plan.substances[st.substance].id),
            cv("Styrkeoperator", "L", "7445", "Lik"),
        ]
        body = entity("VirkestoffMedStyrke", lines)
        w.entry("VirkestoffMedStyrke", w.oppf("Virkestoff", st.tidspunkt, body))
    w.raw("  </KatVirkestoff>\n")

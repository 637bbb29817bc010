"""The demo catalogue names the real drugs' ATC classes as a doctor knows them (issue 16:
Eliquis's class was "Sekavir-midler"), and stays byte for byte what it was without the
demo's drugs."""

from __future__ import annotations

import io
import re

from pll.catalog.atc_classes import class_name
from pll.catalog.demo_drugs import DEMO_DRUGS
from pll.catalog.generate import generate

ATC = re.compile(r'<Atc V="([A-Z0-9]+)" S="[^"]+" DN="([^"]*)"/>')


def test_every_class_of_a_demo_drug_carries_its_real_name() -> None:
    out = io.BytesIO()
    generate(out, scale=0.1, seed=2026, demo=True)
    real = {d.atc[:5] for d in DEMO_DRUGS}
    named = [(code, name) for code, name in ATC.findall(out.getvalue().decode()) if code in real]
    assert named, "the catalogue names no demo drug's class: the test proves nothing"
    assert all(name == class_name(code) for code, name in named), named
    assert not any(name.startswith("ATC-gruppe") for _, name in named)

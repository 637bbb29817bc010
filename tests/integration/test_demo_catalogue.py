"""The demo catalogue and the demo lists agree (issue 16): every entry ``pll demo`` puts on a
list is a drug of the catalogue it imported, dosed in a unit that drug's form takes."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.domain.forms import units_for
from pll.fhir.medication import FEST
from pll.services.demo import METHOTREXATE, create_demo
from pll.store import catalog as store
from pll.store.schema import entry_version
from tests.conftest import LiveServer


def _units(dosages: list[dict[str, object]]) -> set[str]:
    return {
        dose["doseQuantity"]["unit"]  # type: ignore[index]
        for d in dosages
        for dose in d.get("doseAndRate", [])  # type: ignore[attr-defined]
    }


def test_every_demo_entry_is_a_catalogue_drug_dosed_as_its_form_allows(
    server: LiveServer,
) -> None:
    extract = io.BytesIO()
    generate(extract, scale=0.02, seed=2026, demo=True)
    extract.seek(0)
    import_fest(server.db, extract, "demo", now=datetime.now(UTC))
    create_demo(server.service, 25, seed=2026)

    with server.db.read() as conn:
        version = store.active(conn)
        assert version is not None
        # every version of every entry: what the demo wrote first and what it changed later
        entries = [orjson.loads(r[0]) for r in conn.execute(sa.select(entry_version.c.resource))]
        codes = {
            c["code"]
            for e in entries
            for c in e["medicationCodeableConcept"]["coding"]
            if c["system"] == FEST
        }
        drugs = store.drugs_by_code(conn, version, codes)
    assert len(entries) > 50
    names = set()
    for e in entries:
        concept = e["medicationCodeableConcept"]
        fest = [c["code"] for c in concept["coding"] if c["system"] == FEST]
        assert fest, f"{concept['text']} carries no FEST code"
        drug = drugs.get(fest[0])
        assert drug is not None, f"{concept['text']} ({fest[0]}) is not in the catalogue"
        assert drug.name == concept["text"]
        allowed = units_for(drug.form)
        assert allowed is not None, f"{drug.name}: the form {drug.form!r} takes no known unit"
        assert _units(e["dosage"]) <= set(allowed), (drug.name, drug.form, e["dosage"])
        names.add(drug.name)
    # the demo's forms are all there: tablets, capsules, cream, inhaler, injection, liquid
    assert {"Imovane Tab 5 mg", "Locoid Krem 1 mg/g", "Ventoline Inh aerosol 0,1 mg/dose"} <= names
    assert {"Insulatard Inj 100 IE/ml", "Duphalac Mikst 667 mg/ml", "Triatec Kaps 5 mg"} <= names
    # methotrexate once a week on the first patient's list
    weekly = [e for e in entries if e["medicationCodeableConcept"]["text"] == METHOTREXATE.name]
    assert weekly
    assert all(e["dosage"][0]["timing"]["repeat"]["periodUnit"] == "wk" for e in weekly)

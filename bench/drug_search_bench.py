"""Drug search latency on the demo catalogue (``pll demo``'s: scale 0.1 with the demo drugs),
as a doctor types: the FHIR name search (``Catalogue.search``: ``GET /fhir/Medication?name=``,
ranked since issue 16, and what the prescribing page used before it) beside the ranked,
grouped search the page uses now (``Catalogue.find``).

    .venv/bin/python bench/drug_search_bench.py
    .venv/bin/python bench/drug_search_bench.py --database-url postgresql://postgres@127.0.0.1:5432/pll_bench_search
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pll.catalog.generate import generate
from pll.catalog.importer import import_fest
from pll.services.catalogue import Catalogue
from pll.store.db import Database
from pllbench.dbsetup import recreate_database

QUERIES = (
    "Imovane", "imovane 7,5", "Paracet 500", "Tab 100", "zopiklon", "N05CF01", "Zoloft",
    "Ventoline", "tab", "krem", "met", "Locoid krem", "insulin", "Apo",
)  # fmt: skip


def _time(run: Callable[[str], object], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        for q in QUERIES:
            started = time.perf_counter()
            run(q)
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


@click.command()
@click.option("--database-url", default=None, help="PostgreSQL URL (recreated); default SQLite")
@click.option("--rounds", default=20, show_default=True)
@click.option("--scale", default=0.1, show_default=True)
def main(database_url: str | None, rounds: int, scale: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/search.sqlite3"
        if database_url:
            recreate_database(database_url)
        db = Database(url)
        db.upgrade()
        extract = io.BytesIO()
        generate(extract, scale=scale, seed=2026, demo=True)
        extract.seek(0)
        import_fest(db, extract, "bench", now=datetime.now(UTC))
        catalogue = Catalogue(db)
        _time(catalogue.find, 1)  # warm up
        before = _time(lambda q: catalogue.search(name=q, count=25), rounds)
        after = _time(catalogue.find, rounds)
        db.dispose()
    kind = "PostgreSQL" if database_url else "SQLite"
    click.echo(f"{kind}, scale {scale}, {len(QUERIES)} queries x {rounds}:")
    click.echo(f"  FHIR name search, ranked: median {before[0]:.2f} ms, p99 {before[1]:.2f} ms")
    click.echo(f"  grouped find (the page): median {after[0]:.2f} ms, p99 {after[1]:.2f} ms")


if __name__ == "__main__":
    main()

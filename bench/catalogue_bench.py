"""The drug catalogue's numbers: FEST import time and peak memory at 1x and 4x the real
catalogue's size, decision support on a 20-entry list, and drug search.

    .venv/bin/python bench/catalogue_bench.py                   # SQLite, scales 1 and 4
    .venv/bin/python bench/catalogue_bench.py --database-url postgresql://postgres@127.0.0.1:5432/pll_bench_fest

Each import runs in a child process of its own, so its peak memory (ru_maxrss) is its own;
memory should stay flat from 1x to 4x because the extract is streamed. Checks and searches run
in-process against the imported catalogue and are reported as median and p99.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pll.domain.model import Author, Entry, Role
from pll.services.catalogue import Catalogue
from pll.services.decision_support import FEST, items, review
from pll.store import catalog as store
from pll.store.db import Database, normalise_url

console = Console()
RESULTS = Path(__file__).resolve().parent / "results"

_IMPORT = """
import io, json, resource, sys, time
from datetime import UTC, datetime
from pll.catalog.importer import import_fest
from pll.store.db import Database, normalise_url
db = Database(sys.argv[1]); db.upgrade()
started = time.perf_counter()
with open(sys.argv[2], "rb") as f:
    result = import_fest(db, f, sys.argv[2], now=datetime.now(UTC))
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
counts = result.counts
print(json.dumps({"seconds": seconds, "peak_mb": peak, "drugs": counts.get("Drug", 0),
                  "interactions": counts.get("Interaction", 0)}))
"""


def _fresh(url: str | None, tmp: Path, name: str) -> str:
    if url is None:
        return f"sqlite:///{tmp / (name + '.sqlite3')}"
    base, _, db_name = url.rpartition("/")
    if not db_name.startswith("pll_bench"):
        raise click.ClickException("only databases named pll_bench* are dropped and recreated")
    admin = sa.create_engine(normalise_url(base + "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    admin.dispose()
    return url


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@click.command()
@click.option("--scales", default="1,4", show_default=True)
@click.option("--database-url", default=None, help="a pll_bench* PostgreSQL database (else SQLite)")
@click.option("--checks", default=500, show_default=True, help="checks of a 20-entry list")
@click.option("--searches", default=1000, show_default=True)
def main(scales: str, database_url: str | None, checks: int, searches: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pll-catalogue-bench-"))
    imports = []
    url = ""
    for scale in [float(s) for s in scales.split(",")]:
        extract = tmp / f"fest-{scale:g}x.xml"
        started = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "pll"),
                "fest",
                "generate",
                "--out",
                str(extract),
                "--scale",
                str(scale),
            ],
            check=True,
            capture_output=True,
        )
        generated = time.perf_counter() - started
        url = _fresh(database_url, tmp, f"fest-{scale:g}")
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT, url, str(extract)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result |= {
            "scale": scale,
            "mb": extract.stat().st_size / 1e6,
            "generate_seconds": generated,
        }
        imports.append(result)
        console.print(f"scale {scale:g}: {result}")

    # checks and searches on the last catalogue imported
    db = Database(url)
    rng = random.Random(7)
    with db.read() as conn:
        version = store.active(conn)
        assert version is not None
        packages = [r for r in store.by_atc(conn, version, "", 100_000, ["package"]) if r.active]
    author = Author("Bench", Role.DOCTOR, hpr="1")
    now = datetime.now(UTC)
    check_ms: list[float] = []
    found = 0
    for _ in range(checks):
        entries = [
            Entry(
                f"e{i}",
                1,
                {
                    "status": "active",
                    "medicationCodeableConcept": {
                        "coding": [{"system": FEST, "code": p.code}],
                        "text": p.name,
                    },
                },
                now,
                author,
            )
            for i, p in enumerate(rng.sample(packages, 20))
        ]
        started = time.perf_counter()
        with db.read() as conn:
            found += len(review(conn, "nobody", items(entries, []), None))
        check_ms.append((time.perf_counter() - started) * 1000)
    catalogue = Catalogue(db)
    words = sorted({p.name.split()[0][:4].lower() for p in packages})
    search_ms: list[float] = []
    for _ in range(searches):
        started = time.perf_counter()
        catalogue.search(name=rng.choice(words), count=20)
        search_ms.append((time.perf_counter() - started) * 1000)
    db.dispose()

    table = Table(title=f"FEST import ({'PostgreSQL' if database_url else 'SQLite'})")
    for col in ("scale", "file MB", "generate s", "import s", "peak MB", "drugs", "interactions"):
        table.add_column(col, justify="right")
    for r in imports:
        table.add_row(
            f"{r['scale']:g}x",
            f"{r['mb']:.0f}",
            f"{r['generate_seconds']:.1f}",
            f"{r['seconds']:.1f}",
            f"{r['peak_mb']:.0f}",
            f"{r['drugs']:,}",
            f"{r['interactions']:,}",
        )
    console.print(table)
    timings = Table(title="In-process, on the last catalogue")
    for col in ("what", "n", "median ms", "p99 ms"):
        timings.add_column(col, justify="right")
    for name, samples in (("checks, 20-entry list", check_ms), ("drug search by name", search_ms)):
        median, p99 = _percentiles(samples)
        timings.add_row(name, str(len(samples)), f"{median:.2f}", f"{p99:.2f}")
    console.print(timings)
    console.print(f"findings per 20-entry list: {found / max(1, checks):.1f} on average")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_file = RESULTS / f"catalogue-{stamp}.json"
    out_file.write_text(
        json.dumps(
            {
                "database": "postgresql" if database_url else "sqlite",
                "imports": imports,
                "checks_ms": dict(zip(("median", "p99"), _percentiles(check_ms), strict=True)),
                "search_ms": dict(zip(("median", "p99"), _percentiles(search_ms), strict=True)),
                "findings_per_list": found / max(1, checks),
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"results: {out_file}")


if __name__ == "__main__":
    main()

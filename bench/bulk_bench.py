"""Time ``pll import generate`` into its own PostgreSQL database (issue 20's bulk goal: a
million patients with their lists in ten minutes).

    python bench/bulk_bench.py --patients 100000 --processes 2
    python bench/bulk_bench.py --patients 1000000 --processes 2 [--keep]
    python bench/bulk_bench.py --patients 200000 --reuse   # 100,000 more into a loaded database
    python bench/bulk_bench.py --lists 500                  # pll import lists of 500 responses

Runs the real command as a subprocess against ``pll_bench_bulk`` (dropped first; dropped
after unless ``--keep``) and reports: patients/s and rows/s of the load, the times of the
load, the index build and ``VACUUM (ANALYZE)``, the whole command's wall time, the peak
memory of a loading process, and where the CPU went — the importer's processes, the
PostgreSQL backends serving this database (their own CPU seconds, from /proc), all
PostgreSQL processes, and the whole machine — as cores busy on average. On a machine others
use at the same time, the CPU seconds per patient are the figure that carries over: wall time
follows whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pllbench import dbsetup
from pllbench.cpu import CpuSampler, _stat

TABLES = (
    "patient",
    "pll",
    "pll_version",
    "entry",
    "entry_version",
    "provenance_target",
    "audit_event",
    "outbox",
)


class Backends:
    """CPU seconds of the PostgreSQL backends connected to one database, sampled."""

    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = database
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()

    def _run(self) -> None:
        with psycopg.connect(dbsetup.libpq_url(self.url), autocommit=True) as conn:
            own = conn.execute("SELECT pg_backend_pid()").fetchone()
            while not self._stop.wait(0.5):
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchall()
                for (pid,) in rows:
                    if own and pid == own[0]:
                        continue
                    s = _stat(pid)
                    if s is not None:
                        self.cpu[pid] = s[2]

    def __enter__(self) -> Backends:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


REFERENCE = Path(__file__).resolve().parents[1] / (
    "tests/fixtures/sfm/getMedication-response-e-multidose.json"
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _write_lists(folder: Path, count: int) -> None:
    """``count`` variants of the reference response: each another synthetic patient, with
    every id the sender gave made new (an import keeps the sender's ids), as strict JSON
    (the reference has a trailing comma, which sends a file through the pure-Python JSON5
    reader: seconds a file, measured apart)."""
    from pll.fhir.sfm.lenient_json import parse_lenient  # noqa: PLC0415
    from pll.services.synthetic import synthetic_fnrs  # noqa: PLC0415

    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(parse_lenient(REFERENCE.read_text(encoding="utf-8"))[0], indent=1)
    for i, fnr in enumerate(synthetic_fnrs(count)):
        variant = text.replace("25039296929", fnr)
        variant = _UUID.sub(lambda m, f=fnr: str(uuid.uuid5(uuid.NAMESPACE_OID, f + m[0])), variant)
        (folder / f"{i:07d}.json").write_text(variant, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/pll_bench_bulk")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="load into the database as it is (the patients not loaded yet; indexes in place "
        "if it holds rows)",
    )
    ap.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument(
        "--lists",
        type=int,
        default=0,
        help="time `pll import lists` of this many SFM responses instead (variants of the "
        "reference response, each its own patient and ids)",
    )
    args = ap.parse_args()

    url = args.database_url
    name = dbsetup.conn_parts(url)["dbname"]
    if args.reuse:
        dbsetup.create_database_if_missing(url)
    else:
        dbsetup.recreate_database(url)
    env = dict(os.environ)
    env["PLL_DATABASE_URL"] = url
    env["PLL_DATA_DIR"] = str(Path("/tmp") / f"{name}-data")
    env.setdefault("PLL_AUDIT_KEY", "00" * 32)
    pll = str(Path(sys.executable).parent / "pll")
    folder = Path("/tmp") / f"{name}-lists"
    if args.lists:
        _write_lists(folder, args.lists)
        command = [pll, "import", "lists", str(folder), "--processes", str(args.processes)]
        args.patients = args.lists
    else:
        command = [
            pll,
            "import",
            "generate",
            "--patients",
            str(args.patients),
            "--processes",
            str(args.processes),
            "--batch",
            str(args.batch),
            "--seed",
            str(args.seed),
        ]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    with CpuSampler(proc.pid, lambda: None, interval=1.0) as cpu, Backends(url, name) as pg:
        out, _ = proc.communicate()
    wall = time.perf_counter() - started
    print(out, end="")
    if proc.returncode != 0:
        return proc.returncode
    with psycopg.connect(dbsetup.libpq_url(url)) as conn:
        rows = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    found = re.search(
        r"loaded in ([\d.]+) s .*indexes built in ([\d.]+) s, VACUUM \(ANALYZE\) ([\d.]+) s; "
        r"peak memory ([\d,]+) MB",
        out,
    )
    counted = re.search(r"([\d,]+) (?:patients loaded|lists imported) ", out)
    loaded = int(counted[1].replace(",", "")) if counted else 0
    load_s, index_s, vacuum_s, peak = (
        (float(found[1]), float(found[2]), float(found[3]), found[4]) if found else (0, 0, 0, "?")
    )
    if args.lists:
        took = re.search(r"in ([\d.]+) s \(", out)
        load_s = float(took[1]) if took else 0.0
    total_rows = sum(rows.values())
    backend_cpu = sum(pg.cpu.values())
    importer_cpu = cpu.result.get("server", 0.0) * wall
    result = {
        "patients": args.patients,
        "processes": args.processes,
        "batch": args.batch,
        "wall_seconds": round(wall, 1),
        "load_seconds": load_s,
        "index_seconds": index_s,
        "vacuum_seconds": vacuum_s,
        "loaded": loaded,
        "patients_per_second_load": round(loaded / load_s) if load_s else None,
        "patients_per_second_total": round(loaded / wall),
        "rows": rows,
        "rows_per_second_total": round(total_rows * loaded / max(args.patients, 1) / wall),
        "database_bytes": int(size[0]) if size else None,
        "peak_memory_mb_a_process": peak,
        "cpu_cores_busy": cpu.result,
        "cpu_other_programs": cpu.top_others,
        "importer_cpu_seconds": round(importer_cpu, 1),
        "backend_cpu_seconds": round(backend_cpu, 1),
        "cpu_ms_a_patient": round((importer_cpu + backend_cpu) / max(loaded, 1) * 1000, 3),
    }
    print(json.dumps(result, indent=2))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kind = "lists" if args.lists else "bulk"
    (args.results_dir / f"{kind}-{args.patients}-{stamp}.json").write_text(json.dumps(result))
    if not args.keep:
        dbsetup.drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())

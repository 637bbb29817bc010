"""Failover: how long PLL takes to write again after its primary PostgreSQL dies, over
several kills, and whether every acknowledged change is found afterwards (issue 21).

    .venv/bin/python bench/failover_bench.py                      # 5 kills
    .venv/bin/python bench/failover_bench.py --rounds 3 --writers 8 --patients 4

Two PostgreSQL 15 clusters of its own on loopback ports (``tests/integration/pg_clusters.py``:
``initdb`` from /usr/lib/postgresql/15/bin, run as ``postgres`` when started as root), the
second a synchronous standby of the first; ``pll serve`` and ``pll worker`` on the multi-host
URL ``postgresql://A,B/pll?target_session_attrs=read-write``, started once and never
restarted; a writer per entry (``PUT`` under ``If-Match``, sent again with the same
``If-Match`` after a 503 or no answer) and two readers, as in ``tests/integration/
test_failover.py`` (``tests/integration/failover_scene.py``).

Each round: the load runs until every writer has ``--before`` changes acknowledged; the
primary's postmaster and its processes are SIGKILLed and the standby promoted with
``pg_ctl promote``; the round ends when every writer has ``--after`` changes acknowledged
that it sent after the kill. Then every acknowledged change is looked for in its entry's
history (read through PLL, from the new primary) as the version its answer named, and
every change's marker counted (a marker in two versions is a change made twice). The dead
node is rebuilt as the new primary's synchronous standby on the same port
(``pg_basebackup``), so the URL's two hosts stay the two servers, and the next round kills
the new primary.

*Resume* is the time from the kill to the first acknowledged change sent after it: it holds
the promotion (``pg_ctl promote``, which waits until the standby takes writes) and PLL
finding the new primary (a 503 answered meanwhile, then the writer's next try 50 ms later).
Wall-clock time on a machine doing other work: say how busy it was with the figures.
At the end ``pll audit verify`` runs; the figures are printed and saved as JSON in
``bench/results/``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

# the scene and the clusters are the failover test's own
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.failover_scene import (
    Ack,
    Load,
    compare,
    consumers_at_head,
    events_twice,
    fail_over,
    running_pll,
    store_problems,
    wait_for,
)
from tests.integration.pg_clusters import available, multi_host_url, pg_clusters

RESULTS = Path(__file__).resolve().parent / "results"


@click.command()
@click.option("--rounds", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--patients", default=2, show_default=True, type=click.IntRange(1, 100))
@click.option("--writers", default=4, show_default=True, type=click.IntRange(1, 100))
@click.option("--before", default=4, show_default=True, help="changes per writer before a kill")
@click.option("--after", default=3, show_default=True, help="changes per writer after a kill")
def main(rounds: int, patients: int, writers: int, before: int, after: int) -> None:
    if not available():
        raise click.ClickException("PostgreSQL 15's programs are not installed")
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    every_ack: list[Ack] = []
    with (
        tempfile.TemporaryDirectory(prefix="pll-failover-") as tmp,
        pg_clusters() as pg,
    ):
        primary = pg.make_primary("node0")
        standby = pg.add_standby(primary, "node1", sync=True)
        primary.create_database("pll")
        url = multi_host_url([primary, standby], "pll")
        with running_pll(Path(tmp), url, patients=patients, writers=writers) as pll:
            for n in range(1, rounds + 1):
                load = Load(pll, tag=f"r{n}-")
                load.start()
                try:
                    load.wait_each(before, after_kill=False)
                    failover = fail_over(primary, standby, load)
                    load.wait_each(after, after_kill=True)
                finally:
                    load.stop()
                found = compare(pll, load.acks)
                every_ack += load.acks
                row = {
                    "round": n,
                    "promoted_s": round(failover.promoted_after, 3),
                    "resume_s": round(load.first_write_after_kill(), 3),
                    "acknowledged": found.acknowledged,
                    "acknowledged_before_kill": sum(1 for a in load.acks if not a.after_kill),
                    "found": found.found,
                    "made_twice": len(found.made_twice),
                    "made_unanswered": len(load.made_unanswered),
                    "answers_503": load.statuses.count(503),
                    "failures": load.failures,
                }
                rows.append(row)
                click.echo(
                    f"round {n}: promoted in {row['promoted_s']:.2f} s, writing again after "
                    f"{row['resume_s']:.2f} s; {row['found']}/{row['acknowledged']} "
                    f"acknowledged changes found, {row['made_twice']} made twice"
                )
                # the dead node comes back as the new primary's standby, on its own port
                dead, primary = primary, standby
                standby = pg.add_standby(primary, f"node{n + 1}", sync=True, port=dead.port)
            wait_for(lambda: consumers_at_head(primary), "every consumer at the outbox's end")
            problems = store_problems(primary, pll, every_ack)
            twice = events_twice(pll.deliveries)
            # at least once: an event delivered again when the kill fell between its
            # delivery and the dispatcher's step past it (receivers deduplicate by id)
            redelivered = len(pll.deliveries) - len({e for e, _ in pll.deliveries})
            verify = pll.audit_verify()
    resume = [r["resume_s"] for r in rows]
    summary = {
        "rounds": rows,
        "resume_s": {
            "median": statistics.median(resume),
            "min": min(resume),
            "max": max(resume),
        },
        "acknowledged": sum(r["acknowledged"] for r in rows),
        "found": sum(r["found"] for r in rows),
        "made_twice": sum(r["made_twice"] for r in rows),
        "store_problems": problems,
        "events_for_one_version_twice": twice,
        "events_delivered_again": redelivered,
        "audit_verify_ok": verify.returncode == 0,
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "cpus": os.cpu_count(),
    }
    click.echo(
        f"resume after a kill over {rounds} kills: median {summary['resume_s']['median']:.2f} s,"
        f" min {summary['resume_s']['min']:.2f} s, max {summary['resume_s']['max']:.2f} s"
    )
    click.echo(
        f"acknowledged changes {summary['acknowledged']}, found {summary['found']}, made twice"
        f" {summary['made_twice']}; events delivered again {redelivered}; store problems "
        f"{len(problems)}; audit verify "
        f"{'intact' if verify.returncode == 0 else 'BROKEN'}; load average "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"failover-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2))
    click.echo(f"saved {out}")
    bad = problems or twice or summary["made_twice"] or verify.returncode != 0
    if bad or summary["found"] != summary["acknowledged"]:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Failover: the primary PostgreSQL dies under writes and reads, its synchronous standby is
promoted, and PLL carries on without losing or doubling an acknowledged change (issue 21).

Two clusters of the test's own (:mod:`tests.integration.pg_clusters`); ``pll serve`` and
``pll worker`` as processes of their own on the multi-host URL
``postgresql://primary,standby/pll?target_session_attrs=read-write``; writers changing
entries under ``If-Match`` and readers reading lists (:mod:`tests.integration.failover_scene`).
The primary's postmaster is SIGKILLed with its processes (its machine is gone), the standby
is promoted with ``pg_ctl promote``, and neither PLL process is restarted.

Afterwards, on the new primary: every change acknowledged before the kill is there, as the
version its answer named, with its audit record and its event; no change was made twice
(each change's marker is in one version of its entry; versions have no gaps); the writes
resumed without a restart; the dispatcher went on from its place and delivered every
acknowledged version, and every consumer's place reached the end of the outbox; and ``pll
audit verify`` finds the trail intact. How long PLL took to resume is recorded as the test's
``first_write_after_s`` property (``bench/failover_bench.py`` measures it five times).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.failover_scene import (
    Load,
    compare,
    consumers_at_head,
    events_twice,
    fail_over,
    running_pll,
    store_problems,
    wait_for,
)
from tests.integration.pg_clusters import Cluster, available, multi_host_url, pg_clusters

pytestmark = pytest.mark.slow

#: Changes each writer has acknowledged before the kill, and after it.
BEFORE = 4
AFTER = 3


@pytest.fixture
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary and its synchronous standby, with PLL's database."""
    if not available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL 15's programs are required in CI (initdb, pg_basebackup)")
        pytest.skip("PostgreSQL 15's programs are not installed")
    with pg_clusters() as pg:
        primary = pg.make_primary()
        standby = pg.add_standby(primary, sync=True)
        primary.create_database("pll")
        yield primary, standby


def test_a_failover_loses_and_doubles_no_acknowledged_change(
    clusters: tuple[Cluster, Cluster], tmp_path: Path, record_property: Any
) -> None:
    primary, standby = clusters
    url = multi_host_url([primary, standby], "pll")
    # two patients' lists, two writers on each
    with running_pll(tmp_path, url, patients=2, writers=4) as pll:
        try:
            load = Load(pll)
            load.start()
            try:
                load.wait_each(BEFORE, after_kill=False)
                failover = fail_over(primary, standby, load)
                load.wait_each(AFTER, after_kill=True)
            finally:
                load.stop()
            record_property("promoted_after_s", round(failover.promoted_after, 2))
            record_property("first_write_after_s", round(load.first_write_after_kill(), 2))
            before = [a for a in load.acks if not a.after_kill]
            assert len(before) >= 4 * BEFORE

            wait_for(lambda: _acked_versions(load) <= pll.delivered(), "every change notified")
            wait_for(lambda: consumers_at_head(standby), "every consumer at the outbox's end")

            assert load.failures == []
            found = compare(pll, load.acks)
            assert (found.found, found.made_twice, found.gaps) == (len(load.acks), [], [])
            assert store_problems(standby, pll, load.acks) == []
            assert events_twice(pll.deliveries) == []
            # readers got the list or 503 while no server was the primary, never 500
            assert {status for status, _ in load.reads} <= {200, 503}
            assert (200, True) in load.reads
            verify = pll.audit_verify()
            assert verify.returncode == 0, verify.stdout + verify.stderr
            assert b"audit trail intact" in verify.stdout
        except BaseException:
            print(pll.logs())  # noqa: T201 - the processes' output, shown with the failure
            raise


def _acked_versions(load: Load) -> set[tuple[str, int]]:
    pll = load.pll
    return {(pll.lists[pll.entries[a.entry]], a.list_version) for a in load.acks}

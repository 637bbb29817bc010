"""PLL's background work in one place (issue 20; DESIGN §6): the audit sealer, the statistics
consumer and the event dispatcher (FHIR rest-hook subscriptions and NATS JetStream).

:class:`Background` runs them, each on its own thread, until told to stop. ``pll worker``
runs it as a process of its own (on PostgreSQL, ``pll serve`` starts one beside its request
workers: ``PLL_BACKGROUND=process``); on the embedded database each ``pll serve`` process
runs it beside its requests (``PLL_BACKGROUND=inline``). Where it runs is the operator's
choice (docs/operations.md); what it does is the same.

Several may run at once, against one database, and that is safe: a sealing batch holds the
chain's head row until it commits, so sealers take turns and no record is sealed twice; the
statistics consumer counts a batch in the transaction that moves its place, with the place
row locked, so each event is counted once; the dispatcher's places only move forward, past
what was delivered, so every event reaches each consumer at least once and the receivers
deduplicate by event id (:mod:`pll.events.dispatcher`).

Stopping is clean: each job finishes the batch in hand (its work and its place commit
together) and takes no other; a consumer's place only ever moves past what was delivered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pll.config import Settings
from pll.events.dispatcher import Dispatcher
from pll.events.run import consumers, failing
from pll.services.audit import AuditTrail
from pll.services.base import ServiceBase
from pll.services.stats import Statistics

log = logging.getLogger("pll.worker")

#: How long a stopping worker waits for each job to finish its batch (seconds).
FINISH = 30.0


@dataclass
class Background:
    """The sealer every ``seal_interval`` seconds, the statistics consumer every
    ``stats_interval`` seconds (0: not here), and the dispatcher (``None``: not here)."""

    trail: AuditTrail
    statistics: Statistics
    dispatcher: Dispatcher | None
    seal_interval: float
    stats_interval: float

    @property
    def jobs(self) -> list[str]:
        """What this runs, for the log: ``sealer``, ``statistics``, ``dispatcher``."""
        return [
            name
            for name, on in (
                ("sealer", self.seal_interval > 0),
                ("statistics", self.stats_interval > 0),
                ("dispatcher", self.dispatcher is not None),
            )
            if on
        ]

    def run(self, stop: threading.Event) -> None:
        """Run every job until ``stop`` is set, then wait for each to finish its batch."""
        threads = self.start(stop)
        stop.wait()
        for thread in threads:
            thread.join(FINISH)
            if thread.is_alive():
                log.warning("%s did not finish within %.0f s", thread.name, FINISH)

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Start every job's thread; they end once ``stop`` is set (join them)."""
        threads = []
        if self.seal_interval > 0:
            seal = lambda: self.trail.seal(stop=stop.is_set)  # noqa: E731 - one call, named
            threads.append(_thread("sealer", _every, self.seal_interval, seal, stop))
        if self.stats_interval > 0:
            count = lambda: self.statistics.catch_up(stop=stop.is_set)  # noqa: E731
            threads.append(_thread("statistics", _every, self.stats_interval, count, stop))
        if self.dispatcher is not None:
            threads.append(_thread("dispatcher", self.dispatcher.run, stop))
        for thread in threads:
            thread.start()
        return threads


def _thread(name: str, target: Callable[..., object], *args: object) -> threading.Thread:
    return threading.Thread(target=target, args=args, name=name, daemon=True)


def _every(interval: float, job: Callable[[], object], stop: threading.Event) -> None:
    """Run ``job`` every ``interval`` seconds until ``stop`` is set; a failure is logged and
    the job tried again at its next turn (a database that is briefly away, a lock timeout)."""
    name = threading.current_thread().name
    while not stop.wait(interval):
        try:
            job()
        except Exception:
            log.exception("%s failed; trying again in %.0f s", name, interval)


def background(service: ServiceBase, settings: Settings) -> Background:
    """The background work ``settings`` ask for, on ``service``'s database, audit key and
    clock: the dispatcher delivers to the subscriptions (under ``PLL_PUBLIC_URL``) and to
    NATS (``PLL_NATS_URL``), and opens a technical case for a subscription that keeps
    failing (``settings.case_rules``) unless ``PLL_DISPATCH=0``."""
    dispatcher = None
    if settings.dispatches:
        base = (settings.public_url or "http://localhost").rstrip("/") + "/fhir"
        dispatcher = Dispatcher(
            service.db,
            consumers(
                service.db,
                base,
                settings.nats_url,
                service.trail,
                nats_replicas=settings.nats_replicas,
            ),
            service.clock,
            on_failing=failing(service),
        )
    return Background(
        service.trail,
        Statistics(service.db, service.clock),
        dispatcher,
        settings.seal_interval,
        settings.stats_interval,
    )

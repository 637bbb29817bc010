"""The dispatcher: every consumer gets every event, in order, at least once, at its own pace.

Each consumer (a FHIR rest-hook subscription, NATS JetStream) has its own place in the outbox
(:mod:`pll.events.outbox`) and its own worker thread, so one that is slow or failing holds up
neither the others nor the writes, which only ever insert into the outbox. A failed delivery
is retried with a growing wait; the consumer's place moves only past what was delivered. A
consumer that has ended (:class:`Ended`: a subscription whose owner may no longer see the
patient) is not retried: its place moves on past what it was given, and the next look at the
consumers drops it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from pll.events import outbox
from pll.events.outbox import Event
from pll.store.db import Database

log = logging.getLogger("pll.events")


class Ended(Exception):
    """The consumer takes no more events, now or later (its subscription has ended)."""


class Consumer(Protocol):
    """Something events are delivered to. ``deliver`` raises when the event did not arrive,
    :class:`Ended` when it never will."""

    @property
    def name(self) -> str: ...

    #: a new consumer starts at the end of the outbox (only what happens from now on)
    @property
    def start_at_end(self) -> bool: ...

    def deliver(self, event: Event) -> None: ...

    def close(self) -> None: ...


class Dispatcher:
    """Runs the consumers ``consumers()`` names (asked again every ``refresh`` seconds, so
    subscriptions made or ended while it runs are picked up)."""

    def __init__(
        self,
        db: Database,
        consumers: Callable[[], list[Consumer]],
        clock: Callable[[], datetime],
        *,
        poll: float = 0.2,
        refresh: float = 1.0,
        batch: int = 100,
        on_failing: Callable[[str, datetime], None] | None = None,
    ) -> None:
        self.db, self.consumers, self.clock = db, consumers, clock
        self.poll, self.refresh, self.batch = poll, refresh, batch
        #: told after each failed delivery: the consumer's name and since when it has been
        #: failing without a success (a failing subscription opens a technical case)
        self.on_failing = on_failing

    def step(self, consumer: Consumer) -> int:
        """Deliver what is due to ``consumer``; returns how many events it had."""
        now = self.clock()
        with self.db.write() as conn:
            place = outbox.place(conn, consumer.name, now, start_at_end=consumer.start_at_end)
        if place.next_try_at is not None and place.next_try_at > now:
            return 0
        with self.db.read() as conn:
            events = outbox.after(conn, place.position, self.batch)
        done: Event | None = None
        try:
            for event in events:
                consumer.deliver(event)
                done = event
        except Ended as exc:
            # nothing to retry: the place moves past this batch, so the consumer holds up
            # nothing and its lag does not grow until it is dropped
            with self.db.write() as conn:
                outbox.advance(conn, consumer.name, events[-1], self.clock())
            log.info("%s has ended (%s); its place moves on", consumer.name, exc)
            return 0
        except Exception as exc:  # any failure of a consumer is retried later
            with self.db.write() as conn:
                if done is not None:
                    outbox.advance(conn, consumer.name, done, self.clock())
                when = outbox.failed(
                    conn, consumer.name, f"{type(exc).__name__}: {exc}", self.clock()
                )
                since = outbox.failing_since(conn, consumer.name)
            log.warning("delivery to %s failed (%s); next try at %s", consumer.name, exc, when)
            if self.on_failing is not None and since is not None:
                try:
                    self.on_failing(consumer.name, since)
                except Exception:  # telling someone must not stop the deliveries
                    log.exception("could not report the failures of %s", consumer.name)
            return 0
        if done is not None:
            with self.db.write() as conn:
                outbox.advance(conn, consumer.name, done, self.clock())
        return len(events)

    def drain(self, consumer: Consumer, rounds: int = 1000) -> int:
        """Deliver until ``consumer`` is up to date or fails (for tests and one-off runs)."""
        total = 0
        for _ in range(rounds):
            had = self.step(consumer)
            if had == 0:
                break
            total += had
        return total

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set: one worker thread per consumer."""
        workers: dict[str, tuple[threading.Thread, threading.Event, Consumer]] = {}
        try:
            while not stop.is_set():
                try:
                    wanted = {c.name: c for c in self.consumers()}
                except Exception:
                    # the workers go on as they are; their consumers are theirs to close
                    log.exception("could not list the consumers; trying again")
                    stop.wait(self.refresh)
                    continue
                for name in set(workers) - set(wanted):
                    workers.pop(name)[1].set()
                for name, consumer in wanted.items():
                    if name not in workers or not workers[name][0].is_alive():
                        halt = threading.Event()
                        thread = threading.Thread(
                            target=self._work, args=(consumer, halt, stop), name=name, daemon=True
                        )
                        thread.start()
                        workers[name] = (thread, halt, consumer)
                    else:
                        consumer.close()  # the running worker keeps its own
                stop.wait(self.refresh)
        finally:
            for _, halt, _ in workers.values():
                halt.set()
            for thread, _, _ in workers.values():
                thread.join(timeout=10)

    def _work(self, consumer: Consumer, halt: threading.Event, stop: threading.Event) -> None:
        try:
            while not (halt.is_set() or stop.is_set()):
                try:
                    had = self.step(consumer)
                except Exception:
                    log.exception("dispatching to %s failed; trying again", consumer.name)
                    had = 0
                if had == 0:
                    halt.wait(self.poll)
        finally:
            consumer.close()

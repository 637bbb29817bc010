"""Publishing events to NATS JetStream (``PLL_NATS_URL``).

Each event goes to the subject ``pll.events.<patient id>`` of the stream ``PLL`` with the
event id as ``Nats-Msg-Id``, so JetStream drops a copy sent again after a crash (within its
duplicate window) and consumers can deduplicate by it too. A publish counts only once the
stream has acknowledged it. https://docs.nats.io/nats-concepts/jetstream
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import nats
import orjson
from nats.js.errors import NotFoundError

from pll.events.outbox import Event

STREAM = "PLL"
PREFIX = "pll.events"


class JetStream:
    """The NATS JetStream stream as a consumer of the outbox. Used from one thread only (the
    dispatcher's worker for it), which runs its own event loop."""

    name = "nats"
    start_at_end = False  # the stream is a record of every change

    def __init__(self, url: str, stream: str = STREAM, prefix: str = PREFIX) -> None:
        self.url, self.stream, self.prefix = url, stream, prefix
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: Any = None
        self._js: Any = None

    def _run(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    async def _connect(self) -> None:
        self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=2)
        self._js = self._nc.jetstream()
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])

    async def _publish(self, event: Event) -> None:
        if self._js is None:
            await self._connect()
        await self._js.publish(
            f"{self.prefix}.{event.patient_id}",
            orjson.dumps(event.to_json()),
            timeout=5,
            headers={"Nats-Msg-Id": event.event_id},
        )

    def deliver(self, event: Event) -> None:
        try:
            self._run(self._publish(event))
        except Exception:
            self._drop()
            raise

    def _drop(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and self._loop is not None:
            # a broken connection is dropped either way
            with contextlib.suppress(Exception):
                self._run(nc.close())

    def close(self) -> None:
        self._drop()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

"""Publishing events to NATS JetStream (``PLL_NATS_URL``), on one server or a cluster.

Each event goes to the subject ``pll.events.<patient id>`` of the stream ``PLL`` with the
event id as ``Nats-Msg-Id``, so JetStream drops a copy sent again after a crash or a lost
acknowledgement (within its duplicate window) and consumers can deduplicate by it too. A
publish counts only once the stream has acknowledged it (its PubAck): until then
:meth:`JetStream.deliver` raises and the dispatcher keeps its place, so the event is sent
again. https://docs.nats.io/nats-concepts/jetstream

A cluster is named by several URLs (``nats://a:4222,nats://b:4222,nats://c:4222``); the
client connects to any one of them and learns the others from it. The stream is kept with
``replicas`` copies (``PLL_NATS_REPLICAS``): with 3, a PubAck means a majority of the nodes
stored the event, so one node may die without losing it.
https://docs.nats.io/running-a-nats-service/configuration/clustering/jetstream_clustering

When a node dies the client moves to another by itself, but the stream has no leader until
the survivors elect one: a follower waits 4 to 9 s for a lost leader before it stands
(nats-server ``raft.go``). A publish therefore keeps trying, with the same ``Nats-Msg-Id``,
for :data:`FAILOVER` seconds before it counts as failed, so a node's death costs seconds
and not the dispatcher's growing back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import nats
import orjson
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from pll.events.outbox import Event

log = logging.getLogger("pll.events")

STREAM = "PLL"
PREFIX = "pll.events"
#: How long one publish waits for the stream's acknowledgement, in seconds.
ACK_WAIT = 5.0
#: How long a publish keeps trying through a failover before it counts as failed (one
#: election timeout of up to 9 s, with room for a second round), and the pause between tries.
FAILOVER = 15.0
RETRY_WAIT = 0.5
#: The name the connection shows in the servers' monitoring (``/connz``).
CONNECTION_NAME = "pll-dispatcher"
#: JetStream keeps at most five copies of a stream.
MAX_REPLICAS = 5


#: How long JetStream drops a message whose ``Nats-Msg-Id`` it has stored: longer than the
#: dispatcher's longest back-off (:data:`pll.events.outbox.MAX_BACKOFF`, 5 minutes) plus a
#: publish's own retries, so that an event sent again after an outage is stored once
#: (NATS's default window is 2 minutes). Seconds.
DUPLICATE_WINDOW = 600.0


class PublishFailed(RuntimeError):
    """An event, or the stream it goes to, was not acknowledged; the dispatcher tries again."""


class ConnectionLost(ConnectionError):
    """The connection went down while a publish waited for its acknowledgement."""


def servers(url: str) -> list[str]:
    """The server URLs in ``PLL_NATS_URL``: one, or several separated by commas."""
    return [part.strip() for part in url.split(",") if part.strip()]


class JetStream:
    """The NATS JetStream stream as a consumer of the outbox. Used from one thread only (the
    dispatcher's worker for it), which runs its own event loop.

    ``replicas`` (``PLL_NATS_REPLICAS``) is the number of copies the stream must have: PLL
    creates the stream so, and changes an existing stream to it. ``None`` creates the stream
    with 1 copy on one server and 3 when ``url`` names several, and leaves an existing
    stream's copies as they are (an operator's choice, which PLL does not undo)."""

    name = "nats"
    start_at_end = False  # the stream is a record of every change

    def __init__(
        self,
        url: str,
        stream: str = STREAM,
        prefix: str = PREFIX,
        *,
        replicas: int | None = None,
    ) -> None:
        self.servers = servers(url)
        if not self.servers:
            raise ValueError("PLL_NATS_URL names no server.")
        if replicas is not None and not 1 <= replicas <= MAX_REPLICAS:
            raise ValueError(f"a stream has 1 to {MAX_REPLICAS} replicas, not {replicas}")
        self.stream, self.prefix, self.replicas = stream, prefix, replicas
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: Any = None
        self._js: Any = None  # set once the stream is known to be there
        #: the publish waiting for its acknowledgement, cancelled if the connection goes down
        self._sending: asyncio.Future[Any] | None = None
        self._cut = False

    @property
    def replicas_to_create(self) -> int:
        """How many copies a stream this publisher creates gets."""
        if self.replicas is not None:
            return self.replicas
        return 3 if len(self.servers) > 1 else 1

    def deliver(self, event: Event) -> None:
        """Publish ``event`` and return once the stream has acknowledged it (stored it on a
        majority of its replicas); raise :class:`PublishFailed` otherwise."""
        try:
            self._run(self._publish(event))
        except Exception as exc:
            # the next try connects afresh, to whichever server of the list answers
            self._drop()
            if isinstance(exc, PublishFailed):
                raise
            raise PublishFailed(
                f"event {event.event_id} was not acknowledged by the stream {self.stream}: "
                f"{_said(exc)}"
            ) from exc

    def close(self) -> None:
        self._drop()
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def _run(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    async def _publish(self, event: Event) -> None:
        """Publish until acknowledged, through a failover of up to :data:`FAILOVER` s."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + FAILOVER
        retrying = False
        while True:
            try:
                if self._nc is None:
                    # bounded: a client trying unreachable servers one after another may wait
                    # its connect timeout on each of them, more than once
                    await asyncio.wait_for(self._connect(), max(give_up - loop.time(), ACK_WAIT))
                if self._js is None:
                    js = self._nc.jetstream(timeout=ACK_WAIT)
                    await self._ensure_stream(js)
                    self._js = js
                await self._send(event, min(ACK_WAIT, max(give_up - loop.time(), RETRY_WAIT)))
                if retrying:
                    log.warning("NATS: event %s acknowledged after a retry", event.event_id)
                return
            except Exception as exc:
                if loop.time() + RETRY_WAIT > give_up:
                    raise PublishFailed(
                        f"event {event.event_id} was not acknowledged by the stream "
                        f"{self.stream}: {_said(exc)}; it is sent again with the same "
                        "Nats-Msg-Id"
                    ) from exc
                if not retrying:
                    log.warning(
                        "NATS: event %s not acknowledged yet (%s); trying again for up to %.0f s",
                        event.event_id,
                        _said(exc),
                        FAILOVER,
                    )
                    retrying = True
                if self._nc is not None and self._nc.is_closed:
                    await self._forget()  # the client gave up on every server: start again
                await asyncio.sleep(RETRY_WAIT)

    async def _send(self, event: Event, wait: float) -> None:
        """One publish, waiting for its PubAck; raises :class:`ConnectionLost` at once if the
        connection goes down meanwhile (the reply would never come on the new one)."""
        self._cut = False
        self._sending = asyncio.ensure_future(
            self._js.publish(
                f"{self.prefix}.{event.patient_id}",
                orjson.dumps(event.to_json()),
                timeout=wait,
                # refused rather than stored if the subject belongs to another stream
                stream=self.stream,
                headers={"Nats-Msg-Id": event.event_id},
            )
        )
        try:
            await self._sending
        except asyncio.CancelledError:
            if not self._cut:
                raise  # cancelled from outside, not by a lost connection
            raise ConnectionLost("the connection was lost before the stream acknowledged") from None
        finally:
            self._sending = None

    async def _connect(self) -> None:
        where = ", ".join(self.servers)
        try:
            # any server of the list will do; a cluster's node tells of the others
            self._nc = await nats.connect(
                servers=self.servers,
                name=CONNECTION_NAME,
                connect_timeout=5,
                max_reconnect_attempts=2,
                error_cb=_error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )
        except Exception as exc:
            raise PublishFailed(f"could not connect to NATS at {where}: {_said(exc)}") from exc

    async def _ensure_stream(self, js: Any) -> None:
        """Create the stream, or bring an existing one to ``replicas`` copies (keeping
        whatever else an operator set on it, such as its duplicate window or limits)."""
        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            want = self.replicas_to_create
            try:
                await js.add_stream(
                    name=self.stream,
                    subjects=[f"{self.prefix}.>"],
                    num_replicas=want,
                    duplicate_window=DUPLICATE_WINDOW,
                )
            except Exception as exc:
                raise PublishFailed(
                    f"could not create the stream {self.stream} with {want} "
                    f"replica{'s' if want > 1 else ''}: {_said(exc)}"
                ) from exc
            return
        except Exception as exc:
            raise PublishFailed(f"the stream {self.stream} did not answer: {_said(exc)}") from exc
        config: StreamConfig = info.config
        has = config.num_replicas or 1
        if self.replicas is not None and has != self.replicas:
            try:
                await js.update_stream(config.evolve(num_replicas=self.replicas))
            except Exception as exc:
                raise PublishFailed(
                    f"could not change the stream {self.stream} from {has} to "
                    f"{self.replicas} replicas: {_said(exc)}"
                ) from exc
            log.warning("NATS: the stream %s now has %d replicas", self.stream, self.replicas)

    async def _disconnected(self) -> None:
        if self._sending is not None and not self._sending.done():
            self._cut = True
            self._sending.cancel()
        if self._nc is not None and not self._nc.is_closed:
            log.warning("NATS: connection lost; trying the other servers")

    async def _reconnected(self) -> None:
        url = self._nc.connected_url if self._nc is not None else None
        log.warning("NATS: connected again, now to %s", url.netloc if url else "?")

    async def _forget(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):  # a broken connection is dropped either way
                await nc.close()

    def _drop(self) -> None:
        if self._nc is not None and self._loop is not None:
            self._run(self._forget())
        self._nc = self._js = None


async def _error(exc: Exception) -> None:
    # a node that is down is expected in a cluster: one line, not the client's traceback
    log.warning("NATS: %s", _said(exc))


def _said(exc: BaseException) -> str:
    """What a NATS error says: its own text, or its kind when it has none."""
    text = str(exc).strip()
    return text if text and text != "None" else type(exc).__name__

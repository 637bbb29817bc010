"""Prometheus metrics for operations at ``GET /metrics`` (docs/operations.md).

- **Requests**: a pure ASGI middleware on the outer application sees every request, the FHIR
  API's and the web UI's. It labels each with the *template* of the route that took it
  (``/fhir/List/{id}``), found through the route Starlette puts in the scope while routing;
  a request no route took is ``unmatched``. Raw paths never become labels: they carry ids
  and fødselsnumre, and every distinct value would be a series of its own.
- **Refusals** (relay-baton conflicts and refused checks): counted once each, where the
  services refuse (:meth:`pll.services.base.ServiceBase.guard`, which every use case runs
  under, so the web UI's own conflict pages count too), and at the API's and the web UI's
  error mapping for the few refusals made outside a use case.
- **Outbox lag**: read from the database on each scrape by a collector of this
  application's own; a database that fails gives ``pll_outbox_up 0``, never a failed scrape.
- **Sealing**: how many audit records wait to be linked into the hash chain and how old the
  oldest is, read on each scrape like the lag; with the statistics consumer's lag this is
  what shows that no ``pll worker`` runs (docs/operations.md).
- **Read replicas** (``PLL_READ_DATABASE_URL``): whether each serves and its lag, as this
  process's checker saw them last, and where the reads they may serve went.
- **Build**: ``pll_build_info``.

Request and refusal counts live in ``prometheus_client``'s process-wide registry. With
``pll serve --workers N`` each worker writes them to files in ``PROMETHEUS_MULTIPROC_DIR``
(set by ``pll serve``) and whichever worker answers a scrape adds up every worker's files.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from time import perf_counter
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pll.domain.errors import (
    ChecksRefused,
    Conflict,
    DomainError,
    PreconditionRequired,
    RuleRefused,
    VersionConflict,
)
from pll.events import outbox
from pll.services.audit import AuditTrail
from pll.services.lists import PLLService
from pll.store.db import Database
from pll.store.replicas import ReplicaSet

log = logging.getLogger("pll.api")

#: The route label of a request that no route took (404, and 405 on the API's paths).
UNMATCHED = "unmatched"
#: Methods kept as they are in the ``method`` label; any other is ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Latency buckets (seconds): the hot read takes a few milliseconds, a large write or a
#: reconciliation some hundreds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The kinds of refusal counted, with the status each is answered with.
REFUSALS: tuple[tuple[type[DomainError], str], ...] = (
    (VersionConflict, "version_conflict"),  # 412: the change was based on an old version
    (PreconditionRequired, "precondition_required"),  # 428: no If-Match
    (Conflict, "conflict"),  # 409: contradicts the current state
    (ChecksRefused, "checks_refused"),  # 422: a severe finding without an override
    (RuleRefused, "rule_refused"),  # 422: an operation's rules (an SFM send)
)

# No ``_created`` series: they would double the series, and the text format gives them as
# gauges of their own that nothing here needs.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

REQUESTS = Counter(
    "pll_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "pll_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method, route template "
    "and status class.",
    ["method", "route", "status_class"],
    buckets=BUCKETS,
)
CONFLICTS = Counter(
    "pll_conflicts",
    "Requests refused by the relay-baton and check rules, by kind: version_conflict (412), "
    "precondition_required (428), conflict (409), checks_refused and rule_refused (422).",
    ["kind"],
)
_CONFLICT_SERIES = {kind: CONFLICTS.labels(kind) for _, kind in REFUSALS}
REPLICA_READS = Counter(
    "pll_replica_reads",
    "Reads a read replica may serve (issue 21), by where they went: replica (served by "
    "one), or the primary because no_replica was serving, the replica's copy was behind the "
    "version the client named, the list was missing there, or the read failed there.",
    ["served"],
)


def count_replica_read(kind: str) -> None:
    REPLICA_READS.labels(kind).inc()


_COUNTED = "_pll_metrics_counted"


def count_refusal(error: DomainError) -> None:
    """Count a refusal of a kind in :data:`REFUSALS`, once however many places see it
    (the services' guard, then the page or response that shows it). A refusal raised while
    handling one already counted is that refusal told again in other words (a page that
    explains a conflict its own way), and is not counted again."""
    kind = next((name for cls, name in REFUSALS if isinstance(error, cls)), None)
    if kind is None or _counted(error):
        return
    vars(error)[_COUNTED] = True
    _CONFLICT_SERIES[kind].inc()


def _counted(error: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if vars(cause).get(_COUNTED):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def route_templates(routes: Iterable[BaseRoute], prefix: str = "") -> dict[int, str]:
    """The template of every route, keyed by the route object's id (what routing leaves in
    ``scope["route"]``). A mount with routes of its own is left in the scope only when
    none of them took the request (``unmatched``); one without (static files) is its
    prefix and ``{path}``."""
    out: dict[int, str] = {}
    for route in routes:
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                out[id(route)] = UNMATCHED
                out |= route_templates(inner, prefix + route.path)
            else:
                out[id(route)] = f"{prefix}{route.path}/{{path}}"
        elif isinstance(route, Route):
            out[id(route)] = prefix + route.path
    return out


class RequestMetrics:
    """Pure ASGI middleware: counts and times every HTTP request by method, route template
    and status. Kept cheap for the hot read: the labelled series are looked up once per
    (method, route, status) and reused."""

    def __init__(self, app: ASGIApp, templates: Mapping[int, str]) -> None:
        self.app = app
        self.templates = templates
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the server answers if the application fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            self._observe(scope, status, perf_counter() - start)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = UNMATCHED if route is None else self.templates.get(id(route), UNMATCHED)
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (method, template, status)
        series = self._series.get(key)
        if series is None:
            series = (
                REQUESTS.labels(method, template, str(status)),
                LATENCY.labels(method, template, f"{status // 100}xx"),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)


class BuildInfo(Collector):
    """``pll_build_info{version, python} 1``."""

    def __init__(self, software_version: str) -> None:
        self.version = software_version

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "pll_build_info",
            "The running PLL: its version and Python's; always 1.",
            labels=["version", "python"],
        )
        python = ".".join(str(part) for part in sys.version_info[:3])
        info.add_metric([self.version, python], 1)
        yield info


class OutboxLag(Collector):
    """Per event consumer, what it has not had yet, read from the database at scrape time
    (:func:`pll.events.outbox.backlogs`: two queries on the outbox's primary key)."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db, self.clock = db, clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pll_outbox_up",
            "1 when this scrape could read the outbox, 0 when the database failed (the "
            "other pll_outbox_ series are then missing).",
        )
        try:
            with self.db.read() as conn:
                backlogs = outbox.backlogs(conn, self.clock())
        except Exception:  # a scrape reports the failure; it never fails itself
            log.warning("/metrics could not read the outbox", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        behind = GaugeMetricFamily(
            "pll_outbox_lag_events",
            "Events in the outbox that the consumer has not had yet.",
            labels=["consumer"],
        )
        age = GaugeMetricFamily(
            "pll_outbox_lag_seconds",
            "Age of the oldest event the consumer has not had yet; 0 when it has them all.",
            labels=["consumer"],
        )
        attempts = GaugeMetricFamily(
            "pll_outbox_failed_attempts",
            "Deliveries to the consumer that have failed in a row (it is retried with back-off).",
            labels=["consumer"],
        )
        for backlog in backlogs:
            behind.add_metric([backlog.name], backlog.behind)
            age.add_metric([backlog.name], backlog.oldest_seconds)
            attempts.add_metric([backlog.name], backlog.attempts)
        yield behind
        yield age
        yield attempts


class AuditSealing(Collector):
    """The audit records not yet sealed into the hash chain, read at scrape time
    (:meth:`pll.services.audit.AuditTrail.unsealed`: two lookups on the partial index of
    the unsealed records). A sealer runs about once a second, so an age past a minute means
    none runs: no ``pll worker``, or ``PLL_SEAL_INTERVAL=0`` everywhere."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    def collect(self) -> Iterator[Metric]:
        try:
            count, age = self.trail.unsealed()
        except Exception:  # the outbox's pll_outbox_up says the database failed
            log.warning("/metrics could not read the audit trail", exc_info=True)
            return
        records = GaugeMetricFamily(
            "pll_audit_unsealed_records",
            "Audit records not yet linked into the hash chain (counted up to 100,000).",
        )
        records.add_metric([], count)
        yield records
        oldest = GaugeMetricFamily(
            "pll_audit_unsealed_seconds",
            "Age of the oldest audit record not yet linked into the hash chain; 0 when all "
            "are. Grows without bound when no sealer runs (pll worker).",
        )
        oldest.add_metric([], age)
        yield oldest


class ReplicaState(Collector):
    """Each read replica as this process's checker last saw it (:mod:`pll.store.replicas`)."""

    def __init__(self, replicas: ReplicaSet) -> None:
        self.replicas = replicas

    def collect(self) -> Iterator[Metric]:
        serving = GaugeMetricFamily(
            "pll_read_replica_serving",
            "1 while a read replica serves reads; 0 while it is out (behind by more than "
            "PLL_READ_MAX_LAG, unreachable, failing, or no standby).",
            labels=["replica"],
        )
        lag = GaugeMetricFamily(
            "pll_read_replica_lag_seconds",
            "How far a read replica was behind the primary at its last check (NaN: unknown).",
            labels=["replica"],
        )
        for replica in self.replicas.replicas:
            serving.add_metric([replica.name], 1 if replica.serving else 0)
            lag.add_metric([replica.name], float("nan") if replica.lag is None else replica.lag)
        yield serving
        yield lag


class _ProcessWide(Collector):
    """This process's registry: the request and refusal metrics, and the client's own
    process, platform and GC collectors."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(
    db: Database,
    clock: Callable[[], datetime],
    software_version: str,
    trail: AuditTrail | None = None,
    replicas: ReplicaSet | None = None,
) -> CollectorRegistry:
    """What one application exposes: the counts of every worker (``PROMETHEUS_MULTIPROC_DIR``)
    or of this process, with its build, its database's outbox lag and, given the audit
    ``trail``, the records waiting for the sealer."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
    else:
        registry.register(_ProcessWide())
    registry.register(BuildInfo(software_version))
    registry.register(OutboxLag(db, clock))
    if trail is not None:
        registry.register(AuditSealing(trail))
    if replicas is not None:
        registry.register(ReplicaState(replicas))
    return registry


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def metrics_endpoint(
    registry: CollectorRegistry, token: str | None
) -> Callable[[Request], Response]:
    """``GET /metrics``. With ``token`` (``PLL_METRICS_TOKEN``) it wants
    ``Authorization: Bearer <token>`` (compared in constant time); without, it answers
    loopback clients only. A plain function: Starlette runs it in a worker thread, as the
    outbox query blocks."""
    expected = hashlib.sha256(token.encode()).digest() if token else None

    def scrape(request: Request) -> Response:
        if expected is not None:
            scheme, _, sent = request.headers.get("authorization", "").partition(" ")
            given = hashlib.sha256(sent.strip().encode()).digest()
            if not (scheme.lower() == "bearer" and hmac.compare_digest(given, expected)):
                return PlainTextResponse(
                    "The metrics need the bearer token PLL_METRICS_TOKEN names.\n",
                    401,
                    headers={"WWW-Authenticate": 'Bearer realm="pll-metrics"'},
                )
        elif request.client is None or not _loopback(request.client.host):
            return PlainTextResponse(
                "The metrics are served to this machine only; set PLL_METRICS_TOKEN to "
                "scrape them from elsewhere.\n",
                403,
            )
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(
            encode(registry),
            headers={"Content-Type": content_type, "Cache-Control": "no-store"},
        )

    return scrape


def instrument(
    service: PLLService,
    token: str | None,
    software_version: str,
    replicas: ReplicaSet | None = None,
) -> Route:
    """Count ``service``'s refusals (and where the reads ``replicas`` may serve went), and
    give the ``/metrics`` route that shows them with the rest (docs/operations.md)."""
    service.on_refusal = count_refusal
    if replicas is not None:
        replicas.counts.hook = count_replica_read
    registry = scrape_registry(service.db, service.clock, software_version, service.trail, replicas)
    return Route("/metrics", metrics_endpoint(registry, token), methods=["GET"])

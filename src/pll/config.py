"""Configuration, from the environment only, so ``pll serve`` and ``pll token`` agree."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pll.auth.audit import AuditKey
from pll.auth.dpop import DPoPVerifier
from pll.auth.jwks import Issuer, KeySet
from pll.auth.tokens import AUDIENCE, Authenticator, dev_issuer
from pll.domain.deadlines import Deadlines
from pll.domain.technical_cases import (
    DEFAULT_OPERATIONS,
    CaseRules,
    Operations,
    valid_orgnr,
)
from pll.store.audit_batch import GroupCommit
from pll.store.db import sqlite_url
from pll.store.dpop_proofs import AcceptedProofs
from pll.store.replicas import libpq, split_urls

#: What the web login asks HelseID for (``PLL_OIDC_SCOPE``): the person's identity, their
#: fødselsnummer and HPR number, and PLL's own API scope for the access token.
OIDC_SCOPE = (
    "openid profile helseid://scopes/identity/pid helseid://scopes/hpr/hpr_number nhn:pll/api"
)


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


#: The default request body limit (``PLL_MAX_BODY``): far above the largest transaction
#: Bundle or SFM document PLL accepts, far below what would strain a worker's memory.
DEFAULT_MAX_BODY = 10 * 1024 * 1024
_SIZE = re.compile(r"([0-9]{1,15}) ?([kmg]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _size(name: str, default: int) -> int:
    """A number of bytes from the environment: ``10485760``, ``10M``, ``10MiB``, ``512k``."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    found = _SIZE.fullmatch(raw)
    if found is None or int(found[1]) == 0:
        raise ValueError(f"{name} must be a positive number of bytes (such as 10M), not {raw!r}.")
    return int(found[1]) * _UNITS[found[2].lower()]


def _number(name: str, default: float, least: float = 0) -> float:
    """A number of at least ``least`` from the environment (a whole one where the default
    is)."""
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if isinstance(default, int) else float(raw)
    except ValueError:
        value = float("nan")
    if not least <= value < float("inf"):
        kind = "whole number" if isinstance(default, int) else "number"
        raise ValueError(f"{name} must be a {kind} of at least {least:g}, not {raw!r}.")
    return value


def _nats_url() -> str | None:
    raw = (os.environ.get("PLL_NATS_URL") or "").strip()
    if raw and not any(part.strip() for part in raw.split(",")):
        raise ValueError(f"PLL_NATS_URL must name a NATS server (nats://host:port), not {raw!r}.")
    return raw or None


def _nats_replicas() -> int | None:
    raw = (os.environ.get("PLL_NATS_REPLICAS") or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 5):
        raise ValueError(
            "PLL_NATS_REPLICAS must be a whole number from 1 to 5 (the copies JetStream keeps "
            f"of the event stream; 3 for a three-node cluster), not {raw!r}."
        )
    return int(raw)


_DURATION = re.compile(r"([0-9]{1,6}) ?(s|m|h|d)")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def case_rules_from_env() -> CaseRules:
    """The rules of case handling from ``PLL_CASE_DEADLINES``,
    ``PLL_SUBSCRIPTION_CASE_AFTER``, ``PLL_OPERATIONS_ORGNR`` and ``PLL_OPERATIONS_NAME``;
    :class:`ValueError` says which is wrong."""
    after = timedelta(hours=1)
    raw = (os.environ.get("PLL_SUBSCRIPTION_CASE_AFTER") or "").strip()
    if raw:
        found = _DURATION.fullmatch(raw.lower())
        if found is None or int(found[1]) == 0:
            raise ValueError(
                "PLL_SUBSCRIPTION_CASE_AFTER must be a duration such as 1h, 30m or 2d, "
                f"not {raw!r}."
            )
        after = timedelta(seconds=int(found[1]) * _SECONDS[found[2]])
    operations = DEFAULT_OPERATIONS
    orgnr = (os.environ.get("PLL_OPERATIONS_ORGNR") or "").strip()
    if orgnr:
        if not valid_orgnr(orgnr):
            raise ValueError(f"PLL_OPERATIONS_ORGNR must be an organisation number, not {orgnr!r}.")
        operations = Operations(orgnr, os.environ.get("PLL_OPERATIONS_NAME") or "PLL drift")
    return CaseRules(Deadlines.parse(os.environ.get("PLL_CASE_DEADLINES")), after, operations)


#: Where the background work runs (``PLL_BACKGROUND``; docs/operations.md): the audit
#: sealer, the statistics consumer and the event dispatcher.
#:
#: - ``inline``: inside each ``pll serve`` process, beside the requests (the default on the
#:   embedded SQLite database, where a second process would only wait for its one writer);
#: - ``process``: in one ``pll worker`` process that ``pll serve`` starts beside its request
#:   workers and stops with them (the default on PostgreSQL: one machine, nothing to forget);
#: - ``external``: not in ``pll serve`` at all; the operator runs ``pll worker`` elsewhere
#:   (several servers behind a load balancer, one or more workers beside them).
BACKGROUND = ("inline", "process", "external")


def _background(database_url: str) -> str:
    raw = (os.environ.get("PLL_BACKGROUND") or "").strip().lower()
    if not raw:
        return "inline" if database_url.startswith("sqlite") else "process"
    if raw not in BACKGROUND:
        raise ValueError(
            f"PLL_BACKGROUND must be inline, process or external, not {raw!r} "
            "(see docs/operations.md)."
        )
    return raw


def group_commit_from_env() -> GroupCommit | None:
    """``PLL_AUDIT_GROUP_COMMIT``, ``PLL_AUDIT_BATCH_ROWS``, ``PLL_AUDIT_BATCH_WAIT_MS``."""
    if not _flag("PLL_AUDIT_GROUP_COMMIT", default=False):
        return None
    return GroupCommit(
        max_rows=int(_number("PLL_AUDIT_BATCH_ROWS", 64, least=1)),
        max_wait=_number("PLL_AUDIT_BATCH_WAIT_MS", 1.0) / 1000,
    )


def _read_urls(database_url: str) -> tuple[str, ...]:
    """``PLL_READ_DATABASE_URL``: replica URLs separated by spaces, on PostgreSQL only."""
    urls = split_urls(os.environ.get("PLL_READ_DATABASE_URL"))
    if urls and database_url.startswith("sqlite"):
        raise ValueError(
            "PLL_READ_DATABASE_URL names read replicas, which need PostgreSQL: set "
            "PLL_DATABASE_URL to the primary's postgresql:// URL too."
        )
    for url in urls:
        libpq(url)  # a ValueError names one that is no PostgreSQL URL
    return urls


def _read_max_lag() -> float:
    lag = _number("PLL_READ_MAX_LAG", 5.0)
    if lag <= 0:
        raise ValueError(f"PLL_READ_MAX_LAG must be a number of seconds above 0, not {lag:g}.")
    return lag


@dataclass(frozen=True)
class Settings:
    #: Where the embedded database and the development keys live (``PLL_DATA_DIR``).
    data_dir: Path
    #: SQLAlchemy URL (``PLL_DATABASE_URL``); SQLite inside ``data_dir`` when unset.
    database_url: str
    #: Worker threads per process for requests that run synchronous code (``PLL_THREADS``).
    #: Threads beyond a few mostly wait for Python's GIL: at N=100,000 writes went from
    #: ~225/s with 40 threads to ~366/s with 4 (bench/, two workers on two cores).
    threads: int = 4
    #: Trust development tokens from ``pll token`` (``PLL_DEV_AUTH=1``). Off unless asked
    #: for: anyone who can read the data directory could otherwise mint tokens. This is
    #: *development mode*, never for real patients; it is also what lets ``public_url`` be
    #: left unset.
    dev_auth: bool = False
    #: A HelseID-style issuer to trust (``PLL_ISSUER``, the ``iss`` of its tokens).
    issuer: str | None = None
    #: Its keys: a JWKS URL or file (``PLL_JWKS``); by OpenID discovery from the issuer when
    #: unset.
    jwks: str | None = None
    #: The ``aud`` tokens must carry (``PLL_AUDIENCE``).
    audience: str = AUDIENCE
    #: Accept plain Bearer tokens besides DPoP-bound ones (``PLL_ALLOW_BEARER``, default on).
    allow_bearer: bool = True
    #: A scope every token must hold (``PLL_REQUIRED_SCOPE``), such as ``nhn:pll/api``.
    required_scope: str | None = None
    #: This server's public origin (``PLL_PUBLIC_URL``, such as ``https://pll.example.no``):
    #: DPoP proofs must name it (``htu``). Required outside development mode: without it
    #: the request's Host header would be taken, which a request carrying a proof made for
    #: another server can set to match (see :meth:`check_public_url`).
    public_url: str | None = None
    #: Where the sealer, the statistics consumer and the dispatcher run (``PLL_BACKGROUND``:
    #: one of :data:`BACKGROUND`; ``inline`` on SQLite, ``process`` on PostgreSQL when unset).
    background: str = "inline"
    #: Seconds between sealing runs of the audit chain (``PLL_SEAL_INTERVAL``; 0 turns the
    #: sealer off wherever the background work runs, as when ``pll audit seal`` does it).
    seal_interval: float = 1.0
    #: NATS server events are also published to, on JetStream (``PLL_NATS_URL``): one URL,
    #: or a cluster's nodes separated by commas (``nats://a:4222,nats://b:4222,...``)
    nats_url: str | None = None
    #: How many copies of the event stream JetStream keeps (``PLL_NATS_REPLICAS``, 1 to 5).
    #: Unset: a new stream gets 1 on one server and 3 when ``PLL_NATS_URL`` names several,
    #: and an existing stream keeps what it has; set: the stream is made to have this many.
    nats_replicas: int | None = None
    #: Run the event dispatcher with the rest of the background work (``PLL_DISPATCH``; on
    #: unless set to 0, as when ``pll events run`` delivers the events elsewhere)
    dispatch: bool | None = None
    #: The read copy's own database (``PLL_READCOPY_URL``); SQLite beside PLL's when unset
    readcopy_url: str | None = None
    #: The OpenID Connect provider doctors log in to the web UI with (``PLL_OIDC_ISSUER``),
    #: the HelseID authority such as ``https://helseid-sts.test.nhn.no``. The access tokens
    #: it hands out are checked like any other, so ``PLL_ISSUER`` should name it too. The
    #: redirect URI is ``PLL_PUBLIC_URL`` + ``/logg-inn/helseid/svar``.
    oidc_issuer: str | None = None
    #: This server's client id there (``PLL_OIDC_CLIENT_ID``).
    oidc_client_id: str | None = None
    #: The client's private key, PEM or JWK (``PLL_OIDC_CLIENT_KEY``, a path): HelseID only
    #: accepts clients that authenticate with a signed assertion (``private_key_jwt``).
    oidc_client_key: Path | None = None
    #: The scopes the login asks for (``PLL_OIDC_SCOPE``, space-separated).
    oidc_scope: str = OIDC_SCOPE
    #: The bearer token ``GET /metrics`` requires (``PLL_METRICS_TOKEN``). Unset, the metrics
    #: are served to loopback clients only (127.0.0.0/8, ::1): set it when a scraper on
    #: another machine, or a reverse proxy on this one, is to reach them.
    metrics_token: str | None = None
    #: Seconds between runs of the statistics consumer (``PLL_STATS_INTERVAL``; 0 turns it
    #: off wherever the background work runs, as when ``pll stats update`` runs elsewhere).
    #: Several processes may run it: each event is counted once.
    stats_interval: float = 5.0
    #: The largest request body accepted, in bytes (``PLL_MAX_BODY``, default 10 MiB; a
    #: suffix ``k``, ``M`` or ``G`` counts in KiB, MiB, GiB): larger ones get 413 before
    #: they are read.
    max_body: int = DEFAULT_MAX_BODY
    #: Per client system (a HelseID ``client_id``), the origins of its pages that may show
    #: PLL's doctor pages in a frame after a SMART launch from that system
    #: (``PLL_EMBED_ORIGINS``: ``client=https://a https://b; other=https://c``; see
    #: pll.web.embedding). Unset: no page is ever framed.
    embed_origins: str | None = None
    #: Case handling (issue 18): each kind's deadline (``PLL_CASE_DEADLINES``, such as
    #: ``clinical=3wd,technical=1wd,administration=1wd``), how long a subscription fails
    #: before PLL opens a technical case (``PLL_SUBSCRIPTION_CASE_AFTER``, such as ``1h``,
    #: ``30m``), and PLL's own operations, where technical cases about unregistered client
    #: systems go (``PLL_OPERATIONS_ORGNR``, ``PLL_OPERATIONS_NAME``).
    case_rules: CaseRules = field(default_factory=CaseRules)
    #: Group commit of the current-list reads' audit rows on PostgreSQL (issue 20;
    #: ``PLL_AUDIT_GROUP_COMMIT``, off by default: one statement per read, reading and
    #: logging together, see pll.store.audited_read; measured faster through the whole
    #: server, bench/README.md). A batch is written when it holds
    #: ``PLL_AUDIT_BATCH_ROWS`` rows (64) or at the latest ``PLL_AUDIT_BATCH_WAIT_MS`` (1 ms)
    #: after its first row; an idle server writes a row at once. ``None``: off.
    group_commit: GroupCommit | None = None
    #: Read replicas (issue 21; ``PLL_READ_DATABASE_URL``): PostgreSQL hot standbys of
    #: ``database_url`` that serve the current-list reads and ``$getMedication``, one URL or
    #: several separated by spaces; each server process spreads reads over those serving, in
    #: turn. Access decisions and audit records stay on the primary (docs/operations.md,
    #: "Read replicas"). Empty: every read goes to the primary.
    read_database_urls: tuple[str, ...] = ()
    #: Seconds a replica may lag behind the primary and still serve reads
    #: (``PLL_READ_MAX_LAG``, default 5); it serves again once less than half this behind.
    read_max_lag: float = 5.0

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("PLL_DATA_DIR", "./pll-data")).resolve()
        url = os.environ.get("PLL_DATABASE_URL") or sqlite_url(data_dir)
        threads = int(_number("PLL_THREADS", 4, least=1))
        return cls(
            data_dir=data_dir,
            database_url=url,
            threads=threads,
            background=_background(url),
            dev_auth=_flag("PLL_DEV_AUTH", default=False),
            issuer=os.environ.get("PLL_ISSUER") or None,
            jwks=os.environ.get("PLL_JWKS") or None,
            audience=os.environ.get("PLL_AUDIENCE") or AUDIENCE,
            allow_bearer=_flag("PLL_ALLOW_BEARER", default=True),
            required_scope=os.environ.get("PLL_REQUIRED_SCOPE") or None,
            seal_interval=_number("PLL_SEAL_INTERVAL", 1.0),
            public_url=os.environ.get("PLL_PUBLIC_URL") or None,
            nats_url=_nats_url(),
            nats_replicas=_nats_replicas(),
            readcopy_url=os.environ.get("PLL_READCOPY_URL") or None,
            oidc_issuer=os.environ.get("PLL_OIDC_ISSUER") or None,
            oidc_client_id=os.environ.get("PLL_OIDC_CLIENT_ID") or None,
            oidc_client_key=Path(key) if (key := os.environ.get("PLL_OIDC_CLIENT_KEY")) else None,
            oidc_scope=os.environ.get("PLL_OIDC_SCOPE") or OIDC_SCOPE,
            metrics_token=os.environ.get("PLL_METRICS_TOKEN") or None,
            stats_interval=_number("PLL_STATS_INTERVAL", 5.0),
            max_body=_size("PLL_MAX_BODY", DEFAULT_MAX_BODY),
            embed_origins=os.environ.get("PLL_EMBED_ORIGINS") or None,
            case_rules=case_rules_from_env(),
            group_commit=group_commit_from_env(),
            read_database_urls=_read_urls(url),
            read_max_lag=_read_max_lag(),
            dispatch=_flag("PLL_DISPATCH", default=False)
            if os.environ.get("PLL_DISPATCH", "").strip()
            else None,
        )

    def audit_key(self) -> AuditKey:
        return AuditKey.load(self.data_dir)

    @property
    def readcopy_database(self) -> str:
        return self.readcopy_url or f"sqlite:///{(self.data_dir / 'readcopy.sqlite3').resolve()}"

    @property
    def dispatches(self) -> bool:
        """Whether the background work includes the event dispatcher (``PLL_DISPATCH``)."""
        return self.dispatch is not False

    @property
    def inline(self) -> bool:
        """Whether each ``pll serve`` process runs the background work itself."""
        return self.background == "inline"

    def check_public_url(self) -> None:
        """Refuse a configuration that would hold DPoP proofs to the Host header.

        DPoP-bound tokens are accepted whenever any issuer is trusted, and a proof must name
        the URL it was made for (RFC 9449 §4.3). That URL is ``PLL_PUBLIC_URL``; without it,
        only in development mode (``PLL_DEV_AUTH=1``), the Host header a request carries is
        taken instead. Raises :class:`ValueError` with a one-line message otherwise, or when
        ``PLL_PUBLIC_URL`` is not an http(s) URL with a host.
        """
        if self.public_url is None:
            if self.dev_auth:
                return
            raise ValueError(
                "PLL_PUBLIC_URL is not set: set it to this server's public origin (such as "
                "https://pll.example.no), which DPoP proofs must name; only development mode "
                "(PLL_DEV_AUTH=1) may do without it."
            )
        parts = urlsplit(self.public_url)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            parts = parts._replace(netloc="")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")  # a path would come twice in every proof's URL
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "PLL_PUBLIC_URL must be this server's public origin, such as "
                f"https://pll.example.no, not {self.public_url!r}."
            )

    def authenticator(self, *, replay_url: str | None = None) -> Authenticator:
        """The trusted issuers (the development one unless turned off, and ``PLL_ISSUER``),
        checking DPoP proofs against the replay record every process using this database
        shares (``replay_url``: another database's, as the read copy keeps its own).
        Raises :class:`ValueError` if no issuer is trusted or ``PLL_PUBLIC_URL`` is missing
        outside development mode (:meth:`check_public_url`)."""
        issuers = [dev_issuer(self.data_dir)] if self.dev_auth else []
        if self.issuer:
            if self.jwks and "://" in self.jwks:
                keys = KeySet.from_url(self.jwks)
            elif self.jwks:
                keys = KeySet.from_file(Path(self.jwks))
            else:
                keys = KeySet.from_issuer(self.issuer)
            issuers.append(Issuer(self.issuer, self.audience, keys))
        if not issuers:
            raise ValueError(
                "No token issuer is trusted: set PLL_ISSUER (and PLL_JWKS), or PLL_DEV_AUTH=1 "
                "for development tokens."
            )
        self.check_public_url()
        return Authenticator(
            issuers,
            allow_bearer=self.allow_bearer,
            required_scope=self.required_scope,
            dpop=DPoPVerifier(shared=AcceptedProofs(replay_url or self.database_url)),
        )

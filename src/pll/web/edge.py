"""The web UI's edge: who is logged in, forgery protection, rendering and errors.

Every page handler is a plain function ``(Web) -> Response`` that runs in a worker thread
(the services are synchronous), like the FHIR handlers in :mod:`pll.api.http`. :func:`page`
wraps it so that

- the caller is the verified token kept in the session (the same :class:`Authenticator` the
  API uses), and an expired or missing login leads to the login page;
- every ``POST`` carries the session's anti-forgery token (OWASP's synchronizer-token
  pattern), checked in constant time before anything runs;
- a refusal from the services (:class:`DomainError`) becomes a readable page with the
  status the API would give, and nothing leaks a stack trace;
- a form that is refused (:class:`InvalidInput`, or a :class:`Conflict` with the state it
  meets, such as a medicine discontinued meanwhile) comes back as itself, not as an error
  page, when its route names the page that shows it (``page(handler, form=show)``): ``show``
  renders the form again with what was typed and the message beside the field.

**Form convention** (every form page follows it, so a refused form keeps the user's work):

- a form page renders its fields from ``values`` (a dict of field name → text; the page's
  own defaults on a first showing, exactly what was posted when the form comes back) and
  ``errors`` (field name → Norwegian message; empty on a first showing); a checkbox is
  checked when ``values`` holds it, so defaults go in the page's ``values``, not the
  template;
- in the template: ``{% from "_field.html" import field_error, invalid with context %}``,
  ``<input id="x" name="x" value="{{ values.get('x', '') }}"{{ invalid('x') }}>`` and
  ``{{ field_error('x') }}`` beside it. Field ids are the field names, so the summary
  (base.html) links to them and the script puts the focus on the first one;
- an :class:`InvalidInput` names its field in ``expression`` (the form field's name; a
  ``fnr.value`` names the field ``fnr``). A refusal naming no field of the form is shown
  in the summary at the top only;
- forms carry ``novalidate``: the browser would say "Please fill out this field" in its
  own language; the server says it in Norwegian (:func:`norwegian`).
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pll.api.http import SAFE_METHODS, STATUS, check_id
from pll.api.metrics import count_refusal
from pll.auth.access import Access, Basis, ReadLog, in_norwegian
from pll.auth.policy import ROLE_NB
from pll.auth.tokens import Caller
from pll.domain.cases import in_norwegian as case_in_norwegian
from pll.domain.checks import Finding, Severity
from pll.domain.errors import Conflict, DomainError, Forbidden, InvalidInput
from pll.domain.model import CLINICIANS, Role
from pll.services.lists import PLLService
from pll.store.db import DatabaseUnavailable
from pll.web import dosage_editor
from pll.web.banner import banner_context, emergencies_of, error_banner
from pll.web.embedding import EMBEDDED_BY, frame_headers
from pll.web.refusals import not_found
from pll.web.sessions import AFTER_LOGIN, caller_of, keep_memory
from pll.web.views import RX_STATUS_NAMES, STATUS_NAMES

log = logging.getLogger("pll.web")

#: The form field that carries the anti-forgery token.
CSRF_FIELD = "csrf"
#: Session keys: the login's handle (its token stays on the server, pll.services.logins),
#: and the page to go on to after logging in.
#: Patients a login remembers a basis and a number for.
REMEMBERED = 20
#: Largest form part (an uploaded or carried discharge list is the biggest).
MAX_PART = 4 * 1024 * 1024
_WHOLE = re.compile(r"[0-9]{1,9}")
#: Severities, most severe first (the order Severity declares them in).
_SEVERITIES = list(Severity)


class NeedsBasis(Exception):
    """A doctor or nurse reached a patient's page without stating why they look."""

    def __init__(self, patient_id: str) -> None:
        super().__init__(patient_id)
        self.patient_id = patient_id


def whole(raw: str, what: str) -> int:
    """A version or page number from a form or query: 1-9 digits, nothing else."""
    if not _WHOLE.fullmatch(raw):
        raise InvalidInput(f"{what} må være et helt tall.", what)
    return int(raw)


def memory_of(request: Request) -> dict[str, Any]:
    """The login's page state loaded for this request (empty when there is no login)."""
    memory = getattr(request.state, "memory", None)
    if memory is None:
        memory = {}
        request.state.memory = memory
    return memory


#: Findings named one by one in the notices after a save (the rest are counted).
NOTICED_FINDINGS = 10
#: The form field that says the doctor has seen decision support's findings for this change
#: (the findings page sends it with the form it carries on).
SEEN = "seen-findings"
#: Largest form a page accepts (an uploaded discharge list is the biggest).
MAX_FORM_FIELDS = 400

OSLO = ZoneInfo("Europe/Oslo")
MONTHS = (
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
)


def day_in_words(day: date) -> str:
    """A day as people write it: "1. oktober 2026"."""
    return f"{day.day}. {MONTHS[day.month - 1]} {day.year}"


ROLE_NAMES = ROLE_NB

_env = Environment(
    loader=PackageLoader("pll.web", "templates"),
    # every value is escaped unless a template says otherwise (none does with user text)
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _date(value: str | datetime | None, with_time: bool = True) -> str:
    """A FHIR date or instant as Norwegians write it, in Norwegian time: 22.11.2026 kl. 09:30."""
    if not value:
        return ""
    if isinstance(value, str):
        if len(value) == 10:
            year, month, day = value.split("-")
            return f"{day}.{month}.{year}"
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    local = value.astimezone(OSLO)
    return local.strftime("%d.%m.%Y kl. %H:%M" if with_time else "%d.%m.%Y")


_env.filters["dato"] = _date
# FHIR status codes as the pages name them ("active" is "I bruk")
_env.filters["status"] = lambda code: STATUS_NAMES.get(code, code) if code else ""
_env.filters["rx_status"] = lambda code: RX_STATUS_NAMES.get(code, code) if code else ""
# the dosage editor's modes, weekdays and step units, for templates/doctor/_dosage.html
_env.globals["editor"] = dosage_editor


@dataclass
class Web:
    """What a page handler gets: the request, its form, the logged-in caller, the services."""

    request: Request
    form: FormData
    caller: Caller
    service: PLLService
    #: a refused form's fields as sent, and its messages by field (see the module doc)
    values: dict[str, str] | None = None
    errors: dict[str, str] | None = None
    #: the patients this request has read and logged: a page view is one record in the
    #: patient's access log, whatever else the page (its banner, its notes) then reads
    reads: ReadLog = field(default_factory=ReadLog)
    #: the basis a page implies for every patient it is about, instead of asking for one:
    #: the care unit's chart (``/kurve``), whose use cases admit only the unit's patients
    implied: Basis | None = None

    @property
    def session(self) -> dict[str, Any]:
        """The cookie's session: the login's handle and the anti-forgery token only."""
        return self.request.session

    @property
    def memory(self) -> dict[str, Any]:
        """What the pages remember for this login, kept on the server
        (:mod:`pll.services.logins`): bases stated, patients opened, notices to show."""
        return memory_of(self.request)

    @property
    def state(self) -> Any:
        return self.request.app.state

    @property
    def role(self) -> Role:
        return self.caller.actor.role

    def path_id(self, name: str) -> str:
        return check_id(self.request.path_params[name], name)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def fields(self, name: str) -> list[str]:
        return [v.strip() for v in self.form.getlist(name) if isinstance(v, str)]

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()

    def access(
        self,
        patient_id: str | None = None,
        *,
        override: str | None = None,
        accepted: frozenset[str] | None = None,
    ) -> Access:
        """The caller's access, as the API builds it per request. Doctors and nurses read a
        patient on the basis they stated for that patient (DESIGN §3 rule 5); without one
        the page asks for it first (:class:`NeedsBasis`), and nothing is read. A multidose
        pharmacy works under its treatment relationship; the policy checks that it is the
        patient's registered pharmacy wherever that matters (packing, proposals)."""
        basis = None
        if self.caller.actor.hpr is not None:
            chosen = self.memory.get("basis", {}).get(patient_id) if patient_id else None
            if chosen:
                basis = Basis(chosen)
            elif self.implied is not None:
                basis = self.implied
            elif patient_id and self.role in CLINICIANS:
                raise NeedsBasis(patient_id)
            else:
                basis = Basis.TREATMENT
        return Access(
            self.caller.actor,
            basis,
            self.caller.client_id,
            override,
            accepted if override else None,
            reads=self.reads,
        )

    def has_basis(self, patient_id: str) -> bool:
        return (
            self.caller.actor.hpr is None
            or self.implied is not None
            or patient_id in self.memory.get("basis", {})
        )

    def set_basis(self, patient_id: str, basis: Basis) -> None:
        chosen = dict(self.memory.get("basis", {}))
        chosen.pop(patient_id, None)
        chosen[patient_id] = basis.value
        self.memory["basis"] = dict(list(chosen.items())[-REMEMBERED:])

    def opened(self, patient_id: str, number: str) -> None:
        """Remember the fødselsnummer of a patient opened, for headings and "recent"."""
        patients = dict(self.memory.get("patients", {}))
        patients.pop(patient_id, None)
        patients[patient_id] = number
        self.memory["patients"] = dict(list(patients.items())[-REMEMBERED:])

    def fnr(self, patient_id: str) -> str:
        return str(self.memory.get("patients", {}).get(patient_id, ""))

    def notice(self, text: str) -> None:
        self.memory.setdefault("notices", []).append(text)

    def notice_findings(self, found: Sequence[Finding]) -> None:
        """What decision support found in a change just saved, as notices styled by
        severity (not as the success notice): the first :data:`NOTICED_FINDINGS`, most
        severe first, each once, and how many more there were. Only a change sent from the
        findings page (its form carries :data:`SEEN`) had its findings shown before the
        save; warnings alone do not stop a renewal, a dose change or a reconciliation, so
        for those the notices are the first word of them, and say so of the rest."""
        ordered = sorted(dict.fromkeys(found), key=lambda f: _SEVERITIES.index(f.severity))
        for finding in ordered[:NOTICED_FINDINGS]:
            self.memory.setdefault("notices", []).append(
                {"level": finding.severity.value, "text": finding.message}
            )
        if len(ordered) > NOTICED_FINDINGS:
            more = len(ordered) - NOTICED_FINDINGS
            if self.field(SEEN) == "1":
                self.notice(
                    f"Merk: {more} funn til er ikke gjentatt her; de ble vist før du lagret."
                )
            else:
                self.notice(
                    f"Merk: beslutningsstøtten fant {more} funn til i endringen; bare de "
                    f"{NOTICED_FINDINGS} viktigste er vist her."
                )

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        """The page, with the patient banner when it is about a patient and the emergency
        banner while the worker reads anyone on an emergency basis (:mod:`pll.web.banner`);
        a refused form with what was typed and its messages (see the module doc)."""
        context |= banner_context(self, context)
        if self.errors is not None:  # a refused form: what was typed, not the defaults
            context |= {"values": self.values or {}, "errors": self.errors}
        return render(self.request, template, status, caller=self.caller, **context)

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        # 303: the browser follows a form post with a GET (post/redirect/get)
        return RedirectResponse(url, status_code=303)


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    memory = memory_of(request)
    notices = memory.pop("notices", [])
    html = _env.get_template(template).render(
        # on every page while the login reads a patient on an emergency basis (rule 5)
        emergency_reads=emergencies_of(memory),
        csrf=csrf_token(request) if "session" in request.scope else "",
        csrf_field=CSRF_FIELD,
        notices=notices,
        role_names=ROLE_NAMES,
        dev_login=getattr(request.app.state, "dev_login", False),
        **context,
    )
    return HTMLResponse(
        html,
        status,
        headers={
            # pages are private and change with every write: never cached, and never
            # framed but by the journal system that launched this login (pll.web.embedding)
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            **frame_headers(
                memory.get(EMBEDDED_BY), getattr(request.app.state, "embed_origins", {})
            ),
        },
    )


def _status(error: DomainError) -> int:
    return next((code for kind, code in STATUS if isinstance(error, kind)), 400)


def norwegian(error: DomainError) -> str:
    """What a page says of a refusal. The domain and the services answer the API in English
    (journal systems match on the text); a refusal a person can cause on a page carries its
    Norwegian in :attr:`DomainError.norwegian`, or is one of the access policy's or the
    case rules' refusals, which keep theirs beside the English. The web layer's own
    refusals are written in Norwegian."""
    return (
        error.norwegian
        or in_norwegian(error.message)
        or case_in_norwegian(error.message)
        or not_found(error)
        or error.message
    )


#: The key in ``errors`` of a refusal that names no field of the form (summary only).
FORM_WIDE = "_skjema"
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def field_of(expression: str | None, sent: Mapping[str, str]) -> str:
    """The form field a refusal is about: its ``expression`` when that is a field name (or
    a field name followed by a path, ``fnr.value``), else :data:`FORM_WIDE`. A field not
    sent (a radio group left unchosen) counts when the expression is a bare field name."""
    where = expression or ""
    name = re.split(r"[.\[]", where, maxsplit=1)[0]
    if name in sent or (name == where and _FIELD_NAME.fullmatch(name)):
        return name
    return FORM_WIDE


def refused_form(web: Web, show: Page | None, error: DomainError) -> Response:
    """The form again, as the user sent it, with the refusal beside its field (DESIGN §3
    rule 8: nothing changed, the input kept). ``show`` is the page that shows the form; if
    there is none, or it cannot be shown any more (the entry is gone), the refusal gets the
    error page."""
    if show is None or web.request.method != "POST":
        return error_page(web.request, error, web.caller, web=web)
    sent: dict[str, str] = {}
    for key, value in web.form.multi_items():
        if isinstance(value, str) and key != CSRF_FIELD:
            sent.setdefault(key, value)
    web.values = sent
    web.errors = {field_of(error.expression, sent): norwegian(error)}
    for message, where in error.others:  # more of the same form's faults, each at its field
        web.errors.setdefault(field_of(where, sent), message)
    try:
        answer = show(web)
    except DomainError:
        return error_page(web.request, error, web.caller, web=web)
    count_refusal(error)
    answer.status_code = _status(error)
    return answer


def error_page(
    request: Request,
    error: DomainError,
    caller: Caller | None,
    *,
    status: int | None = None,
    back: str | None = None,
    web: Web | None = None,
) -> HTMLResponse:
    """The error page. With ``web``, the page a handler was making (blocking: it may read
    the patient banner, :func:`~pll.web.banner.error_banner`)."""
    status = status or _status(error)
    count_refusal(error)  # those made outside a use case; each is counted once
    return render(
        request,
        "error.html",
        status,
        caller=caller,
        code=status,
        message=norwegian(error),
        where=error.expression,
        refused=isinstance(error, Forbidden),
        back=back,
        chart_back=chart_back(request.url.path),
        **(error_banner(web, error) if web is not None else {}),
    )


def unavailable_page(
    request: Request, error: DatabaseUnavailable, caller: Caller | None
) -> HTMLResponse:
    """503 while the database cannot be reached (its server is down, or a standby is taking
    over, docs/operations.md): what may have happened to what was sent."""
    if request.method in SAFE_METHODS:
        message = (
            "Databasen svarer ikke akkurat nå (tjeneren er nede, eller en reserve tar over). "
            "Last siden på nytt om litt."
        )
    elif error.maybe_done:
        message = (
            "Forbindelsen til databasen ble brutt mens endringen ble lagret, så den kan være "
            "gjort eller ikke. Åpne siden på nytt og se etter før du prøver igjen."
        )
    else:
        message = (
            "Databasen svarer ikke akkurat nå (tjeneren er nede, eller en reserve tar over); "
            "ingenting ble endret. Prøv igjen om litt."
        )
    log.warning("database unavailable on %s %s", request.method, request.url.path)
    page = error_page(request, DomainError(message), caller, status=503)
    page.headers["Retry-After"] = "1"
    return page


_CHART_PAGE = re.compile(r"/kurve/([A-Za-z0-9\-]{1,64})(/.*)?")


def chart_back(path: str) -> tuple[str, str] | None:
    """The way back for an error met on a ``/kurve`` page: a page of a patient's chart goes
    back to that chart, the chart itself to the unit's patients (``(link, words)``)."""
    found = _CHART_PAGE.fullmatch(path)
    if found is None:
        return None
    if found[2] and found[2] != "/":
        return f"/kurve/{found[1]}", "Tilbake til kurven"
    return "/kurve", "Til enhetens pasienter"


Page = Callable[[Web], Response]


async def _shown(request: Request, handler: Page, web: Web, new_web: Callable[[], Web]) -> Response:
    """The page's answer; a page that only reads (GET, HEAD) whose database connection was
    lost is read once more, on a connection made now (the pool has dropped those it had),
    from whichever server is the primary by then, as the API's reads are
    (:mod:`pll.api.http`). A form sent is never sent again by the server: it may be made."""
    try:
        return await _show(request, handler, web)
    except DatabaseUnavailable as exc:
        if request.method not in SAFE_METHODS:
            raise
        log.warning(
            "database unavailable on %s %s (%s); trying once more",
            request.method,
            request.url.path,
            type(exc.__cause__).__name__ if exc.__cause__ else exc,
        )
        return await _show(request, handler, new_web())


async def _show(request: Request, handler: Page, web: Web) -> Response:
    pid = request.path_params.get("pid")
    if pid is not None and not request.url.path.startswith("/grunnlag/"):
        # a patient's page: the basis first, whatever the page then reads
        web.access(check_id(pid, "pid"))
    return await run_in_threadpool(handler, web)


def page(
    handler: Page,
    *,
    roles: frozenset[Role] | None = None,
    form: Page | None = None,
    implied: Basis | None = None,
) -> Callable[[Request], Any]:
    """Wrap a page handler: login, anti-forgery check, roles, errors (see the module doc).
    ``form`` is the page that shows the form ``handler`` receives: a refused form is shown
    again by it (:func:`refused_form`). ``implied`` is the basis of every access the page
    makes (:attr:`Web.implied`), for pages whose use cases admit only patients the caller
    has that relation to."""
    show = form  # ``form`` below is the request's form data

    async def run(request: Request) -> Response:
        caller = await caller_of(request)
        if caller is None:
            if request.method == "GET":
                request.session[AFTER_LOGIN] = request.url.path
            return RedirectResponse("/logg-inn", status_code=303)
        form = FormData()
        if request.method == "POST":
            form = await request.form(max_fields=MAX_FORM_FIELDS, max_part_size=MAX_PART)
            sent = form.get(CSRF_FIELD)
            expected = request.session.get(CSRF_FIELD)
            if not (
                isinstance(sent, str)
                and isinstance(expected, str)
                and hmac.compare_digest(sent.encode(), expected.encode())
            ):
                return error_page(
                    request,
                    Forbidden(
                        "Skjemaet kunne ikke sendes: det mangler et gyldig sikkerhetsmerke "
                        "(CSRF). Last siden på nytt og prøv igjen; ingenting ble endret.",
                    ),
                    caller,
                )
        if roles is not None and caller.actor.role not in roles:
            return error_page(
                request,
                Forbidden(
                    f"Denne siden er ikke for {ROLE_NAMES[caller.actor.role]}. "
                    "Gå til forsiden for dine sider."
                ),
                caller,
            )
        service: PLLService = request.app.state.service
        web = Web(request, form, caller, service, implied=implied)
        try:
            answer = await _shown(
                request, handler, web, lambda: Web(request, form, caller, service, implied=implied)
            )
        except NeedsBasis as exc:
            pid = exc.patient_id
            after = request.url.path if request.method == "GET" else f"/lege/pasient/{pid}"
            answer = RedirectResponse(f"/grunnlag/{pid}?neste={quote(after)}", status_code=303)
        except (InvalidInput, Conflict) as exc:
            answer = await run_in_threadpool(refused_form, web, show, exc)
        except DomainError as exc:
            answer = await run_in_threadpool(error_page, request, exc, caller, web=web)
        except DatabaseUnavailable as exc:
            answer = unavailable_page(request, exc, caller)
        except Exception:
            incident = str(uuid.uuid4())
            log.exception("internal error %s on %s %s", incident, request.method, request.url)
            answer = error_page(
                request,
                DomainError(f"Noe gikk galt hos oss (hendelse {incident}); ingenting ble endret."),
                caller,
                status=500,
            )
        finally:
            await form.close()
        await run_in_threadpool(keep_memory, request)
        return answer

    run.__name__ = handler.__name__
    return run


def doctors(handler: Page, *, form: Page | None = None) -> Callable[[Request], Any]:
    return page(handler, roles=CLINICIANS, form=form)


def require(condition: bool, message: str, where: str | None = None) -> None:
    """Refuse a form that lacks what the page needs, before any service is called."""
    if not condition:
        raise InvalidInput(message, where)


def one_of(value: str, allowed: Mapping[str, Any], what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"Ukjent {what}: {value[:40]!r}.", what)
    return value

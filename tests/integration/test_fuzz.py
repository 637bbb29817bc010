"""Fuzzing every route ``/fhir/metadata`` lists (issue 15; DESIGN §3 rule 8).

Hypothesis sends mutated resources (elements dropped, given the wrong type, replaced by
random JSON, nested resources of no known type), deep and huge JSON, random bytes, odd
content types, bad or hostile headers and ids to every interaction and operation of the
CapabilityStatement, as the personas and as nobody. It fails on any 5xx, on any 4xx under
``/fhir`` that is not an OperationOutcome, and on any answer slower than :data:`SLOW`.

Bounded for the suite (``PLL_FUZZ_EXAMPLES`` examples per database, 1,200 by default, with a
fixed seed so a failure comes back the same); run it longer with, say,
``PLL_FUZZ_EXAMPLES=5000 PLL_FUZZ_RANDOM=1 .venv/bin/pytest tests/integration/test_fuzz.py
-s``, which prints the count of requests per status.
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from pll.api.fhir.routes import ROUTES
from pll.config import DEFAULT_MAX_BODY
from tests.conftest import LiveServer
from tests.integration.builders import (
    DRUGS,
    block_consent,
    new_patient_with_list,
    ok,
    patient,
    prescription,
    statement,
)

#: An answer slower than this fails the test: far above any request's normal cost, and
#: still short enough that a request whose work is not bounded shows.
SLOW = 10.0
EXAMPLES = int(os.environ.get("PLL_FUZZ_EXAMPLES", "1200"))
GROWTH = st.integers(50, 3000)
PERSONAS = ["gp", "gp", "gp", "hospital-doctor", "nurse", "pharmacist", "patient", None]
COUNTS: Counter[str] = Counter()


@dataclass
class Scene:
    """Real ids for the paths, so mutated requests reach the handlers' deeper checks."""

    pid: str
    list_id: str
    entry: str
    rx: str
    fnr: str


@pytest.fixture
def scene(server: LiveServer) -> Scene:
    with server.client() as gp:
        fnr = patient()["identifier"][0]["value"]
        pid, list_id = new_patient_with_list(gp, fnr)
        rx = ok(
            gp.post("/fhir/MedicationRequest", json=prescription(f"Patient/{pid}", *DRUGS[0])), 201
        )
        entry = ok(
            gp.post(
                "/fhir/MedicationStatement",
                json=statement(
                    f"Patient/{pid}", *DRUGS[0], based_on=[f"MedicationRequest/{rx['id']}"]
                ),
            ),
            201,
        )
    return Scene(pid, list_id, entry["id"], rx["id"], fnr)


def _routes() -> list[tuple[str, str]]:
    """Every route, checked against what the CapabilityStatement lists."""
    return sorted({(r.method, r.path) for r in ROUTES})


def test_the_fuzzed_routes_are_what_metadata_lists(server: LiveServer) -> None:
    statement_ = httpx.get(f"{server.base}/fhir/metadata").json()
    listed = {
        (resource["type"], code)
        for resource in statement_["rest"][0]["resource"]
        for code in [i["code"] for i in resource.get("interaction", [])]
        + [o["name"] for o in resource.get("operation", [])]
    }
    routed = {(r.rtype, r.interaction or r.operation) for r in ROUTES if r.rtype}
    assert listed == routed


def _seed(method: str, path: str, s: Scene) -> Any:
    """A body the route would take (or close to it), for the mutations to start from."""
    subject = f"Patient/{s.pid}"
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueString": "x"}],
    }
    if method in ("GET", "DELETE"):
        return None
    if path == "/fhir":
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": statement(subject, *DRUGS[1]),
                    "request": {"method": "POST", "url": "MedicationStatement"},
                }
            ],
        }
    seeds: dict[str, Any] = {
        "/fhir/Patient": patient(),
        "/fhir/List": {
            "resourceType": "List",
            "status": "current",
            "mode": "working",
            "subject": {"reference": subject},
        },
        "/fhir/MedicationStatement": statement(subject, *DRUGS[2]),
        "/fhir/MedicationStatement/{id}": statement(subject, *DRUGS[0]) | {"id": s.entry},
        "/fhir/MedicationRequest": prescription(subject, *DRUGS[3]),
        "/fhir/MedicationRequest/{id}": prescription(subject, *DRUGS[0]) | {"id": s.rx},
        "/fhir/Consent": block_consent("565501872", s.pid),
        "/fhir/AllergyIntolerance": {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": subject},
            "code": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "J01CA04"}],
                "text": "Amoksicillin",
            },
        },
        "/fhir/Task": {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "focus": {"reference": f"List/{s.list_id}"},
            "for": {"reference": subject},
            "description": "Feil dose",
        },
        "/fhir/Subscription": {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "x",
            "criteria": f"List?patient={s.pid}",
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"},
        },
        "/fhir/MedicationDispense": {
            "resourceType": "MedicationDispense",
            "status": "completed",
            "subject": {"reference": subject},
            "authorizingPrescription": [{"reference": f"MedicationRequest/{s.rx}"}],
            "medicationCodeableConcept": {"text": DRUGS[0][0]},
            "quantity": {"value": 30, "unit": "tablett"},
            "whenHandedOver": "2026-12-01T10:00:00+01:00",
        },
        "/fhir/List/$check": {"resourceType": "Bundle", "type": "transaction", "entry": []},
        "/fhir/Patient/$getMedication": {
            "resourceType": "Parameters",
            "parameter": [
                {
                    "name": "patientIdentifier",
                    "valueIdentifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": s.fnr},
                }
            ],
        },
    }
    return seeds.get(path, parameters)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(
        ["", "Patient", "Foo", "2026-13-45", 'W/"1"', "<script>", "../../etc", "\u0000"]
    )
)
JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=12)
            | st.sampled_from(["resourceType", "id", "meta", "entry", "resource"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
NESTED = st.sampled_from(
    [
        {"resourceType": "Foo"},
        {"resourceType": 1},
        {},
        {"resourceType": "Resource"},
        {"resourceType": "Patient", "contained": [{"resourceType": []}]},
    ]
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*here, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*here, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """The seed with a few elements dropped, replaced, wrapped, nested in a Bundle, turned
    into strings, or grown to thousands."""
    if seed is None:
        seed = {"resourceType": "Parameters"}
    value = orjson.loads(orjson.dumps(seed))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(_paths(value)))
        if not where:
            if draw(st.booleans()):
                value = copy.deepcopy(draw(JSON))
            continue
        parent = value
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["drop", "replace", "wrap", "nest", "stringify", "grow"]))
        _mutate(draw, parent, where[-1], action)
        if action == "grow":
            break  # its copies are one object many times over: mutate no further
    return value


def _mutate(draw: st.DrawFn, parent: Any, key: Any, action: str) -> None:
    if action == "grow":
        # many of one element (entries, parameters, dosages, items ...): work that is not
        # bounded by the size of what it is given shows as a slow answer
        many = draw(GROWTH)
        if isinstance(parent, list):
            parent.extend([parent[key]] * many)
        elif isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key] * many
        else:
            parent[key] = [parent[key]] * many
    elif action == "drop":
        del parent[key]
    elif action == "replace":
        parent[key] = copy.deepcopy(draw(JSON))
    elif action == "wrap":
        parent[key] = [parent[key]]
    elif action == "nest":
        nested = copy.deepcopy(draw(NESTED))
        parent[key] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": nested}],
        }
    else:
        parent[key] = str(parent[key])


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BODIES = {
    "deep": st.integers(50, 5000).map(_deep),
    "deep-object": st.integers(50, 3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    "huge-string": st.integers(1, 3).map(
        lambda m: b'{"resourceType":"Patient","id":"' + b"a" * (m * 1_000_000) + b'"}'
    ),
    "too-large": st.just(b'{"resourceType":"Patient","x":"' + b"a" * (11 * 1024 * 1024) + b'"}'),
    "wide": st.integers(1000, 100_000).map(lambda n: b"[" + b"1," * n + b"1]"),
    "bytes": st.binary(max_size=200),
    "text": st.text(max_size=200).map(str.encode),
    "empty": st.just(b""),
}
CONTENT_TYPES = st.sampled_from(
    [
        "application/fhir+json",
        "application/fhir+json",
        "application/json",
        "application/fhir+json; charset=latin-1",
        "application/fhir+xml",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "",
        "*/*; q=0.1;;",
        "application/fhir+json; fhirVersion=3.0",
    ]
)
#: what HTTP allows in a field value (RFC 9110 §5.5: visible ASCII, space, obs-text); a
#: request with anything else is refused by the HTTP server itself, before PLL sees it
HEADER_VALUE = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=60
).map(str.strip)
ODD_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "If-Match",
            "X-Provenance",
            "X-PLL-Access-Basis",
            "Prefer",
            "X-PLL-Override",
            "X-PLL-Override-Findings",
            "DPoP",
            "Accept",
            "If-None-Match",
            "Range",
        ]
    ),
    HEADER_VALUE
    | st.sampled_from(
        [
            'W/"1"',
            'W/"999999999999"',
            '"1"',
            "*",
            "HPAKUTT",
            "return=OperationOutcome",
            '{"resourceType":"Provenance","reason":[{"text":"' + "x" * 5000 + '"}]}',
        ]
    ),
    max_size=3,
)
ID = st.sampled_from(
    [
        "{real}",
        "{real}",
        "{real}",
        "does-not-exist",
        "a" * 65,
        "..",
        "%2F..%2F",
        "æøå",
        "1;DROP",
        "-" * 64,
        "0",
    ]
)
ID = st.one_of(st.just("{real}"), st.just("{real}"), ID, st.text(max_size=70))
QUERY = st.dictionaries(
    st.sampled_from(
        [
            "patient",
            "_count",
            "_offset",
            "_include",
            "_upto",
            "identifier",
            "name",
            "code",
            "status",
            "date",
            "from",
            "to",
            "owner",
            "substance",
            "foo",
            "patient.identifier",
        ]
    ),
    st.text(max_size=30)
    | st.sampled_from(
        [
            "-1",
            "0",
            "99999999999999999999",
            "List:item",
            "urn:oid:2.16.578.1.12.4.1.4.1|",
            "Patient/x",
        ]
    ),
    max_size=3,
)


@st.composite
def requests(
    draw: st.DrawFn, s: Scene
) -> tuple[str, str, dict[str, str], bytes | None, dict[str, str], str | None]:
    method, path = draw(st.sampled_from(_routes()))
    ids = {
        "List": s.list_id,
        "Patient": s.pid,
        "MedicationStatement": s.entry,
        "MedicationRequest": s.rx,
    }
    rtype = path.split("/")[2] if path.count("/") >= 2 else ""
    real = ids.get(rtype, s.pid)
    url = path.replace("{id}", quote(draw(ID), safe="%{}").replace("{real}", real)).replace(
        "{vid}", draw(st.sampled_from(["1", "2", "0", "x", "99999999999"]))
    )
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "seed", *BODIES]))
    body: bytes | None
    if kind == "seed":
        seed = _seed(method, path, s)
        body = None if seed is None else orjson.dumps(seed)
    elif kind == "mutated":
        # the standard library, as it writes integers past 64 bits (orjson refuses them)
        body = json.dumps(draw(mutated(_seed(method, path, s)))).encode()
    else:
        body = draw(BODIES[kind])
    headers = draw(ODD_HEADERS)
    headers["Content-Type"] = draw(CONTENT_TYPES)
    if method in ("PUT",) and "If-Match" not in headers and draw(st.booleans()):
        headers["If-Match"] = 'W/"1"'
    return method, url, draw(QUERY), body, headers, draw(st.sampled_from(PERSONAS))


def _token(server: LiveServer, persona: str | None, s: Scene) -> str | None:
    if persona is None:
        return None
    return server.token(persona, s.fnr if persona == "patient" else None)


@pytest.mark.slow
def test_no_route_answers_5xx_or_a_non_outcome_or_slowly(server: LiveServer, scene: Scene) -> None:
    client = httpx.Client(base_url=server.base, timeout=SLOW)
    COUNTS.clear()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("PLL_FUZZ_RANDOM") != "1",
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(requests(scene))
    def one(
        request: tuple[str, str, dict[str, str], bytes | None, dict[str, str], str | None],
    ) -> None:
        method, url, query, body, headers, persona = request
        headers = dict(headers)
        token = _token(server, persona, scene)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
            if persona != "patient":
                headers.setdefault("X-PLL-Access-Basis", "HPBEHANDLINGSRELASJON")
        try:
            r = client.request(
                method,
                url,
                params=query,
                content=body,
                # as bytes: httpx would encode text as ASCII, and HTTP carries latin-1
                headers={k: v.encode("latin-1") for k, v in headers.items()},
            )
        except (httpx.LocalProtocolError, httpx.InvalidURL):
            reject()  # not sendable: the client library refuses it, no server sees it
        except httpx.TimeoutException:
            pytest.fail(f"{method} {url}: no answer within {SLOW} s")
        except httpx.RemoteProtocolError:
            # the server closes a connection whose body it refused unread (413); any other
            # connection it drops is a failure
            if body is None or len(body) <= DEFAULT_MAX_BODY:
                raise
            COUNTS["closed"] += 1
            return
        COUNTS[str(r.status_code)] += 1
        assert r.status_code < 500, f"{method} {url} -> {r.status_code}: {r.text[:500]}"
        path = url.split("?")[0]
        if r.status_code >= 400 and path.startswith("/fhir"):
            assert r.headers.get("content-type", "").startswith("application/fhir+json"), (
                f"{method} {url} -> {r.status_code} as {r.headers.get('content-type')}"
            )
            data = r.json()
            assert data.get("resourceType") == "OperationOutcome", data
            assert data["issue"], data

    try:
        one()
    finally:
        client.close()
        total = sum(COUNTS.values())
        print(f"\nfuzz: {total} requests; by status: {dict(sorted(COUNTS.items()))}")  # noqa: T201

"""The record of accepted DPoP proofs that every server process shares (RFC 9449 §11.1), on
both databases: each proof is recorded once however many processes try at the same moment,
old proofs are pruned in bounded batches, and a database that cannot answer refuses."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import SQLAlchemyError

from pll.auth.dpop import DPoPVerifier, make_proof
from pll.domain.errors import Unauthenticated
from pll.store.db import Database
from pll.store.dpop_proofs import AcceptedProofs
from pll.store.schema import dpop_proof

#: any moment: the store takes the time only from its callers
NOW = 1_767_225_600.0
URL = "https://pll.example.no/fhir/MedicationStatement"

Processes = Callable[[], AcceptedProofs]


@pytest.fixture
def process(database: Database) -> Iterator[Processes]:
    """Makes the record as one more server process would: its own engine and pool."""
    made: list[AcceptedProofs] = []

    def new() -> AcceptedProofs:
        made.append(AcceptedProofs(database.url))
        return made[-1]

    yield new
    for store in made:
        store.dispose()


def digest() -> bytes:
    return os.urandom(32)


def stored(database: Database, *digests: bytes) -> int:
    with database.read() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(dpop_proof)
            .where(dpop_proof.c.digest.in_(digests))
        ).scalar_one()


def test_a_proof_is_recorded_once_for_every_process(database: Database, process: Processes) -> None:
    first, second = process(), process()
    proof = digest()
    assert first.remember(proof, NOW + 65, NOW) is True
    assert first.remember(proof, NOW + 65, NOW) is False
    assert second.remember(proof, NOW + 65, NOW) is False
    assert second.remember(digest(), NOW + 65, NOW) is True
    assert stored(database, proof) == 1


def test_of_processes_recording_the_same_proof_at_once_exactly_one_succeeds(
    process: Processes,
) -> None:
    stores = [process() for _ in range(4)]

    def race(proof: bytes) -> list[bool]:
        start = threading.Barrier(12)
        results: list[bool] = []

        def attempt(store: AcceptedProofs) -> None:
            start.wait()
            results.append(store.remember(proof, NOW + 65, NOW))

        threads = [threading.Thread(target=attempt, args=(stores[i % 4],)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    for _ in range(5):
        assert sorted(race(digest())) == [False] * 11 + [True]


def test_a_proof_accepted_by_one_verifier_is_refused_by_another(process: Processes) -> None:
    """Two server processes, each with its own verifier and connection pool."""
    key = ec.generate_private_key(ec.SECP256R1())
    first, second = (DPoPVerifier(shared=process()) for _ in range(2))
    proof = make_proof(key, method="POST", url=URL, access_token="token")
    first.verify(proof, method="POST", url=URL, access_token="token", jkt=None)
    with pytest.raises(Unauthenticated, match="used before"):
        second.verify(proof, method="POST", url=URL, access_token="token", jkt=None)


def test_old_proofs_are_pruned_in_bounded_batches_once_past_the_clock_margin(
    database: Database, process: Processes
) -> None:
    with database.write() as conn:
        conn.execute(sa.delete(dpop_proof))
    store = process()
    store.PRUNE_BATCH = 2
    store.PRUNE_INTERVAL = 1e9  # only the prunes the test asks for
    margin = store.CLOCK_MARGIN
    old = [digest() for _ in range(3)]
    for proof in old:
        store.remember(proof, NOW - margin - 10, NOW - 100)
    recent, live = digest(), digest()
    store.remember(recent, NOW - margin + 10, NOW)  # too old, but within the margin
    store.remember(live, NOW + 65, NOW)
    assert store.prune(NOW) == 2
    assert store.prune(NOW) == 1
    assert store.prune(NOW) == 0
    assert stored(database, *old) == 0
    assert stored(database, recent, live) == 2


def test_recording_proofs_prunes_now_and_then(database: Database, process: Processes) -> None:
    store = process()
    first = digest()
    store.remember(first, NOW + 65, NOW)
    later = NOW + 65 + store.CLOCK_MARGIN + 1
    # within the prune interval of the last prune, nothing is deleted ...
    store.remember(digest(), later + 65, NOW + store.PRUNE_INTERVAL / 2)
    assert stored(database, first) == 1
    # ... but the next proof after it takes the old ones with it
    store.remember(digest(), later + 65, later)
    assert stored(database, first) == 0


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres@127.0.0.1:1/nothing", "sqlite:////nonexistent-folder/pll.sqlite3"],
)
def test_a_database_that_cannot_answer_refuses_the_proof(url: str) -> None:
    store = AcceptedProofs(url)
    try:
        with pytest.raises(SQLAlchemyError):
            store.remember(digest(), NOW + 65, NOW)
        key = ec.generate_private_key(ec.SECP256R1())
        proof = make_proof(key, method="GET", url=URL, access_token="token")
        with pytest.raises(Unauthenticated, match="cannot check now"):
            DPoPVerifier(shared=store).verify(
                proof, method="GET", url=URL, access_token="token", jkt=None
            )
    finally:
        store.dispose()

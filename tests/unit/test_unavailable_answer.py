"""What a 503 for a lost database tells the client to do (issue 21): a read may simply be
repeated, a change with its If-Match too, but a create that may have been made must be
looked for first — sent again blindly it would be made twice."""

import json

from pll.api.http import unavailable_response
from pll.store.db import DatabaseUnavailable


def _said(method: str, *, maybe_done: bool, reads: bool = False) -> str:
    response = unavailable_response(
        method, DatabaseUnavailable("lost", maybe_done=maybe_done), reads=reads
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    outcome = json.loads(bytes(response.body))
    return str(outcome["issue"][0]["diagnostics"])


def test_a_read_was_neither_read_nor_changed() -> None:
    assert "nothing was changed" in _said("GET", maybe_done=True)
    assert "nothing was changed" in _said("POST", maybe_done=True, reads=True)


def test_a_change_with_if_match_may_be_sent_again() -> None:
    assert "same If-Match" in _said("PUT", maybe_done=True)


def test_a_create_that_may_have_been_made_is_looked_for_first() -> None:
    said = _said("POST", maybe_done=True)
    assert "Read the list first" in said
    assert "If-Match" not in said


def test_a_change_that_never_reached_the_server_changed_nothing() -> None:
    assert "nothing was changed" in _said("POST", maybe_done=False)

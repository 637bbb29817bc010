"""The API's search parameters: read as ``parse_qsl`` reads them, also where the hot reads'
queries take the shortcut of plain splitting (pll.api.http.query_params)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from pll.api.http import query_params

#: the characters that make a query: separators, escapes and what FHIR ids and tokens use
QUERY = st.text(alphabet="ab=&;:|%+2F._-/ æ", max_size=40)


@given(QUERY)
def test_as_parse_qsl_reads_them(raw: str) -> None:
    assert query_params(raw) == dict(parse_qsl(raw, keep_blank_values=True))


def test_the_hot_reads_query() -> None:
    raw = "patient=4b1c0f6e-1d2a-4a51-9a4e-8f3d2f6a7b10&_include=List:item"
    assert query_params(raw) == {
        "patient": "4b1c0f6e-1d2a-4a51-9a4e-8f3d2f6a7b10",
        "_include": "List:item",
    }

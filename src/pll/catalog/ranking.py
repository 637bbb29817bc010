"""How drug search orders what it found (issue 16: "ranked by relevance: exact name, then
prefix, strength as typed"). Pure: words in, a sort key out.

A doctor types the start of a brand ("Imov"), a brand and a strength ("Paracet 500"), a form
and a strength ("Tab 100") or a substance ("zopiklon"). Every typed word must begin a word of
the drug's name or of one of its substances' names; among those drugs:

1. the name is what was typed ("Imovane Tab 5 mg");
2. the name begins with what was typed ("Imovane" → "Imovane Tab 5 mg");
3. the name's first word begins with the first word typed ("Parac 500" → "Paracet Tab …");
4. the typed words are elsewhere in the name ("Tab 100");
5. the typed words name a substance of the drug ("zopiklon" → "Imovane Tab 5 mg");

and within each tier, the more typed words that are whole words of the name, the earlier:
"100" is all of the word "100" in "Tab 100 mg" but only the start of "1000" in "Tab 1000 mg",
so the strength typed comes first.
"""

from __future__ import annotations

from collections.abc import Sequence

EXACT, PREFIX, FIRST_WORD, WORDS, SUBSTANCE = range(5)


def matches(typed: Sequence[str], name: Sequence[str], substances: Sequence[str] = ()) -> bool:
    """Whether every typed word begins a word of the name or of the substances."""
    have = [*name, *substances]
    return all(any(w.startswith(t) for w in have) for t in typed)


def tier(typed: Sequence[str], name: Sequence[str]) -> int:
    """The tier (see the module doc) of a drug that :func:`matches`."""
    if not typed:
        return WORDS
    if list(typed) == list(name):
        return EXACT
    head = len(typed) - 1
    if (
        len(name) >= len(typed)
        and list(name[:head]) == list(typed[:head])
        and name[head].startswith(typed[head])
    ):
        return PREFIX
    if name and name[0].startswith(typed[0]):
        return FIRST_WORD
    if all(any(w.startswith(t) for w in name) for t in typed):
        return WORDS
    return SUBSTANCE


def key(typed: Sequence[str], name: Sequence[str]) -> tuple[int, int]:
    """Sort key: the tier, then fewer typed words that are whole words of the name last."""
    whole = sum(1 for t in typed if t in name)
    return tier(typed, name), -whole

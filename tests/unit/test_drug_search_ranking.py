"""Drug search ranking (issue 16: "exact name, then prefix, strength as typed"), pure."""

from __future__ import annotations

from pll.catalog.fest import words
from pll.catalog.ranking import EXACT, FIRST_WORD, PREFIX, SUBSTANCE, WORDS, key, matches, tier


def ranked(query: str, names: list[str], substance: str = "") -> list[str]:
    typed = words(query)
    found = [n for n in names if matches(typed, words(n), words(substance))]
    return sorted(found, key=lambda n: (key(typed, words(n)), n))


def test_the_strength_typed_comes_before_a_longer_number() -> None:
    names = ["Abc Tab 1000 mg", "Abc Tab 100 mg", "Abd Tab 10 mg", "Xyz Kaps 100 mg"]
    assert ranked("Tab 100", names) == ["Abc Tab 100 mg", "Abc Tab 1000 mg"]
    assert ranked("Paracet 100", ["Paracet Tab 1000 mg", "Paracet Tab 100 mg"]) == [
        "Paracet Tab 100 mg",
        "Paracet Tab 1000 mg",
    ]
    # a strength that begins no word of the name is no match
    assert ranked("Paracet 500", ["Paracet Tab 1000 mg", "Paracet Tab 500 mg"]) == [
        "Paracet Tab 500 mg"
    ]


def test_exact_then_prefix_then_first_word_then_words_then_substance() -> None:
    assert tier(words("Imovane Tab 5 mg"), words("Imovane Tab 5 mg")) == EXACT
    assert tier(words("Imovane"), words("Imovane Tab 5 mg")) == PREFIX
    assert tier(words("imovane t"), words("Imovane Tab 5 mg")) == PREFIX
    assert tier(words("Imov 5"), words("Imovane Tab 5 mg")) == FIRST_WORD
    assert tier(words("tab 5"), words("Imovane Tab 5 mg")) == WORDS
    assert tier(words("zopiklon"), words("Imovane Tab 5 mg")) == SUBSTANCE
    names = ["Paracetamol Nordfarma Tab 500 mg", "Paracet Tab 500 mg", "Pinex Paracet 500"]
    assert ranked("paracet", names) == [
        "Paracet Tab 500 mg",
        "Paracetamol Nordfarma Tab 500 mg",
        "Pinex Paracet 500",
    ]


def test_every_typed_word_must_begin_a_word_of_the_name_or_a_substance() -> None:
    assert ranked("imovane 7,5", ["Imovane Tab 5 mg", "Imovane Tab 7,5 mg"]) == [
        "Imovane Tab 7,5 mg"
    ]
    assert ranked("zopiklon 5", ["Imovane Tab 5 mg"], "Zopiklon") == ["Imovane Tab 5 mg"]
    assert ranked("zopiklon 10", ["Imovane Tab 5 mg"], "Zopiklon") == []
    # accents and case do not matter; a % is a character like any other, no wildcard
    assert ranked("LOCOÏD", ["Locoid Krem 1 mg/g"]) == ["Locoid Krem 1 mg/g"]
    assert words("%") == []
    assert ranked("_", ["Imovane Tab 5 mg"]) == []

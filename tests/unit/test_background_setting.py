"""Where the background work runs (``PLL_BACKGROUND``, issue 20): ``inline`` by default on
SQLite, ``process`` on PostgreSQL, ``external`` when asked, and a clear refusal of anything
else."""

from __future__ import annotations

import pytest

from pll.config import Settings


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("PLL_BACKGROUND", "PLL_DATABASE_URL", "PLL_DISPATCH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))


def test_the_default_is_inline_on_sqlite_and_a_process_on_postgresql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env()
    assert (settings.background, settings.inline) == ("inline", True)
    monkeypatch.setenv("PLL_DATABASE_URL", "postgresql://pll@db.example:5432/pll")
    settings = Settings.from_env()
    assert (settings.background, settings.inline) == ("process", False)


@pytest.mark.parametrize("value", ["inline", "process", "external", " External "])
def test_each_mode_may_be_chosen_on_either_database(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PLL_BACKGROUND", value)
    assert Settings.from_env().background == value.strip().lower()
    monkeypatch.setenv("PLL_DATABASE_URL", "postgresql://pll@db.example:5432/pll")
    assert Settings.from_env().background == value.strip().lower()


@pytest.mark.parametrize("value", ["none", "threads", "1", "in-line"])
def test_an_unknown_mode_is_refused_naming_the_variable_and_the_choices(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PLL_BACKGROUND", value)
    with pytest.raises(ValueError, match="PLL_BACKGROUND must be inline, process or external"):
        Settings.from_env()


def test_the_dispatcher_is_part_of_it_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLL_DATABASE_URL", "postgresql://pll@db.example:5432/pll")
    assert Settings.from_env().dispatches
    monkeypatch.setenv("PLL_DISPATCH", "0")
    assert not Settings.from_env().dispatches

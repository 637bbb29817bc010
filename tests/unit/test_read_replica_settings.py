"""Read replicas (issue 21): how ``PLL_READ_DATABASE_URL`` and ``PLL_READ_MAX_LAG`` are read,
and how a replica's lag is told from the primary's WAL positions (:class:`LagSamples`) — an
idle primary shows a caught-up replica as not lagging, however long nothing happens."""

from __future__ import annotations

import pytest

from pll.config import Settings
from pll.store.replicas import LagSamples, check_interval, parse_lsn

PRIMARY = "postgresql://pll@db1.example:5432/pll"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("PLL_DATABASE_URL", "PLL_READ_DATABASE_URL", "PLL_READ_MAX_LAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))


def test_replicas_are_urls_separated_by_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLL_DATABASE_URL", PRIMARY)
    assert Settings.from_env().read_database_urls == ()
    assert Settings.from_env().read_max_lag == 5.0
    replicas = (
        "postgresql://pll@db2.example:5432/pll \n"
        " postgresql+psycopg://pll:secret@db3.example,db4.example:5433/pll?sslmode=require"
    )
    monkeypatch.setenv("PLL_READ_DATABASE_URL", replicas)
    monkeypatch.setenv("PLL_READ_MAX_LAG", "0.5")
    settings = Settings.from_env()
    assert settings.read_database_urls == (
        "postgresql://pll@db2.example:5432/pll",
        "postgresql+psycopg://pll:secret@db3.example,db4.example:5433/pll?sslmode=require",
    )
    assert settings.read_max_lag == 0.5


@pytest.mark.parametrize(
    ("database", "replicas", "lag", "message"),
    [
        (None, "postgresql://pll@db2.example/pll", "", "need PostgreSQL"),
        (PRIMARY, "mysql://pll@db2.example/pll", "", "must be a PostgreSQL URL"),
        (PRIMARY, "db2.example:5432", "", "must be a PostgreSQL URL"),
        (PRIMARY, "postgresql://pll@db2.example/pll", "0", "PLL_READ_MAX_LAG must be"),
        (PRIMARY, "postgresql://pll@db2.example/pll", "soon", "PLL_READ_MAX_LAG must be"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, database: str | None, replicas: str, lag: str, message: str
) -> None:
    if database:
        monkeypatch.setenv("PLL_DATABASE_URL", database)
    monkeypatch.setenv("PLL_READ_DATABASE_URL", replicas)
    monkeypatch.setenv("PLL_READ_MAX_LAG", lag)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_wal_positions_compare_as_numbers() -> None:
    assert parse_lsn("0/0") == 0
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")


def test_a_replica_that_replayed_all_the_primary_holds_does_not_lag_on_an_idle_primary() -> None:
    samples = LagSamples(keep=10)
    for second in range(100):  # nothing written for 100 s: the position stands still
        samples.add(second, 500)
    assert samples.lag(replayed=500, now=100) == 0


def test_lag_is_the_age_of_the_oldest_wal_not_replayed() -> None:
    samples = LagSamples(keep=10)
    for second, lsn in [(0, 100), (1, 200), (2, 300), (3, 300), (4, 400)]:
        samples.add(second, lsn)
    assert samples.lag(replayed=400, now=4.5) == 0
    assert samples.lag(replayed=300, now=4.5) == 0.5  # the WAL of second 4
    assert samples.lag(replayed=250, now=4.5) == 2.5  # since second 2
    assert samples.lag(replayed=100, now=4.5) == 3.5


def test_a_replica_behind_every_sample_kept_lags_at_least_as_long_as_they_reach() -> None:
    samples = LagSamples(keep=2)
    for second in range(10):
        samples.add(second, 1000 + second)
    assert samples.lag(replayed=0, now=9) >= 2


def test_the_check_interval_is_a_quarter_of_the_limit_within_bounds() -> None:
    assert check_interval(0.5) == 0.125
    assert check_interval(0.01) == 0.05
    assert check_interval(60) == 1.0

"""Where events go on NATS (issue 21): ``PLL_NATS_URL`` names one server or a cluster's nodes,
``PLL_NATS_REPLICAS`` the copies of the stream; a bad value is refused naming the variable.
The cluster itself is tested in tests/integration/test_nats_cluster.py."""

from __future__ import annotations

import pytest

from pll.config import Settings
from pll.events.jetstream import JetStream

CLUSTER = "nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222,"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("PLL_NATS_URL", "PLL_NATS_REPLICAS", "PLL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLL_DATA_DIR", str(tmp_path))


def publisher() -> JetStream:
    settings = Settings.from_env()
    assert settings.nats_url is not None
    return JetStream(settings.nats_url, replicas=settings.nats_replicas)


def test_one_server_gets_one_copy_and_a_cluster_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLL_NATS_URL", "nats://127.0.0.1:4222")
    one = publisher()
    assert (one.servers, one.replicas, one.replicas_to_create) == (
        ["nats://127.0.0.1:4222"],
        None,
        1,
    )
    monkeypatch.setenv("PLL_NATS_URL", CLUSTER)
    cluster = publisher()
    assert cluster.servers == [f"nats://10.0.0.{i}:4222" for i in (1, 2, 3)]
    # unset, an existing stream keeps its copies; a new one gets three
    assert (cluster.replicas, cluster.replicas_to_create) == (None, 3)


def test_the_copies_may_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLL_NATS_URL", CLUSTER)
    monkeypatch.setenv("PLL_NATS_REPLICAS", "5")
    assert (publisher().replicas, publisher().replicas_to_create) == (5, 5)
    monkeypatch.setenv("PLL_NATS_URL", "nats://127.0.0.1:4222")
    monkeypatch.setenv("PLL_NATS_REPLICAS", "1")
    assert publisher().replicas == 1


@pytest.mark.parametrize("value", ["0", "6", "three", "-1", "2.5", "³"])
def test_copies_out_of_range_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PLL_NATS_URL", CLUSTER)
    monkeypatch.setenv("PLL_NATS_REPLICAS", value)
    with pytest.raises(ValueError, match="PLL_NATS_REPLICAS must be a whole number from 1 to 5"):
        Settings.from_env()


def test_a_url_with_no_server_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLL_NATS_URL", " , ,")
    with pytest.raises(ValueError, match="PLL_NATS_URL must name a NATS server"):
        Settings.from_env()

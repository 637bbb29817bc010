"""Fixtures of the integration tests beyond ``tests/conftest.py``."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from pll.domain.administration import OSLO
from tests.conftest import Clock, LiveServer

#: The moment the chart's tests record at: today in Norway at 19:30, in the evening round's
#: due window. A planned dose is recorded from an hour before its time to 12 hours after
#: it, so every dose of the day but the night's may be recorded then.
EVENING = time(19, 30)


def evening_today() -> datetime:
    return datetime.combine(datetime.now(OSLO).date(), EVENING, OSLO)


@pytest.fixture
def evening_round(server: LiveServer, clock: Clock) -> LiveServer:
    """The live server with its clock at :func:`evening_today` (the tests' recorded time)."""
    clock.offset = evening_today().astimezone(UTC) - datetime.now(UTC)
    return server

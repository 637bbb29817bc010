"""Configuration, from the environment only, so ``pll serve`` and ``pll token`` agree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pll.store.db import sqlite_url


@dataclass(frozen=True)
class Settings:
    #: Where the embedded database and the development signing key live (``PLL_DATA_DIR``).
    data_dir: Path
    #: SQLAlchemy URL (``PLL_DATABASE_URL``); SQLite inside ``data_dir`` when unset.
    database_url: str
    #: Worker threads per process for requests that run synchronous code (``PLL_THREADS``).
    #: Threads beyond a few mostly wait for Python's GIL: at N=100,000 writes went from
    #: ~225/s with 40 threads to ~366/s with 4 (bench/, two workers on two cores).
    threads: int = 4

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("PLL_DATA_DIR", "./pll-data")).resolve()
        url = os.environ.get("PLL_DATABASE_URL") or sqlite_url(data_dir)
        threads = int(os.environ.get("PLL_THREADS", "4"))
        return cls(data_dir=data_dir, database_url=url, threads=threads)

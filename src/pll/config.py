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

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("PLL_DATA_DIR", "./pll-data")).resolve()
        url = os.environ.get("PLL_DATABASE_URL") or sqlite_url(data_dir)
        return cls(data_dir=data_dir, database_url=url)

"""Every stored list document is rebuilt on its next read, so that none stored before
prescriptions said when they expire shows an expired prescription as valid.

Revision ID: 0012
Revises: 0011

A document stored before then has no expired marker on its prescriptions and an ``expires_at``
that knows only the 90 days of discontinued entries (usually NULL). Setting ``expires_at`` in
the past sends every reader of the store (the REST and SFM reads, the pages, both the general
and the event-loop read path) through ``PLLService.expire``, which rebuilds the document with
the markers and the right ``expires_at`` on its next read: one write per list, spread over the
reads, instead of one long transaction that rewrites every list here. Its version does not
change unless a discontinued entry's 90 days are over, as on any read.

The read copy keeps its own copies and is not migrated: run ``pll readcopy rebuild`` after
this revision, which copies the documents with this ``expires_at``, so the copy's next read
of each list refreshes it from the store too.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: any instant before the first read after the upgrade (naive UTC, as the column stores it)
_STALE = datetime(2000, 1, 1, tzinfo=UTC).replace(tzinfo=None)


def upgrade() -> None:
    op.execute(sa.text("UPDATE pll SET expires_at = :stale").bindparams(stale=_STALE))


def downgrade() -> None:
    """Nothing to undo: a rebuilt document is what the earlier code stores too."""

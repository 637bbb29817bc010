"""The audit trail partitioned by month on PostgreSQL (issue 20); SQLite keeps one table.

Revision ID: 0025
Revises: 0024

Every read leaves a record, so at national scale the trail holds billions of rows. On
PostgreSQL ``audit_event`` becomes a table partitioned by RANGE (``recorded_at``), one
partition per calendar month in UTC (``audit_event_2026_12``), under the same name, so no
statement that reads or writes it changes. What changes with it:

* The primary key is ``(id, recorded_at)``: a partitioned table's unique index must hold the
  partition key. ``id`` still comes from the one sequence, so it stays unique in practice.
* ``chain_seq`` cannot be unique across partitions in one index for the same reason. The
  sealer is its only writer and assigns it under the lock on the chain head
  (``audit_chain``, ``FOR UPDATE``); each partition has a unique index on ``chain_seq``
  (a sealer bug would most likely repeat a position within the month it is sealing); and
  ``pll audit verify`` checks that the positions run 1, 2, 3 … across all partitions, which
  the hash chain needs anyway. A separate unpartitioned table of chain positions would hold
  one row per record, the very growth this migration is about.
* A DEFAULT partition takes a row whose month has no partition yet (a clock far off, a
  sealer that has not run for months), so an insert never fails for want of a partition.
  ``audit_event_add_partition(month)`` makes a month's partition; rows of that month waiting
  in the default partition move into it in the same transaction, with their ids, MACs and
  chain positions, so the chain verifies as before. The sealer calls it for this month and
  the next three (``pll.store.audit_partitions``), and so does ``pll audit partitions``.
* The append-only row trigger is defined on the partitioned table, and PostgreSQL clones it
  onto every partition; the statement-level TRUNCATE guard is not cloned, so each partition
  gets its own.

Existing rows are copied into their partitions (a long trail makes this a long migration:
plan for it), then the unpartitioned table is dropped. PLL never drops a partition:
how long the trail is kept is a legal decision (docs/operations.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_COPY = """
INSERT INTO audit_event (id, recorded_at, actor, action, resource_type, resource_id,
                         patient_id, basis, outcome, flag, mac, chain_seq, chain_hash)
SELECT id, recorded_at, actor, action, resource_type, resource_id,
       patient_id, basis, outcome, flag, mac, chain_seq, chain_hash
FROM audit_event_partitioned
"""

_RENAME_OLD = """
ALTER TABLE audit_event RENAME TO audit_event_unpartitioned;
ALTER INDEX audit_event_pkey RENAME TO audit_event_unpartitioned_pkey;
ALTER TABLE audit_event_unpartitioned
    RENAME CONSTRAINT uq_audit_event_chain_seq TO uq_audit_event_unpartitioned_chain_seq;
ALTER INDEX ix_audit_patient RENAME TO ix_audit_unpartitioned_patient;
ALTER INDEX ix_audit_unsealed RENAME TO ix_audit_unpartitioned_unsealed;
ALTER SEQUENCE audit_event_id_seq OWNED BY NONE;
"""

_PARTITIONED = """
CREATE TABLE audit_event (
    id bigint NOT NULL DEFAULT nextval('audit_event_id_seq'::regclass),
    recorded_at timestamp without time zone NOT NULL,
    actor text NOT NULL,
    action varchar(20) NOT NULL,
    resource_type varchar(40) NOT NULL,
    resource_id varchar(64),
    patient_id varchar(64),
    basis varchar(24),
    outcome varchar(2) NOT NULL DEFAULT '0',
    flag varchar(40),
    mac varchar(64),
    chain_seq bigint,
    chain_hash varchar(64),
    CONSTRAINT audit_event_pkey PRIMARY KEY (id, recorded_at)
) PARTITION BY RANGE (recorded_at);
ALTER SEQUENCE audit_event_id_seq OWNED BY audit_event.id;
CREATE INDEX ix_audit_patient ON audit_event (patient_id, recorded_at);
-- only the records still waiting for the sealer: small in every partition, whatever its size
CREATE INDEX ix_audit_unsealed ON audit_event (id) WHERE chain_seq IS NULL;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();

CREATE TABLE audit_event_default PARTITION OF audit_event DEFAULT;
CREATE UNIQUE INDEX audit_event_default_chain_seq ON audit_event_default (chain_seq);
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
"""

#: Makes the partition of the month holding ``day`` (UTC) unless it exists; returns its name,
#: or NULL when it was there already. Safe when several processes call it at once (they take
#: turns on an advisory lock, and the second finds the partition made). The new table is
#: built on its own and then attached, which takes only a SHARE UPDATE EXCLUSIVE lock on
#: ``audit_event`` (CREATE TABLE … PARTITION OF would take ACCESS EXCLUSIVE, stopping every
#: audited read while it waits); attaching locks the default partition, which it must check.
_ADD_PARTITION = """
CREATE FUNCTION audit_event_add_partition(day timestamp without time zone) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lower timestamp without time zone := date_trunc('month', day);
    upper timestamp without time zone := date_trunc('month', day) + interval '1 month';
    name text := 'audit_event_' || to_char(date_trunc('month', day), 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(7023);
    IF to_regclass(name) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE audit_event INCLUDING DEFAULTS)', name);
    -- proves the bound, so ATTACH does not scan the table for rows outside it
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK '
                   '(recorded_at >= %L AND recorded_at < %L)', name, name || '_bound',
                   lower, upper);
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I (chain_seq)', name || '_chain_seq', name);
    -- ATTACH takes this lock on the default partition anyway; taken first, no record of the
    -- month can arrive in the default partition between the look below and the ATTACH,
    -- which would refuse the partition (a record still being written is waited for)
    LOCK TABLE audit_event_default IN ACCESS EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM audit_event_default
               WHERE recorded_at >= lower AND recorded_at < upper) THEN
        -- The month's records waited in the default partition: they move, unchanged, into
        -- their own. The append-only guard is lifted for this move only, inside this
        -- transaction, under the exclusive lock on the default partition.
        ALTER TABLE audit_event_default DISABLE TRIGGER audit_event_append_only;
        EXECUTE format('WITH moved AS (DELETE FROM audit_event_default '
                       'WHERE recorded_at >= $1 AND recorded_at < $2 RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved', name) USING lower, upper;
        ALTER TABLE audit_event_default ENABLE TRIGGER audit_event_append_only;
    END IF;
    EXECUTE format('ALTER TABLE audit_event ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   name, lower, upper);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_bound');
    EXECUTE format('CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate()', name);
    RETURN name;
END $$;
"""

#: The months of the existing records, and this month and the next three.
_MONTHS = """
SELECT generate_series(
    date_trunc('month', LEAST(COALESCE(MIN(recorded_at), now() AT TIME ZONE 'UTC'),
                              now() AT TIME ZONE 'UTC')),
    date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
    interval '1 month')
FROM audit_event_unpartitioned
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(_RENAME_OLD)
    op.execute(_PARTITIONED)
    op.execute(_ADD_PARTITION)
    for (month,) in bind.execute(sa.text(_MONTHS)).all():
        bind.execute(sa.text("SELECT audit_event_add_partition(:m)"), {"m": month})
    op.execute(_COPY.replace("audit_event_partitioned", "audit_event_unpartitioned"))
    op.execute("DROP TABLE audit_event_unpartitioned")
    op.execute("ANALYZE audit_event")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION audit_event_add_partition(timestamp without time zone)")
    op.execute("ALTER TABLE audit_event RENAME TO audit_event_partitioned")
    op.execute("ALTER INDEX audit_event_pkey RENAME TO audit_event_partitioned_pkey")
    op.execute("ALTER INDEX ix_audit_patient RENAME TO ix_audit_partitioned_patient")
    op.execute("ALTER INDEX ix_audit_unsealed RENAME TO ix_audit_partitioned_unsealed")
    op.execute("ALTER SEQUENCE audit_event_id_seq OWNED BY NONE")
    op.execute(
        """
        CREATE TABLE audit_event (
            id bigint NOT NULL DEFAULT nextval('audit_event_id_seq'::regclass),
            recorded_at timestamp without time zone NOT NULL,
            actor text NOT NULL,
            action varchar(20) NOT NULL,
            resource_type varchar(40) NOT NULL,
            resource_id varchar(64),
            patient_id varchar(64),
            basis varchar(24),
            outcome varchar(2) NOT NULL DEFAULT '0',
            flag varchar(40),
            mac varchar(64),
            chain_seq bigint,
            chain_hash varchar(64),
            CONSTRAINT audit_event_pkey PRIMARY KEY (id),
            CONSTRAINT uq_audit_event_chain_seq UNIQUE (chain_seq)
        );
        ALTER SEQUENCE audit_event_id_seq OWNED BY audit_event.id;
        CREATE INDEX ix_audit_patient ON audit_event (patient_id, recorded_at);
        CREATE INDEX ix_audit_unsealed ON audit_event (id) WHERE chain_seq IS NULL;
        CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
            FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
        CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
            FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate();
        """
    )
    op.execute(_COPY)
    op.execute("DROP TABLE audit_event_partitioned")

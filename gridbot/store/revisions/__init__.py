"""Alembic revisions of gridbot's schema, one chain for SQLite and PostgreSQL, run by the
store when it opens (:mod:`gridbot.store.migrating`).

Revisions 0001-0012 are the baseline: each applies the SQL its version had before the
store moved to Alembic (``gridbot/store/migrations`` and ``pg_migrations``, frozen from
now on), and skips it where ``schema_migrations`` already records the version, so a
database made before Alembic migrates forward like a new one.

A new revision is one file here, ``rNNNN_what.py``, written once for both databases::

    from alembic import op
    import sqlalchemy as sa

    from gridbot.store.migrating import record

    revision = "0013"
    down_revision = "0012"
    branch_labels = None
    depends_on = None


    def upgrade() -> None:
        op.add_column("cases", sa.Column("duplicate_of", sa.BigInteger()))
        record(op.get_bind(), 13)

It runs in a transaction of its own, under the migration lock; ``record`` notes its
number in ``schema_migrations`` (what backups and ``gridbot migrate`` compare). A column
the repositories use is then also declared in :mod:`gridbot.store.tables`. Where the two
databases need different words, ``op.get_bind().dialect.name`` says which it is.
"""

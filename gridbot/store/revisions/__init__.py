"""Alembic revisions of gridbot's schema, one chain for SQLite and PostgreSQL.

Revisions 0001-0012 are the baseline: each applies the SQL its version had before the
store moved to Alembic (``gridbot/store/migrations`` and ``pg_migrations``, frozen), and
skips it where ``schema_migrations`` already records the version, so a database made
before Alembic migrates forward like a new one. Later revisions are written once, with
``alembic.op`` (and :mod:`gridbot.store.migrating` where a dialect needs its own words),
and record their version the same way: see :func:`gridbot.store.migrating.record`.
"""

"""Alembic migrations of the xueshi database, run in code by `pipelines.store.Store.migrate`."""

"""The database behind the pipeline, one module per thing it stores: raw records with their
sightings and watermarks (`raw`), the ledger, bank and reconciliation (`ledger`), the
pipeline's own state (`state`), R3's verdicts per person (`verdicts`); SQLite and PostgreSQL
differ only in `dialect`.

DataFrames in, DataFrames out, and never a statement per row. Every public write is one
transaction, so a load killed half-way leaves the previous state, and a rerun of the same load
leaves the same rows.
"""

from __future__ import annotations

from pipelines.store.base import Progress
from pipelines.store.dialect import default_database_url, make_engine
from pipelines.store.ledger import Ledger, Scope
from pipelines.store.raw import RawRecords
from pipelines.store.state import LedgerState
from pipelines.store.values import NUL_REPLACEMENT
from pipelines.store.verdicts import Verdicts

__all__ = [
    "NUL_REPLACEMENT",
    "LedgerState",
    "Progress",
    "Scope",
    "Store",
    "default_database_url",
    "make_engine",
]


class Store(RawRecords, Ledger, Verdicts):
    """The project's database (SQLite or PostgreSQL): everything the pipeline stores."""

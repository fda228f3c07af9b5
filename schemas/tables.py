"""The database tables (PROVINCIAL.md), built from the frame schemas so a column is named once.

Every table's columns come from a dtype mapping of `schemas.raw` or `schemas.ledger` plus the
few columns only the database holds; `FRAME_DTYPES` is what `pipelines.store` reads back.
Timestamps are `UtcDateTime`: PostgreSQL `timestamptz`, SQLite fixed-width UTC ISO text (so the
text sorts in time order), read back in Asia/Shanghai on both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from schemas.ledger import (
    COMPLETION_DTYPES,
    ELIGIBILITY_DTYPES,
    HOURS_BANK_DTYPES,
    RECONCILIATION_DTYPES,
    TIME_BOUND_REASON,
)
from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ

SQLITE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""How SQLite stores a timestamp: UTC, microseconds, `Z` (what `numpy.datetime_as_string` makes)."""

_LOCAL = ZoneInfo(TZ)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that both engines store as UTC and return in Asia/Shanghai.

    Naive datetimes are refused: a time without an offset is ambiguous by the time it is stored.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(27))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry an offset")
        utc = value.astimezone(UTC)
        return utc.strftime(SQLITE_TIME_FORMAT) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(_LOCAL)


STORED_RAW_DTYPES: dict[str, str] = {
    **RAW_DTYPES,
    "record_key": "str",
    "first_seen_at": TIMESTAMP,
    "last_seen_at": TIMESTAMP,
    "person_bucket": "int64",
}
BUCKET = {"person_bucket": "int64"}
"""Every table of people's rows carries its person's bucket (`pipelines.shards`)."""
COMPLETION_TABLE_DTYPES: dict[str, str] = {**COMPLETION_DTYPES, "pull_year": "Int64", **BUCKET}
HOURS_BANK_TABLE_DTYPES: dict[str, str] = {**HOURS_BANK_DTYPES, **BUCKET}
RECONCILIATION_TABLE_DTYPES: dict[str, str] = {**RECONCILIATION_DTYPES, "run_at": TIMESTAMP}
WATERMARK_DTYPES: dict[str, str] = {
    "platform": "str",
    "year": "int64",
    "state": "str",  # the family's JSON state
    "updated_at": TIMESTAMP,
}
NAME_CONFLICT_DTYPES: dict[str, str] = {"id_number": "str", "names": "str", **BUCKET}
SHARD_RESULT_DTYPES: dict[str, str] = {"run_id": "str", "shard": "int64", "summary": "str"}
TITLE_VERDICT_DTYPES: dict[str, str] = {**ELIGIBILITY_DTYPES, **BUCKET}
LEDGER_COUNT_DTYPES: dict[str, str] = {
    "year": "int64",
    "platform": "str",
    "state": "str",
    "month": "int64",
    "city": "str",
    "employer": "str",
    "reason": "str",
    "records": "int64",
}

FRAME_DTYPES: dict[str, dict[str, str]] = {
    "raw_record": STORED_RAW_DTYPES,
    "watermark": WATERMARK_DTYPES,
    "completion": COMPLETION_TABLE_DTYPES,
    "hours_bank": HOURS_BANK_TABLE_DTYPES,
    "reconciliation": RECONCILIATION_TABLE_DTYPES,
    "name_conflict": NAME_CONFLICT_DTYPES,
    "shard_result": SHARD_RESULT_DTYPES,
    "title_verdict": TITLE_VERDICT_DTYPES,
    "ledger_count": LEDGER_COUNT_DTYPES,
}
"""Each table's columns, in order, as the pandas dtypes `pipelines.store` returns."""

LEDGER_COUNT_KEYS: tuple[str, ...] = tuple(LEDGER_COUNT_DTYPES)[:-1]
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "raw_record": ("record_key",),
    "watermark": ("platform", "year"),
    "completion": ("record_key",),
    "hours_bank": ("id_number", "year"),
    "reconciliation": ("run_id", "platform", "year"),
    "name_conflict": ("id_number",),
    "shard_result": ("run_id", "shard"),
    "pipeline_state": ("name",),
    "output_file": ("year", "employer"),
    "title_verdict": ("id_number",),
    "changed_person": ("id_number",),
    "ledger_count": LEDGER_COUNT_KEYS,
}

WRITE_ORDER: dict[str, tuple[str, ...]] = {
    "completion": ("id_number", "credited_year", "record_key"),
}
"""The order rows are written in, where it is not the primary key's. Both engines store a
table's rows in about the order they were written, so the ledger written person by person
keeps a person's rows (and a person-year's) on a page or two: a night reads the ledger by
people and the files by employer-years, and at 4M records an employer-year's rows read from a
cold cache in 6 s instead of 24-30 s when written in key order (scattered over every page)."""

_REQUIRED = frozenset({"platform", "source_key", "state"})
_COUNT_COLUMNS = frozenset({"raw", "credited", "merged", "not_credited", "quarantined", "records"})


def _column_type(name: str, dtype: str) -> TypeEngine[Any]:
    if dtype == TIMESTAMP:
        return UtcDateTime()
    if dtype == "str":
        return Text()
    if dtype == "float64":
        return Float()
    if dtype in {"bool", "boolean"}:
        return Boolean()
    if dtype in {"int64", "Int64"}:
        return BigInteger() if name in _COUNT_COLUMNS else Integer()
    raise TypeError(f"no column type for {name} ({dtype})")


def _columns(dtypes: dict[str, str], primary_key: tuple[str, ...]) -> list[Column[Any]]:
    """Keys, identities and non-nullable dtypes are NOT NULL; everything else may be null."""
    return [
        Column(
            name,
            _column_type(name, dtype),
            primary_key=name in primary_key,
            nullable=not (name in primary_key or name in _REQUIRED or dtype in {"bool", "int64"}),
        )
        for name, dtype in dtypes.items()
    ]


# Dagster's PostgreSQL storage keeps its own `alembic_version`; ours must not share it.
VERSION_TABLE = "xueshi_schema_version"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _table(name: str, *extra: Column[Any] | Index) -> Table:
    return Table(name, metadata, *_columns(FRAME_DTYPES[name], PRIMARY_KEYS[name]), *extra)


raw_record = _table(
    "raw_record",
    Column("batch_seq", BigInteger(), nullable=False, server_default="0"),
    Column("seen_batch", BigInteger(), nullable=False, server_default="0"),
    Index(None, "platform", "pull_year", "withdrawn", "source_key"),
    Index(None, "batch_seq"),
    Index(None, "seen_batch", "record_key", "last_seen_at"),
    Index(None, "person_bucket"),
    Index(None, "platform", "withdrawn"),
)
"""`batch_seq`: the store batch that last changed the row, so the ledger folds in only changes;
`seen_batch`: the last batch that saw it (its `last_seen_at` reaches the ledger from there,
read from the index alone).
A partition's live records are counted, and its live keys read, from one index alone."""
watermark = _table("watermark")
_TIME_BOUND = text(f"reason = '{TIME_BOUND_REASON}'")
completion = _table(
    "completion",
    Index(None, "id_number"),
    Index(None, "person_bucket"),
    Index(None, "credited_year", "id_number", "state", "hours_credited"),
    Index(
        "ix_completion_time_bound", "reason", sqlite_where=_TIME_BOUND, postgresql_where=_TIME_BOUND
    ),
)
"""`ix_completion_time_bound` holds only the rows R12 quarantined for their date, which every
refresh judges again: a night finds them without reading the ledger."""
hours_bank = _table("hours_bank", Index(None, "person_bucket"), Index(None, "year", "employer"))
reconciliation = _table("reconciliation")
name_conflict = _table("name_conflict", Index(None, "person_bucket"))
shard_result = _table("shard_result")
"""What each shard step of a run computed (JSON): counts and validation results, read by the
checks and the ledger's metadata, so no step needs another step's frames."""
pipeline_state = Table(
    "pipeline_state",
    metadata,
    Column("name", Text(), primary_key=True),
    Column("seq", BigInteger(), nullable=False),
    Column("fingerprint", Text(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=True),
)
"""`raw`: the last batch number given out; `ledger`: the last one folded into the outputs, and
the fingerprint of the rules that computed them (a different fingerprint means a full run)."""

output_file = Table(
    "output_file",
    metadata,
    Column("year", Integer(), primary_key=True),
    Column("employer", Text(), primary_key=True),
    Column("seq", BigInteger(), nullable=False),
)
"""The write of the outputs that last changed the rows of a year's file for an employer (`''`:
none), so a night rewrites only those files; `pipeline_state` `outputs_full` is the last write
that replaced everything."""

changed_person = Table(
    "changed_person",
    metadata,
    Column("id_number", Text(), primary_key=True),
    Column("seq", BigInteger(), nullable=False),
)
"""The write of the outputs that last changed a person's rows (partial writes only), so the
answers recompute only those people after a night."""
title_verdict = _table("title_verdict", Index(None, "person_bucket"))
ledger_count = _table("ledger_count")
"""The ledger's rows counted, kept by every write of the ledger in the same transaction, so D4
and the compliance report read a few thousand counts instead of the ledger: per year (credited,
else pulled, as D4), platform, state and month of completion in Asia/Shanghai (0: none), and
for quarantined rows their city, employer and reason (`''` for the others, and for none)."""
"""R3's verdict per person, as of the write `pipeline_state` `title_verdicts` names."""

run_lease = Table(
    "run_lease",
    metadata,
    Column("name", Text(), primary_key=True),
    Column("run_id", Text(), nullable=False),
    Column("host", Text(), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("renewed_at", UtcDateTime(), nullable=False),
)
"""Which run may write (`pipelines.locks`): one row, `writes`, held by a run id and the process
that runs it, until the run ends or its process is gone."""

TABLES: dict[str, Table] = dict(metadata.tables)

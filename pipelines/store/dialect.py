"""What differs between SQLite and PostgreSQL, in one place: connecting, bulk writes and reads,
locks, and a few spellings. Everything else in the store is SQL both engines accept.

PostgreSQL loads with `COPY … FROM STDIN` (CSV made by pyarrow) and reads with `COPY … TO
STDOUT`; SQLite loads with `executemany` in large chunks and reads text as bytes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import AddConstraint
from sqlalchemy.sql.dml import Insert

from pipelines.store.values import (
    csv_chunks,
    frame_from_columns,
    frame_from_csv,
    python_values,
)
from schemas.raw import TIMESTAMP

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 64 * 1024
LOOKUP_PAGE_COST = 1.1
"""PostgreSQL's `random_page_cost` for look-ups: its documentation's advice when the pages
are cached or on SSD, as a night's are."""
SQLITE_ANALYSIS_ROWS = 1000
"""ANALYZE samples about this many rows per index: statistics in milliseconds at any size."""
WRITE = "xueshi_write"
"""Execution option of a connection that will write (SQLite then begins `IMMEDIATE`)."""

Report = Callable[[int], None]
"""Called with the rows written so far, after each chunk."""

_PG_TIME = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS {0}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_list(columns: Iterable[str]) -> str:
    return ", ".join(quote(c) for c in columns)


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    """SQLite at `data/xueshi.db` (or under `XUESHI_DATA_DIR`), so a checkout runs serverless."""
    env = os.environ if env is None else env
    folder = Path(env.get("XUESHI_DATA_DIR") or Path.cwd() / "data")
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'xueshi.db').resolve()}"


def make_engine(url: str) -> Engine:
    """An engine for `url`; plain `postgresql://` means psycopg 3, the driver the project ships.

    SQLite gets the transaction handling SQLAlchemy documents for pysqlite: the driver's own
    BEGIN is switched off and we emit it, so DDL (temporary staging tables, migrations) is
    transactional too; writers take the lock up front (`BEGIN IMMEDIATE`) instead of failing
    to upgrade a read lock; WAL lets readers run beside a writer.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    dbapi_connection.execute("PRAGMA journal_mode = WAL")
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; fsync per checkpoint
    dbapi_connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    dbapi_connection.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_ROWS}")


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass(frozen=True)
class Load:
    """Rows to append: prepared `rows` (`values.prepare`) of `dtypes` into `table`;
    `constants` are further columns with one value for every row, `suffix` ends the statement
    (an `ON CONFLICT` clause, where the dialect `upsert_in_bulk`)."""

    table: str
    rows: pd.DataFrame
    dtypes: Mapping[str, str]
    constants: Mapping[str, int] = field(default_factory=dict)
    suffix: str = ""


class Dialect:
    """One engine's ways. `upsert_in_bulk`: a bulk insert may end in `ON CONFLICT` (SQLite's
    `executemany` can; `COPY` cannot, so PostgreSQL stages and upserts from the stage)."""

    is_distinct: str
    is_same: str
    code_point_order: str
    """A collation that orders text by code point, as Python does."""
    temp_table: str
    """What ends a `CREATE TEMP TABLE` so the table lives for the transaction."""
    local_month: str
    """SQL: the month (1–12) of a timestamp column `{}` in Asia/Shanghai."""
    upsert_in_bulk: bool
    unique_violation: type[Exception]

    def insert(self, table: Table) -> Insert:
        raise NotImplementedError

    def lock(self, conn: Connection, key: int) -> None:
        """Serialize writers that take `key`, until the transaction ends."""
        raise NotImplementedError

    def clear(self, conn: Connection, names: Iterable[str]) -> None:
        """Empty tables inside the transaction."""
        raise NotImplementedError

    def empty_copy(self, conn: Connection, name: str, of: str, flag: str) -> None:
        """A temporary table shaped like `of` plus a boolean column `flag`, empty."""
        raise NotImplementedError

    def bulk_insert(self, conn: Connection, load: Load, chunk_rows: int, report: Report) -> int:
        """Append the load's rows, `chunk_rows` at a time; returns the rows inserted or updated
        (an upsert's `WHERE` may leave some alone)."""
        raise NotImplementedError

    def read(
        self, conn: Connection, sql: str, dtypes: Mapping[str, str], chunk_rows: int
    ) -> pd.DataFrame:
        """`SELECT <dtypes' columns> <sql>` as a frame of `dtypes`."""
        raise NotImplementedError

    def plan_lookups(self, conn: Connection) -> None:
        """For the rest of the transaction, plan its statements as look-ups of staged keys
        (people, records, files) through their indexes, never a scan of the whole table."""
        raise NotImplementedError

    def create_unindexed(self, conn: Connection, name: str, like: Table) -> None:
        """A table `name` with `like`'s columns and no index beyond what the engine cannot
        add later (SQLite: the primary key, part of the table's definition)."""
        raise NotImplementedError

    def add_primary_key(self, conn: Connection, table: Table) -> None:
        """Give a table made by `create_unindexed` and renamed to `table` its primary key."""
        raise NotImplementedError


class SQLite(Dialect):
    is_distinct = "IS NOT"
    is_same = "IS"
    code_point_order = ""  # SQLite's default BINARY collation compares UTF-8 bytes
    # stored as UTC text with microseconds, which SQLite's date functions round to
    # milliseconds (23:59:59.9999 would become the next day): seconds only, then UTC+8
    local_month = "CAST(strftime('%m', substr({}, 1, 19), '+8 hours') AS INTEGER)"
    temp_table = ""
    upsert_in_bulk = True
    unique_violation = sqlite3.IntegrityError

    def insert(self, table: Table) -> Insert:
        return sqlite.insert(table)

    def lock(self, conn: Connection, key: int) -> None:
        """Nothing to take: a writer's `BEGIN IMMEDIATE` already holds the database's lock."""

    def clear(self, conn: Connection, names: Iterable[str]) -> None:
        for name in names:
            conn.exec_driver_sql(f"DELETE FROM {name}")

    def empty_copy(self, conn: Connection, name: str, of: str, flag: str) -> None:
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {name} AS SELECT *, false AS {flag} FROM {of} WHERE false"
        )

    def bulk_insert(self, conn: Connection, load: Load, chunk_rows: int, report: Report) -> int:
        literals = [str(int(v)) for v in load.constants.values()]
        placeholders = ", ".join(["?"] * len(load.dtypes) + literals)
        names = column_list([*load.dtypes, *load.constants])
        statement = f"INSERT INTO {load.table} ({names}) VALUES ({placeholders}) {load.suffix}"
        cursor = conn.connection.driver_connection.cursor()
        written = 0
        for start in range(0, len(load.rows), chunk_rows):
            chunk = load.rows.iloc[start : start + chunk_rows]
            cursor.executemany(
                statement, zip(*(python_values(chunk[c]) for c in load.dtypes), strict=True)
            )
            written += cursor.rowcount
            report(start + len(chunk))
        return written

    def read(
        self, conn: Connection, sql: str, dtypes: Mapping[str, str], chunk_rows: int
    ) -> pd.DataFrame:
        raw = conn.connection.driver_connection
        frames = [frame_from_columns(dict.fromkeys(dtypes, ()), dtypes)]
        # Text as bytes, checked as UTF-8 by Arrow: cheaper than a Python str per cell.
        factory, raw.text_factory = raw.text_factory, bytes
        try:
            cursor = raw.execute(f"SELECT {column_list(dtypes)} {sql}")
            while rows := cursor.fetchmany(chunk_rows):
                columns = dict(zip(dtypes, zip(*rows, strict=True), strict=True))
                frames.append(frame_from_columns(columns, dtypes))
        finally:
            raw.text_factory = factory
        return pd.concat(frames[1:], ignore_index=True) if len(frames) > 2 else frames[-1]

    def plan_lookups(self, conn: Connection) -> None:
        """Nothing to set: SQLite's planner probes an index whenever one serves the keys."""

    def create_unindexed(self, conn: Connection, name: str, like: Table) -> None:
        """From `like`'s own `CREATE TABLE`, so the table renamed is exactly the one it
        replaces (SQLite cannot add a primary key to a table)."""
        definition = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (like.name,)
        ).scalar_one()
        conn.exec_driver_sql(definition.replace(like.name, name, 1))

    def add_primary_key(self, conn: Connection, table: Table) -> None:
        """Nothing to add: the key came with the table's definition."""


class PostgreSQL(Dialect):
    is_distinct = "IS DISTINCT FROM"
    is_same = "IS NOT DISTINCT FROM"
    code_point_order = ' COLLATE "C"'
    local_month = "CAST(EXTRACT(MONTH FROM {} AT TIME ZONE 'Asia/Shanghai') AS INTEGER)"
    temp_table = " ON COMMIT DROP"
    upsert_in_bulk = False
    unique_violation = UniqueViolation

    def insert(self, table: Table) -> Insert:
        return postgresql.insert(table)

    def lock(self, conn: Connection, key: int) -> None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(key)})")

    def clear(self, conn: Connection, names: Iterable[str]) -> None:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(names)}")  # transactional on PostgreSQL

    def empty_copy(self, conn: Connection, name: str, of: str, flag: str) -> None:
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS "
            f"SELECT *, false AS {flag} FROM {of} WITH NO DATA"
        )

    def bulk_insert(self, conn: Connection, load: Load, chunk_rows: int, report: Report) -> int:
        if load.suffix:
            raise ValueError("COPY cannot upsert: stage the rows and upsert from the stage")
        values = load.rows.assign(**load.constants)
        columns = column_list([*load.dtypes, *load.constants])
        with (
            conn.connection.driver_connection.cursor() as cursor,
            cursor.copy(f"COPY {load.table} ({columns}) FROM STDIN (FORMAT csv)") as copy,
        ):
            for done, chunk in csv_chunks(values, chunk_rows):
                copy.write(chunk)
                report(done)
        return len(values)

    def read(
        self, conn: Connection, sql: str, dtypes: Mapping[str, str], chunk_rows: int
    ) -> pd.DataFrame:
        """COPY the rows out as CSV and parse them with pyarrow."""
        selected = ", ".join(
            _PG_TIME.format(quote(c)) if t == TIMESTAMP else quote(c) for c, t in dtypes.items()
        )
        with (
            conn.connection.driver_connection.cursor() as cursor,
            cursor.copy(f"COPY (SELECT {selected} {sql}) TO STDOUT (FORMAT csv)") as copy,
        ):
            return frame_from_csv(copy, dtypes)

    def plan_lookups(self, conn: Connection) -> None:
        """Random page reads priced as the cached pages they are (`LOOKUP_PAGE_COST`). At the
        default price (4, for spinning disks) a few thousand people's rows looked cheaper to
        find by scanning the whole ledger: at 4M records, a night's files scanned all 4 million
        ledger rows per year and per batch to find about 100,000."""
        conn.exec_driver_sql(f"SET LOCAL random_page_cost = {LOOKUP_PAGE_COST}")

    def create_unindexed(self, conn: Connection, name: str, like: Table) -> None:
        conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {like.name} INCLUDING DEFAULTS)")

    def add_primary_key(self, conn: Connection, table: Table) -> None:
        conn.execute(AddConstraint(table.primary_key))


def dialect_of(engine: Engine) -> Dialect:
    dialects: dict[str, type[Dialect]] = {"sqlite": SQLite, "postgresql": PostgreSQL}
    name = engine.dialect.name
    if name not in dialects:
        raise ValueError(f"unsupported database {name!r}: xueshi runs on SQLite or PostgreSQL")
    return dialects[name]()

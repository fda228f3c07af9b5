"""The store's common ground: the engine, write transactions, migrations, bulk IO by frames."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

from pipelines.shards import Shard
from pipelines.store.dialect import (
    WRITE,
    Load,
    column_list,
    dialect_of,
    make_engine,
    quote,
)
from pipelines.store.values import prepare
from schemas.tables import FRAME_DTYPES, PRIMARY_KEYS, TABLES

DEFAULT_CHUNK_ROWS = 100_000
MIGRATION_LOCK = 0x78756573  # "xues": held while migrating (steps in parallel all migrate)

Progress = Callable[[str, int], None]
"""Called with a step name and the rows written so far, inside the open transaction."""


def literal(value: str) -> str:
    """A quoted SQL string literal (for the few constants the store puts into conditions)."""
    return "'" + value.replace("'", "''") + "'"


def is_in(column: str, values: Collection[str]) -> str:
    return f"{quote(column)} IN ({', '.join(literal(v) for v in values) or 'NULL'})"


def in_shard(shard: Shard) -> str:
    return f"person_bucket BETWEEN {int(shard.first)} AND {int(shard.last)}"


class Database:
    """One SQLAlchemy engine (SQLite or PostgreSQL) and frame-sized reads and writes on it.

    `chunk_rows` bounds each bulk write; `progress` sees every chunk and step inside the open
    transaction (a raising hook aborts the whole write, which is how tests interrupt a load).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        progress: Progress | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        self.chunk_rows = chunk_rows
        self._progress = progress or (lambda _step, _rows: None)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        return cls(make_engine(url), **kwargs)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, lock: int | None = None) -> Iterator[Connection]:
        """A write transaction; with `lock`, one writer at a time among those taking it."""
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                if lock is not None:
                    self.dialect.lock(conn, lock)
                yield conn

    def migrate(self, revision: str = "head") -> None:
        """Upgrade to `revision` in one transaction; existing tables and rows are kept."""
        config = Config()
        config.set_main_option("script_location", str(resources.files("schemas") / "migrations"))
        with self.transaction(lock=MIGRATION_LOCK) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            self._after_upgrade(conn)

    def _after_upgrade(self, conn: Connection) -> None:
        """What a revision leaves to the code (a value only the pipeline computes)."""

    def read_table(
        self, name: str, *, columns: Collection[str] | None = None, where: Sequence[str] = ()
    ) -> pd.DataFrame:
        """A table (its `columns`, rows meeting the SQL conditions `where`) in its frame dtypes,
        ordered by primary key."""
        if name not in FRAME_DTYPES:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(FRAME_DTYPES)}")
        return self._read(name, columns=columns, where=where)

    def row_count(self, name: str) -> int:
        if name not in FRAME_DTYPES:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(FRAME_DTYPES)}")
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {name}").scalar_one())

    def _upsert(self, conn: Connection, name: str, *rows: Mapping[str, Any]) -> None:
        """Insert the rows (all with the same columns), or update those whose key exists."""
        if not rows:
            return
        insert = self.dialect.insert(TABLES[name])
        keys = PRIMARY_KEYS[name]
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=list(keys),
                set_={c: insert.excluded[c] for c in rows[0] if c not in keys},
            ),
            list(rows),
        )

    def _bulk_insert(
        self,
        conn: Connection,
        table: str,
        frame: pd.DataFrame,
        dtypes: Mapping[str, str],
        step: str,
        *,
        constants: Mapping[str, int] | None = None,
        suffix: str = "",
    ) -> int:
        """Append `frame` to `table` in chunks, reporting each chunk to the progress hook;
        returns the rows inserted or updated."""
        load = Load(table, prepare(frame, dtypes), dtypes, constants or {}, suffix)
        return self.dialect.bulk_insert(
            conn, load, self.chunk_rows, lambda rows: self._progress(step, rows)
        )

    def _stage(
        self, conn: Connection, name: str, frame: pd.DataFrame, dtypes: Mapping[str, str]
    ) -> None:
        """A temporary table of distinct rows (its primary key: all columns), for joins; the
        transaction's statements are then planned as look-ups of those keys."""
        self.dialect.plan_lookups(conn)
        types = {"str": "TEXT", "int64": "BIGINT"}
        columns = ", ".join(f"{quote(c)} {types[t]}" for c, t in dtypes.items())
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {name} ({columns}, PRIMARY KEY ({column_list(dtypes)}))"
            + self.dialect.temp_table
        )
        self._bulk_insert(conn, name, frame.drop_duplicates(), dtypes, name)

    def _stage_keys(
        self, conn: Connection, name: str, column: str, values: Collection[str]
    ) -> None:
        frame = pd.DataFrame({column: pd.Series(list(values), dtype="str")})
        self._stage(conn, name, frame, {column: "str"})

    def _read(
        self,
        name: str,
        *,
        columns: Collection[str] | None = None,
        where: Sequence[str] = (),
        keys: Mapping[str, Collection[str]] | None = None,
        staged: Mapping[str, Collection[str]] | None = None,
        ordered: bool = True,
    ) -> pd.DataFrame:
        """Rows of `name` (its `columns`, in schema order) matching every SQL condition of
        `where`, and, for each column of `keys`, one of its values (staged in a temporary table,
        so a million keys cost one join, not a million parameters); ordered by primary key
        unless the caller sorts them itself (`ordered=False` spares the engine a sort).
        `staged` names further temporary tables (one column, `value`) that `where` may use."""
        dtypes = {
            c: t for c, t in FRAME_DTYPES[name].items() if columns is None or c in set(columns)
        }
        conditions = list(where)
        stages = list(staged or {})
        with self.engine.connect() as conn, conn.begin():
            for stage, values in (staged or {}).items():
                self._stage_keys(conn, stage, "value", values)
            for column, values in (keys or {}).items():
                stage = f"{column}_read_stage"
                self._stage_keys(conn, stage, column, values)
                stages.append(stage)
                conditions.append(f"{quote(column)} IN (SELECT {quote(column)} FROM {stage})")
            sql = f"FROM {name}"
            if conditions:
                sql += " WHERE " + " AND ".join(f"({c})" for c in conditions)
            if ordered:
                sql += f" ORDER BY {column_list(PRIMARY_KEYS[name])}"
            frame = self.dialect.read(conn, sql, dtypes, self.chunk_rows)
            for stage in stages:
                conn.exec_driver_sql(f"DROP TABLE {stage}")
        return frame

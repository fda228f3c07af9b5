"""The database behind the pipeline: raw records with their watermarks, the ledger and the bank.

DataFrames in, DataFrames out, and never a statement per row: PostgreSQL loads with `COPY … FROM
STDIN` (CSV made by pyarrow) and reads with `COPY … TO STDOUT`; SQLite loads with `executemany`
in large chunks. Every public write is one transaction, so a load killed half-way leaves the
previous state, and a rerun of the same load leaves the same rows.

Text cannot hold NUL on PostgreSQL; both engines store U+0000 as U+FFFD (the replacement
character), so the two engines keep the same rows and the loss stays visible.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite

from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ, conform, record_key
from schemas.tables import FRAME_DTYPES, PRIMARY_KEYS, TABLES

DEFAULT_CHUNK_ROWS = 100_000
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 64 * 1024
NUL_REPLACEMENT = "\ufffd"

Progress = Callable[[str, int], None]
"""Called with a step name and the rows written so far, inside the open transaction."""

_WRITE = "xueshi_write"
_STAGE_SUFFIX = "_stage"
_BARE = "_bare"
# Raw columns a bare withdrawal (a row gone from a full snapshot) leaves null.
_RAW_DATA_COLUMNS: tuple[str, ...] = tuple(
    c
    for c, t in RAW_DTYPES.items()
    if c not in {"platform", "source_key", "withdrawn", "pulled_at", "pull_year"} and t != "bool"
)
_RAW_KEPT_ON_WITHDRAWAL: tuple[str, ...] = tuple(
    c for c in FRAME_DTYPES["raw_record"] if c not in {"record_key", "withdrawn", "last_seen_at"}
)
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str"
_TEXT_TYPES = {pa.string(): _TEXT, pa.large_string(): _TEXT}
_PG_TIME = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS {0}"


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


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_list(columns: Iterable[str]) -> str:
    return ", ".join(_quote(c) for c in columns)


# --- frame <-> database values --------------------------------------------------------------


def _utc_text(values: pd.Series) -> pd.Series:
    """Timestamps as the stored UTC ISO text (`…T…Z`, microseconds); null stays null.

    numpy formats and arrow joins: an order of magnitude faster than `dt.strftime`.
    """
    utc = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = pa.array(np.datetime_as_string(utc, unit="us"), mask=np.isnat(utc))
    joined = pc.binary_join_element_wise(text, "Z", "")
    return joined.to_pandas(types_mapper=_TEXT_TYPES.get).set_axis(values.index)


def _to_local(values: pd.Series) -> pd.Series:
    """Stored UTC ISO text back to the frames' Asia/Shanghai timestamps."""
    parsed = pd.to_datetime(values.astype("str"), format="ISO8601", utc=True)
    return parsed.dt.tz_convert(TZ).astype(TIMESTAMP)


def _prepare(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """The frame as database values: schema dtypes, timestamps as UTC text, NUL replaced."""
    typed = conform(frame, dict(dtypes))
    out: dict[str, pd.Series] = {}
    for name, dtype in dtypes.items():
        column = typed[name]
        if dtype == TIMESTAMP:
            column = _utc_text(column)
        elif dtype == "str" and column.str.contains("\x00", regex=False).any():
            column = column.str.replace("\x00", NUL_REPLACEMENT, regex=False)
        out[name] = column
    return pd.DataFrame(out, index=typed.index)


def _python_values(column: pd.Series) -> list[Any]:
    """A column as DBAPI parameters: Python scalars, None for null."""
    if column.dtype == "bool" or column.dtype == "int64":
        return column.tolist()
    return column.astype(object).where(column.notna(), None).tolist()


def _frame_from_columns(
    columns: Mapping[str, Sequence[Any] | pd.Series], dtypes: Mapping[str, str]
) -> pd.DataFrame:
    """Database values (or strings from a CSV) back to the schema's dtypes."""
    out: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        values = columns[name]
        if dtype == TIMESTAMP:
            out[name] = _to_local(pd.Series(values, dtype="str"))
        elif dtype == "boolean":
            out[name] = pd.Series(values, dtype="object").astype("boolean")
        elif dtype in {"str", "float64"}:
            out[name] = pd.Series(values, dtype=dtype)
        else:
            out[name] = pd.Series(values).astype(dtype)
    return pd.DataFrame(out)


def _arrow_type(dtype: str) -> pa.DataType:
    if dtype == "float64":
        return pa.float64()
    if dtype in {"int64", "Int64"}:
        return pa.int64()
    if dtype in {"bool", "boolean"}:
        return pa.bool_()
    return pa.large_string()


# --- the store ------------------------------------------------------------------------------


class Store:
    """The project's database (SQLite or PostgreSQL) behind one SQLAlchemy engine.

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
        self.chunk_rows = chunk_rows
        self._progress = progress or (lambda _step, _rows: None)
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        return cls(make_engine(url), **kwargs)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    # --- schema -----------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> None:
        """Upgrade to `revision` in one transaction; existing tables and rows are kept."""
        config = Config()
        config.set_main_option("script_location", str(resources.files("schemas") / "migrations"))
        with self._transaction() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)

    # --- raw records and watermarks ---------------------------------------------------------

    def store_batch(
        self,
        platform: str,
        year: int,
        records: pd.DataFrame,
        watermark: Mapping[str, Any],
    ) -> int:
        """Upsert a connector batch and its watermark in one transaction; returns rows upserted.

        Versions of one record in the batch collapse to the latest (D1 order). A stored row keeps
        its `first_seen_at`; a bare withdrawal flips `withdrawn` and keeps the stored values.
        """
        frame = conform(records)
        wrong = frame[(frame["platform"] != platform) | (frame["pull_year"] != year)]
        if len(wrong):
            raise ValueError(
                f"batch for {platform}/{year} holds {len(wrong)} rows of another partition"
            )
        stage = _latest_versions(frame)
        state = json.dumps(dict(watermark), ensure_ascii=False, sort_keys=True)
        with self._transaction() as conn:
            self._upsert_raw(conn, stage)
            self._progress("raw_record", len(stage))
            self._upsert(
                conn,
                "watermark",
                {
                    "platform": platform,
                    "year": year,
                    "state": state,
                    "updated_at": datetime.now(UTC),
                },
            )
            self._progress("watermark", 1)
        return len(stage)

    def _upsert_raw(self, conn: Connection, stage: pd.DataFrame) -> None:
        columns = list(FRAME_DTYPES["raw_record"])
        staging = "raw_record" + _STAGE_SUFFIX
        if self._postgres:
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS "
                f"SELECT *, false AS {_BARE} FROM raw_record WITH NO DATA"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE {staging} AS "
                f"SELECT *, false AS {_BARE} FROM raw_record WHERE false"
            )
        self._bulk_insert(
            conn, staging, stage, {**FRAME_DTYPES["raw_record"], _BARE: "bool"}, "raw_record:stage"
        )
        kept = ", ".join(f"{_quote(c)} = stored.{_quote(c)}" for c in _RAW_KEPT_ON_WITHDRAWAL)
        conn.exec_driver_sql(
            f"UPDATE {staging} SET {kept} FROM raw_record AS stored "
            f"WHERE {staging}.{_BARE} AND stored.record_key = {staging}.record_key"
        )
        updates = ", ".join(
            f"{_quote(c)} = excluded.{_quote(c)}"
            for c in columns
            if c not in {"record_key", "first_seen_at"}
        )
        conn.exec_driver_sql(
            f"INSERT INTO raw_record ({_column_list(columns)}) "
            f"SELECT {_column_list(columns)} FROM {staging} WHERE true "
            f"ON CONFLICT (record_key) DO UPDATE SET {updates}"
        )
        conn.exec_driver_sql(f"DROP TABLE {staging}")

    def watermark(self, platform: str, year: int) -> dict[str, Any] | None:
        """The state the last committed batch of this partition left, or None."""
        table = TABLES["watermark"]
        with self.engine.connect() as conn:
            state = conn.execute(
                table.select()
                .with_only_columns(table.c.state)
                .where(table.c.platform == platform, table.c.year == year)
            ).scalar_one_or_none()
        return None if state is None else json.loads(state)

    def known_keys(self, platform: str, year: int) -> frozenset[str]:
        """Source keys stored for a partition and not withdrawn (a snapshot family's baseline)."""
        table = TABLES["raw_record"]
        query = (
            table.select()
            .with_only_columns(table.c.source_key)
            .where(
                table.c.platform == platform,
                table.c.pull_year == year,
                table.c.withdrawn.is_(False),
            )
        )
        with self.engine.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def raw_records(self, platforms: Collection[str] | None = None) -> pd.DataFrame:
        """Every stored record (of `platforms`, if given): raw schema + key and sighting times."""
        return self._read("raw_record", None if platforms is None else ("platform", platforms))

    # --- outputs ----------------------------------------------------------------------------

    def replace_outputs(
        self,
        completion: pd.DataFrame,
        hours_bank: pd.DataFrame,
        name_conflicts: pd.DataFrame,
        *,
        people: Collection[str] | None = None,
    ) -> None:
        """Replace the ledger, the bank and the name conflicts in one transaction.

        With `people`, only their rows are replaced, plus the ledger rows whose `record_key`
        the new ledger holds (the affected records quarantined without an ID number). Every
        row given must then belong to those people or lack an ID number.
        """
        frames = {
            "completion": completion.assign(pull_year=completion.get("pull_year", pd.NA)),
            "hours_bank": hours_bank,
            "name_conflict": name_conflicts[["id_number", "names"]],
        }
        if people is not None:
            _check_people(frames, frozenset(people))
        with self._transaction() as conn:
            if people is None:
                self._clear(conn, frames)
            else:
                self._delete_people(conn, frozenset(people), frames["completion"]["record_key"])
            for name, frame in frames.items():
                ordered = frame.sort_values(list(PRIMARY_KEYS[name]), kind="stable")
                self._bulk_insert(conn, name, ordered, FRAME_DTYPES[name], name)

    def _clear(self, conn: Connection, names: Iterable[str]) -> None:
        """Empty tables inside the transaction (PostgreSQL TRUNCATE is transactional too)."""
        if self._postgres:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(names)}")
            return
        for name in names:
            conn.exec_driver_sql(f"DELETE FROM {name}")

    def _delete_people(self, conn: Connection, people: frozenset[str], keys: pd.Series) -> None:
        self._stage_keys(conn, "people_stage", "id_number", pd.Series(sorted(people), dtype="str"))
        self._stage_keys(conn, "keys_stage", "record_key", keys)
        in_people = "id_number IN (SELECT id_number FROM people_stage)"
        conn.exec_driver_sql(
            f"DELETE FROM completion WHERE {in_people} "
            "OR record_key IN (SELECT record_key FROM keys_stage)"
        )
        conn.exec_driver_sql(f"DELETE FROM hours_bank WHERE {in_people}")
        conn.exec_driver_sql(f"DELETE FROM name_conflict WHERE {in_people}")
        conn.exec_driver_sql("DROP TABLE people_stage")
        conn.exec_driver_sql("DROP TABLE keys_stage")

    def _stage_keys(self, conn: Connection, name: str, column: str, values: pd.Series) -> None:
        suffix = " ON COMMIT DROP" if self._postgres else ""
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({column} TEXT PRIMARY KEY){suffix}")
        frame = pd.DataFrame({column: values.drop_duplicates()})
        self._bulk_insert(conn, name, frame, {column: "str"}, name)

    def append_reconciliation(
        self, run_id: str, run_at: datetime | pd.Timestamp, counts: pd.DataFrame
    ) -> None:
        """Store a run's D4 counts (platform, year, raw, …); a repeated run_id replaces its rows."""
        frame = counts.assign(run_id=run_id, run_at=pd.Timestamp(run_at))
        with self._transaction() as conn:
            conn.execute(
                TABLES["reconciliation"].delete().where(TABLES["reconciliation"].c.run_id == run_id)
            )
            self._bulk_insert(
                conn, "reconciliation", frame, FRAME_DTYPES["reconciliation"], "reconciliation"
            )

    def record_run(
        self,
        run_id: str,
        *,
        started_at: datetime,
        finished_at: datetime | None,
        years: Sequence[int],
        platforms: Sequence[str],
        status: str,
        counts: Mapping[str, Any],
    ) -> None:
        """Insert or update an operator's one-line summary of a sync run."""
        with self._transaction() as conn:
            self._upsert(
                conn,
                "sync_run",
                {
                    "run_id": run_id,
                    "started_at": started_at,
                    "finished_at": finished_at,
                    "years": ",".join(str(y) for y in years),
                    "platforms": ",".join(platforms),
                    "status": status,
                    "counts": json.dumps(dict(counts), ensure_ascii=False, sort_keys=True),
                },
            )

    def read_table(self, name: str) -> pd.DataFrame:
        """A whole table in its frame dtypes, ordered by primary key."""
        if name not in FRAME_DTYPES:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(FRAME_DTYPES)}")
        return self._read(name, None)

    # --- bulk IO ----------------------------------------------------------------------------

    def _upsert(self, conn: Connection, name: str, row: Mapping[str, Any]) -> None:
        table = TABLES[name]
        insert = (postgresql.insert if self._postgres else sqlite.insert)(table).values(**row)
        keys = PRIMARY_KEYS[name]
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=list(keys),
                set_={c: insert.excluded[c] for c in row if c not in keys},
            )
        )

    def _bulk_insert(
        self,
        conn: Connection,
        table: str,
        frame: pd.DataFrame,
        dtypes: Mapping[str, str],
        step: str,
    ) -> None:
        """Append `frame` to `table` in chunks, reporting each chunk to the progress hook."""
        values = _prepare(frame, dtypes)
        columns = _column_list(dtypes)
        raw = conn.connection.driver_connection
        if self._postgres:
            arrow = pa.Table.from_pandas(values, preserve_index=False)
            options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy,
            ):
                for start in range(0, len(values), self.chunk_rows):
                    buffer = io.BytesIO()
                    pacsv.write_csv(arrow.slice(start, self.chunk_rows), buffer, options)
                    copy.write(buffer.getvalue())
                    self._progress(step, min(start + self.chunk_rows, len(values)))
            return
        placeholders = ", ".join("?" * len(dtypes))
        statement = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
        cursor = raw.cursor()
        for start in range(0, len(values), self.chunk_rows):
            chunk = values.iloc[start : start + self.chunk_rows]
            cursor.executemany(
                statement, zip(*(_python_values(chunk[c]) for c in dtypes), strict=True)
            )
            self._progress(step, start + len(chunk))

    def _read(self, name: str, where: tuple[str, Collection[str]] | None) -> pd.DataFrame:
        dtypes = FRAME_DTYPES[name]
        order = _column_list(PRIMARY_KEYS[name])
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            if self._postgres:
                return _read_postgres(raw, name, dtypes, where, order)
            sql = f"SELECT {_column_list(dtypes)} FROM {name}"
            params: list[str] = []
            if where is not None:
                params = list(where[1])
                sql += f" WHERE {_quote(where[0])} IN ({', '.join('?' * len(params))})"
            rows = raw.execute(f"{sql} ORDER BY {order}", params).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(dtypes)
        return _frame_from_columns(dict(zip(dtypes, columns, strict=True)), dtypes)


def _read_postgres(
    raw: Any,
    name: str,
    dtypes: Mapping[str, str],
    where: tuple[str, Collection[str]] | None,
    order: str,
) -> pd.DataFrame:
    """COPY the rows out as CSV and parse them with pyarrow (quoted "" is text, bare is NULL)."""
    from psycopg import sql as pgsql

    selected = ", ".join(
        _PG_TIME.format(_quote(c)) if t == TIMESTAMP else _quote(c) for c, t in dtypes.items()
    )
    query = pgsql.SQL(f"SELECT {selected} FROM {name}")
    if where is not None:
        query += pgsql.SQL(" WHERE {} = ANY({})").format(
            pgsql.Identifier(where[0]), pgsql.Literal(list(where[1]))
        )
    query += pgsql.SQL(f" ORDER BY {order}")
    with (
        raw.cursor() as cursor,
        cursor.copy(pgsql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)) as copy,
    ):
        data = b"".join(bytes(block) for block in copy)
    if not data:
        return _frame_from_columns({c: [] for c in dtypes}, dtypes)
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=list(dtypes)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={
                c: pa.large_string() if t == TIMESTAMP else _arrow_type(t)
                for c, t in dtypes.items()
            },
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    columns = {c: table.column(c).to_pandas(types_mapper=_TEXT_TYPES.get) for c in dtypes}
    return _frame_from_columns(columns, dtypes)


def _latest_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per record_key: the latest version (D1), with first/last sighting and bare flag."""
    keyed = frame.assign(record_key=record_key(frame["platform"], frame["source_key"]))
    ordered = keyed.sort_values(
        ["record_key", "updated_at", "pulled_at"], na_position="first", kind="stable"
    )
    bare = ordered["withdrawn"] & ordered[list(_RAW_DATA_COLUMNS)].isna().all(axis=1)
    if bare.any():
        earlier = ordered.groupby("record_key")[list(_RAW_DATA_COLUMNS)].ffill()
        ordered.loc[bare, list(_RAW_DATA_COLUMNS)] = earlier.loc[bare]
        bare = ordered["withdrawn"] & ordered[list(_RAW_DATA_COLUMNS)].isna().all(axis=1)
    seen = ordered.groupby("record_key")["pulled_at"]
    latest = ordered.assign(
        first_seen_at=seen.transform("min"),
        last_seen_at=seen.transform("max"),
        **{_BARE: bare},
    ).drop_duplicates("record_key", keep="last")
    return latest.reset_index(drop=True)


def _check_people(frames: Mapping[str, pd.DataFrame], people: frozenset[str]) -> None:
    for name, frame in frames.items():
        ids = frame["id_number"]
        outside = ids.notna() & ~ids.isin(people)
        if outside.any():
            raise ValueError(
                f"partial replace: {name} holds {int(outside.sum())} rows of people not in `people`"
            )

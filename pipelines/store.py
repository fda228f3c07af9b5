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
from dataclasses import dataclass
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
from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.shards import Shard, id_buckets, person_buckets
from schemas.ledger import STATES
from schemas.raw import RAW_DTYPES, TIMESTAMP, TZ, conform, record_key
from schemas.tables import FRAME_DTYPES, PRIMARY_KEYS, TABLES

DEFAULT_CHUNK_ROWS = 100_000
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 64 * 1024
NUL_REPLACEMENT = "\ufffd"

Progress = Callable[[str, int], None]
"""Called with a step name and the rows written so far, inside the open transaction."""

_WRITE = "xueshi_write"
_MIGRATION_LOCK = 0x78756573  # "xues": PostgreSQL advisory lock key held while migrating
_STAGE_SUFFIX = "_stage"
_BARE = "_bare"
# Raw columns a bare withdrawal (a row gone from a full snapshot) leaves null.
_RAW_DATA_COLUMNS: tuple[str, ...] = tuple(
    c
    for c, t in RAW_DTYPES.items()
    if c not in {"platform", "source_key", "withdrawn", "pulled_at", "pull_year"} and t != "bool"
)
# What a record says: a new value in one of these is a change the ledger must fold in.
_RAW_CONTENT: tuple[str, ...] = tuple(
    c for c in RAW_DTYPES if c not in {"platform", "source_key", "pulled_at", "payload"}
)
_RAW_KEPT_ON_WITHDRAWAL: tuple[str, ...] = tuple(
    c for c in FRAME_DTYPES["raw_record"] if c not in {"record_key", "withdrawn", "last_seen_at"}
)
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default "str"
_TEXT_TYPES = {pa.string(): _TEXT, pa.large_string(): _TEXT}
_OUTPUT_YEARS = "substr(name, 1, 8) = 'outputs:'"
"""`pipeline_state` rows of output years (not `LIKE`: psycopg reads `%` as a placeholder)."""
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

    Arrow's cast writes `YYYY-MM-DD HH:MM:SS.ffffff`: nine times faster than numpy's
    `datetime_as_string`, two orders of magnitude faster than `dt.strftime`.
    """
    utc = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = pc.cast(pa.array(utc, mask=np.isnat(utc)), pa.string())
    joined = pc.binary_join_element_wise(pc.utf8_replace_slice(text, 10, 11, "T"), "Z", "")
    return joined.to_pandas(types_mapper=_TEXT_TYPES.get).set_axis(values.index)


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
    """A column as DBAPI parameters: Python scalars, None for null (Arrow's `to_pylist`: twice
    as fast as masking an object array)."""
    if column.dtype == "bool" or column.dtype == "int64":
        return column.tolist()
    return pa.array(column, from_pandas=True).to_pylist()


def _frame_from_columns(
    columns: Mapping[str, Sequence[Any] | pa.Array], dtypes: Mapping[str, str]
) -> pd.DataFrame:
    """Database values (Python values from SQLite, text as UTF-8 bytes; arrow arrays from
    PostgreSQL's CSV) back to the schema's dtypes. Text and timestamps go through arrow:
    building them from Python objects with pandas costs several times more at a million rows."""
    out: dict[str, Any] = {}
    for name, dtype in dtypes.items():
        values = columns[name]
        if dtype == TIMESTAMP:
            out[name] = _local_times(_text_array(values))
        elif dtype == "str":
            out[name] = _text_array(values).to_pandas(types_mapper=_TEXT_TYPES.get)
        elif dtype == "boolean":
            out[name] = pd.Series(_objects(values), dtype="object").astype("boolean")
        elif dtype == "float64":
            out[name] = pd.Series(_objects(values), dtype="float64")
        else:
            out[name] = pd.Series(_objects(values)).astype(dtype)
    return pd.DataFrame(out)


def _text_array(values: Sequence[Any] | pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values
    return pa.array(values, type=pa.large_string())


def _objects(values: Sequence[Any] | pa.Array) -> Sequence[Any]:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values.to_pandas()
    return values


def _local_times(text: pa.Array) -> pd.Series:
    """Stored UTC ISO text (`…T…Z`) to the frames' Asia/Shanghai timestamps."""
    utc = text.cast(pa.timestamp("us", tz="UTC"))
    return pd.Series(utc.to_pandas()).dt.tz_convert(TZ).astype(TIMESTAMP)


def _arrow_type(dtype: str) -> pa.DataType:
    if dtype == "float64":
        return pa.float64()
    if dtype in {"int64", "Int64"}:
        return pa.int64()
    if dtype in {"bool", "boolean"}:
        return pa.bool_()
    return pa.large_string()


@dataclass(frozen=True)
class LedgerState:
    """The outputs hold every batch up to `batch`, computed by rules with `fingerprint`."""

    batch: int
    fingerprint: str


@dataclass(frozen=True)
class Scope:
    """What a partial replace rewrites: ledger rows by record key, hours-bank rows by person
    and year (`id_number`, `year`), name conflicts by person. Rows given must lie inside it."""

    records: Collection[str]
    person_years: pd.DataFrame
    people: Collection[str]


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
            if self._postgres:  # steps in parallel processes all migrate when they start
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
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
        stage["person_bucket"] = person_buckets(stage["raw_id"], stage["record_key"])
        state = json.dumps(dict(watermark), ensure_ascii=False, sort_keys=True)
        with self._transaction() as conn:
            batch = conn.exec_driver_sql(
                "UPDATE pipeline_state SET seq = seq + 1 WHERE name = 'raw' RETURNING seq"
            ).scalar_one()
            self._upsert_raw(conn, stage, batch)
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

    def _upsert_raw(self, conn: Connection, stage: pd.DataFrame, batch: int) -> None:
        """Upsert the batch's rows. Every row written gets the batch's number as
        `seen_batch`, and as `batch_seq` only when its content changed: a platform that sends
        a whole year again every night changes nothing for the ledger (the row lock on the
        counter makes numbers follow commit order on PostgreSQL too).

        PostgreSQL copies into a staging table first (COPY is its fast path), or straight into
        the table on a partition's first load (`_copied_new`); SQLite upserts straight from
        `executemany` unless a bare withdrawal needs the stored values first.
        """
        columns = list(FRAME_DTYPES["raw_record"])
        distinct = "IS DISTINCT FROM" if self._postgres else "IS NOT"
        changed = " OR ".join(
            f"raw_record.{_quote(c)} {distinct} excluded.{_quote(c)}" for c in _RAW_CONTENT
        )
        updates = ", ".join(
            f"{_quote(c)} = excluded.{_quote(c)}"
            for c in [*columns, "seen_batch"]
            if c not in {"record_key", "first_seen_at"}
        )
        updates += (
            f", batch_seq = CASE WHEN {changed} THEN {int(batch)} ELSE raw_record.batch_seq END"
        )
        upsert = f"ON CONFLICT (record_key) DO UPDATE SET {updates}"
        numbers = {"batch_seq": int(batch), "seen_batch": int(batch)}
        if not self._postgres and not stage[_BARE].any():
            self._bulk_insert(
                conn,
                "raw_record",
                stage,
                FRAME_DTYPES["raw_record"],
                "raw_record:rows",
                constants=numbers,
                suffix=upsert,
            )
            return
        if self._postgres and not stage[_BARE].any() and self._copied_new(conn, stage, numbers):
            return
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
            conn, staging, stage, {**FRAME_DTYPES["raw_record"], _BARE: "bool"}, "raw_record:rows"
        )
        kept = ", ".join(f"{_quote(c)} = stored.{_quote(c)}" for c in _RAW_KEPT_ON_WITHDRAWAL)
        conn.exec_driver_sql(
            f"UPDATE {staging} SET {kept} FROM raw_record AS stored "
            f"WHERE {staging}.{_BARE} AND stored.record_key = {staging}.record_key"
        )
        conn.exec_driver_sql(
            f"INSERT INTO raw_record ({_column_list([*columns, *numbers])}) "
            f"SELECT {_column_list(columns)}, {int(batch)}, {int(batch)} FROM {staging} "
            f"WHERE true {upsert}"
        )
        conn.exec_driver_sql(f"DROP TABLE {staging}")

    def _copied_new(
        self, conn: Connection, stage: pd.DataFrame, numbers: Mapping[str, int]
    ) -> bool:
        """On a partition's first load, COPY the rows straight into `raw_record`: no staging
        table and no upsert (a fifth less time per batch, measured). Under a savepoint: a key
        another partition stored already (a record seen in two windows) rolls it back, and the
        caller upserts as usual."""
        if stage.empty:
            return True
        partition = {
            "platform": str(stage["platform"].iloc[0]),
            "year": int(stage["pull_year"].iloc[0]),
        }
        stored = conn.execute(
            text(
                "SELECT 1 FROM raw_record WHERE platform = :platform AND pull_year = :year LIMIT 1"
            ),
            partition,
        ).first()
        if stored is not None:
            return False
        dtypes = {**FRAME_DTYPES["raw_record"], **dict.fromkeys(numbers, "int64")}
        try:
            with conn.begin_nested():
                self._bulk_insert(
                    conn, "raw_record", stage.assign(**numbers), dtypes, "raw_record:rows"
                )
        except UniqueViolation:
            return False
        return True

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

    def raw_records(
        self,
        platforms: Collection[str] | None = None,
        *,
        keys: Collection[str] | None = None,
        batches: tuple[int, int] | None = None,
        shard: Shard | None = None,
        payload: bool = True,
    ) -> pd.DataFrame:
        """Stored records (of `platforms`, with `keys`, stored by batches `first < n <= last`,
        of the people of `shard`): raw schema + key, sighting times and bucket. `payload=False`
        leaves the bulky audit JSON null: the store keeps one version per key, so the rules
        never need it to break a tie."""
        where = [] if platforms is None else [_in("platform", platforms)]
        if batches is not None:
            where.append(f"batch_seq > {int(batches[0])} AND batch_seq <= {int(batches[1])}")
        if shard is not None:
            where.append(_in_shard(shard))
        columns = [c for c in FRAME_DTYPES["raw_record"] if payload or c != "payload"]
        frame = self._read(
            "raw_record",
            columns=columns,
            where=where,
            keys=None if keys is None else {"record_key": keys},
        )
        if payload:
            return frame
        return frame.assign(payload=pd.Series(np.nan, index=frame.index, dtype="str"))[
            list(FRAME_DTYPES["raw_record"])
        ]

    def changed_count(self, batches: tuple[int, int]) -> int:
        """Records whose content batches `first < n <= last` changed."""
        sql = (
            "SELECT COUNT(*) FROM raw_record "
            f"WHERE batch_seq > {int(batches[0])} AND batch_seq <= {int(batches[1])}"
        )
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar_one())

    def last_batch(self) -> int:
        """The number of the last batch stored (0 before any)."""
        sql = "SELECT seq FROM pipeline_state WHERE name = 'raw'"
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar_one())

    def ledger_state(self) -> LedgerState | None:
        """The batch the outputs were last brought up to, and the rules that computed them."""
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT seq, fingerprint FROM pipeline_state WHERE name = 'ledger'"
            ).one_or_none()
        return None if row is None else LedgerState(int(row[0]), str(row[1]))

    def ledger_rows(
        self,
        columns: Sequence[str],
        *,
        keys: Collection[str] | None = None,
        people: Collection[str] | None = None,
        reasons: Collection[str] | None = None,
    ) -> pd.DataFrame:
        """`columns` of the ledger rows with one of `keys`, of one of `people`, or with one of
        `reasons` (whichever are given; a row matching several comes once)."""
        columns = list(dict.fromkeys(["record_key", *columns]))
        reads = [
            {"keys": {"record_key": keys}} if keys is not None else None,
            {"keys": {"id_number": people}} if people is not None else None,
            {"where": [_in("reason", reasons)]} if reasons is not None else None,
        ]
        found = [self._read("completion", columns=columns, **r) for r in reads if r is not None]
        if not found:
            raise ValueError("ledger_rows needs keys, people or reasons")
        return pd.concat(found, ignore_index=True).drop_duplicates("record_key", ignore_index=True)

    def file_sizes(self, year: int, unknown: str) -> dict[str, int]:
        """Hours rows per provincial file of `year`: credited ledger rows with hours, by their
        person-year's employer (`unknown` for none, or for a row with no bank row, which the
        files refuse)."""
        sql = (
            f"SELECT COALESCE(b.employer, {_literal(unknown)}) AS file, COUNT(*) "
            "FROM completion AS c LEFT JOIN hours_bank AS b "
            "ON b.id_number = c.id_number AND b.year = c.credited_year "
            f"WHERE {_file_rows(year)} GROUP BY 1"
        )
        with self.engine.connect() as conn:
            return {str(f): int(n) for f, n in conn.exec_driver_sql(sql).all()}

    def file_rows(
        self, year: int, files: Collection[str], unknown: str, columns: Collection[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The credited ledger rows with hours (their `columns`) and the bank rows of the
        person-years whose employer (or `unknown`) is one of `files`."""
        employer = f"COALESCE(employer, {_literal(unknown)}) IN (SELECT value FROM files_stage)"
        theirs = f"SELECT id_number FROM hours_bank WHERE year = {int(year)} AND {employer}"
        people = f"id_number IN ({theirs})"
        if unknown in files:  # rows without a bank row land in `unknown`'s file, which refuses them
            people += (
                f" OR id_number NOT IN (SELECT id_number FROM hours_bank WHERE year = {int(year)})"
            )
        credited = self._read(
            "completion",
            columns=columns,
            where=(_file_rows(year), people),
            staged={"files_stage": files},
        )
        bank = self._read(
            "hours_bank",
            columns=("id_number", "year", "name", "employer"),
            where=(f"year = {int(year)}", employer),
            staged={"files_stage": files},
        )
        return credited, bank

    def state_counts(self) -> pd.DataFrame:
        """D4 over the whole ledger: records per platform, year and state (the SQL twin of
        `pipelines.rules.bank.reconciliation_counts`, so a partial recompute still counts all)."""
        states = list(STATES)
        sums = ", ".join(
            f"SUM(CASE WHEN state = {_literal(s)} THEN 1 ELSE 0 END) AS {s}" for s in states
        )
        year = "COALESCE(credited_year, pull_year)"
        sql = (
            f"SELECT platform, {year} AS year, COUNT(*) AS raw, {sums} FROM completion "
            f"GROUP BY platform, {year} ORDER BY platform, {year}"
        )
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        frame = pd.DataFrame(rows, columns=["platform", "year", "raw", *states])
        return frame.astype({"platform": "str"} | dict.fromkeys(["year", "raw", *states], "int64"))

    def live_raw_counts(self) -> pd.Series:
        """Stored records not withdrawn, per platform: what the ledger must hold (D4)."""
        sql = "SELECT platform, COUNT(*) FROM raw_record WHERE NOT withdrawn GROUP BY platform"
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        return pd.Series({str(p): int(n) for p, n in rows}, dtype="int64")

    # --- outputs ----------------------------------------------------------------------------

    def replace_outputs(
        self,
        completion: pd.DataFrame,
        hours_bank: pd.DataFrame,
        name_conflicts: pd.DataFrame,
        *,
        scope: Scope | Shard | None = None,
        state: LedgerState | None = None,
        sightings: tuple[int, int] | None = None,
    ) -> None:
        """Replace the ledger, the bank and the name conflicts in one transaction: all of them,
        the rows of one shard's people, or what a `Scope` names. Ledger rows carry their
        record's `person_bucket`; bank and conflict rows get their ID number's. `state` is
        recorded in the same transaction, and the ledger rows of records seen again by batches
        `first < n <= last` (`sightings`) get their new `last_seen_at`.

        A shard's write leaves the years' write numbers to `finish_full`: every shard would
        otherwise update the same few rows, and on PostgreSQL wait for each other's commits.
        """
        frames = {
            "completion": completion.assign(pull_year=completion.get("pull_year", pd.NA)),
            "hours_bank": hours_bank.assign(person_bucket=id_buckets(hours_bank["id_number"])),
            "name_conflict": name_conflicts[["id_number", "names"]].assign(
                person_bucket=id_buckets(name_conflicts["id_number"])
            ),
        }
        if isinstance(scope, Scope):
            _check_scope(frames, scope)
        elif isinstance(scope, Shard):
            _check_shard(frames, scope)
        with self._transaction() as conn:
            if scope is None:
                self._clear(conn, frames)
            elif isinstance(scope, Shard):
                for name in frames:
                    conn.exec_driver_sql(f"DELETE FROM {name} WHERE {_in_shard(scope)}")
            else:
                self._delete_scope(conn, scope)
            for name, frame in frames.items():
                ordered = frame.sort_values(list(PRIMARY_KEYS[name]), kind="stable")
                self._bulk_insert(conn, name, ordered, FRAME_DTYPES[name], name)
            if not isinstance(scope, Shard):
                years = {int(y) for y in frames["hours_bank"]["year"]}
                years |= {int(y) for y in frames["completion"]["credited_year"].dropna()}
                if scope is not None:
                    years |= {int(y) for y in scope.person_years["year"]}
                self._mark_years(conn, years, every=scope is None)
            if sightings is not None:
                conn.exec_driver_sql(
                    "UPDATE completion SET last_seen_at = seen.last_seen_at "
                    "FROM raw_record AS seen WHERE seen.record_key = completion.record_key "
                    f"AND seen.seen_batch > {int(sightings[0])} "
                    f"AND seen.seen_batch <= {int(sightings[1])}"
                )
            if state is not None:
                self._record_state(conn, state)

    def finish_full(self, state: LedgerState) -> None:
        """After every shard of a full refresh: record `state` and give every year a new
        write number, in one transaction (until then the next run starts over)."""
        with self._transaction() as conn:
            found = conn.exec_driver_sql(
                "SELECT DISTINCT year FROM hours_bank UNION "
                "SELECT DISTINCT credited_year FROM completion WHERE credited_year IS NOT NULL"
            ).scalars()
            self._mark_years(conn, {int(y) for y in found}, every=True)
            self._record_state(conn, state)

    def _record_state(self, conn: Connection, state: LedgerState) -> None:
        self._upsert(
            conn,
            "pipeline_state",
            {
                "name": "ledger",
                "seq": state.batch,
                "fingerprint": state.fingerprint,
                "updated_at": datetime.now(UTC),
            },
        )

    def _mark_years(self, conn: Connection, years: Collection[int], *, every: bool) -> None:
        """Number this write of the outputs and give that number to the years it changed
        (`every` year that ever had outputs, on a full replace). The provincial files read a
        year only when its number moved (`output_years`)."""
        write = int(
            conn.exec_driver_sql(
                "UPDATE pipeline_state SET seq = seq + 1 WHERE name = 'outputs' RETURNING seq"
            ).scalar_one()
        )
        if every:
            conn.exec_driver_sql(f"UPDATE pipeline_state SET seq = {write} WHERE {_OUTPUT_YEARS}")
        for year in sorted(years):
            self._upsert(conn, "pipeline_state", {"name": f"outputs:{year}", "seq": write})

    def put_shard_result(self, run_id: str, shard: int, summary: Mapping[str, Any]) -> None:
        """Keep what a shard step computed for the steps after it (they may run elsewhere)."""
        text_ = json.dumps(dict(summary), ensure_ascii=False, sort_keys=True)
        with self._transaction() as conn:
            self._upsert(
                conn, "shard_result", {"run_id": run_id, "shard": int(shard), "summary": text_}
            )

    def shard_results(self, run_id: str) -> list[dict[str, Any]]:
        """The summaries the shard steps of `run_id` kept, in shard order."""
        rows = self.read_table("shard_result", where=(f"run_id = {_literal(run_id)}",))
        return [json.loads(s) for s in rows["summary"]]

    def output_years(self) -> dict[int, int]:
        """Each year that has had outputs, with the number of the write that last changed it."""
        sql = f"SELECT name, seq FROM pipeline_state WHERE {_OUTPUT_YEARS}"
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        return {int(name.split(":", 1)[1]): int(seq) for name, seq in rows}

    def _clear(self, conn: Connection, names: Iterable[str]) -> None:
        """Empty tables inside the transaction (PostgreSQL TRUNCATE is transactional too)."""
        if self._postgres:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(names)}")
            return
        for name in names:
            conn.exec_driver_sql(f"DELETE FROM {name}")

    def _delete_scope(self, conn: Connection, scope: Scope) -> None:
        keys = pd.DataFrame({"record_key": pd.Series(list(scope.records), dtype="str")})
        years = scope.person_years[["id_number", "year"]].astype({"id_number": "str"})
        people = pd.DataFrame({"id_number": pd.Series(list(scope.people), dtype="str")})
        self._stage(conn, "keys_stage", keys, {"record_key": "str"})
        self._stage(conn, "years_stage", years, {"id_number": "str", "year": "int64"})
        self._stage(conn, "people_stage", people, {"id_number": "str"})
        conn.exec_driver_sql(
            "DELETE FROM completion WHERE record_key IN (SELECT record_key FROM keys_stage)"
        )
        conn.exec_driver_sql(
            "DELETE FROM hours_bank WHERE EXISTS (SELECT 1 FROM years_stage AS s "
            "WHERE s.id_number = hours_bank.id_number AND s.year = hours_bank.year)"
        )
        conn.exec_driver_sql(
            "DELETE FROM name_conflict WHERE id_number IN (SELECT id_number FROM people_stage)"
        )
        for name in ("keys_stage", "years_stage", "people_stage"):
            conn.exec_driver_sql(f"DROP TABLE {name}")

    def _stage_keys(self, conn: Connection, name: str, column: str, values: pd.Series) -> None:
        self._stage(conn, name, pd.DataFrame({column: values}), {column: "str"})

    def _stage(
        self, conn: Connection, name: str, frame: pd.DataFrame, dtypes: Mapping[str, str]
    ) -> None:
        """A temporary table of distinct rows (its primary key: all columns), for joins."""
        types = {"str": "TEXT", "int64": "BIGINT"}
        columns = ", ".join(f"{_quote(c)} {types[t]}" for c, t in dtypes.items())
        suffix = " ON COMMIT DROP" if self._postgres else ""
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {name} ({columns}, PRIMARY KEY ({_column_list(dtypes)})){suffix}"
        )
        self._bulk_insert(conn, name, frame.drop_duplicates(), dtypes, name)

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
        *,
        constants: Mapping[str, int] | None = None,
        suffix: str = "",
    ) -> None:
        """Append `frame` to `table` in chunks, reporting each chunk to the progress hook.

        SQLite only: `constants` are further columns with one value for every row, `suffix`
        ends the statement (an `ON CONFLICT` clause).
        """
        values = _prepare(frame, dtypes)
        columns = _column_list(dtypes)
        raw = conn.connection.driver_connection
        if self._postgres and (constants or suffix):
            raise ValueError("constants and suffix are for SQLite's executemany only")
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
        constants = constants or {}
        placeholders = ", ".join(["?"] * len(dtypes) + [str(int(v)) for v in constants.values()])
        names = _column_list([*dtypes, *constants])
        statement = f"INSERT INTO {table} ({names}) VALUES ({placeholders}) {suffix}"
        cursor = raw.cursor()
        for start in range(0, len(values), self.chunk_rows):
            chunk = values.iloc[start : start + self.chunk_rows]
            cursor.executemany(
                statement, zip(*(_python_values(chunk[c]) for c in dtypes), strict=True)
            )
            self._progress(step, start + len(chunk))

    def _read(
        self,
        name: str,
        *,
        columns: Collection[str] | None = None,
        where: Sequence[str] = (),
        keys: Mapping[str, Collection[str]] | None = None,
        staged: Mapping[str, Collection[str]] | None = None,
    ) -> pd.DataFrame:
        """Rows of `name` (its `columns`, in schema order) matching every SQL condition of
        `where`, and, for each column of `keys`, one of its values (staged in a temporary table,
        so a million keys cost one join, not a million parameters); ordered by primary key.
        `staged` names further temporary tables (one column, `value`) that `where` may use."""
        dtypes = {
            c: t for c, t in FRAME_DTYPES[name].items() if columns is None or c in set(columns)
        }
        conditions = list(where)
        with self.engine.connect() as conn, conn.begin():
            for stage, values in (staged or {}).items():
                self._stage_keys(conn, stage, "value", pd.Series(list(values), dtype="str"))
            for column, values in (keys or {}).items():
                stage = f"{column}_read_stage"
                self._stage_keys(conn, stage, column, pd.Series(list(values), dtype="str"))
                conditions.append(f"{_quote(column)} IN (SELECT {_quote(column)} FROM {stage})")
            sql = f"FROM {name}"
            if conditions:
                sql += " WHERE " + " AND ".join(f"({c})" for c in conditions)
            sql += f" ORDER BY {_column_list(PRIMARY_KEYS[name])}"
            raw = conn.connection.driver_connection
            if self._postgres:
                return _read_postgres(raw, sql, dtypes)
            frames = [_frame_from_columns(dict.fromkeys(dtypes, ()), dtypes)]
            # Text as bytes, checked as UTF-8 by Arrow: 20% faster than a str per cell.
            factory, raw.text_factory = raw.text_factory, bytes
            try:
                cursor = raw.execute(f"SELECT {_column_list(dtypes)} {sql}")
                while rows := cursor.fetchmany(self.chunk_rows):
                    columns = dict(zip(dtypes, zip(*rows, strict=True), strict=True))
                    frames.append(_frame_from_columns(columns, dtypes))
            finally:
                raw.text_factory = factory
            for stage in [*(f"{c}_read_stage" for c in keys or {}), *(staged or {})]:
                conn.exec_driver_sql(f"DROP TABLE {stage}")
        return pd.concat(frames[1:], ignore_index=True) if len(frames) > 2 else frames[-1]


def _literal(value: str) -> str:
    """A quoted SQL string literal (for the few constants the store puts into conditions)."""
    return "'" + value.replace("'", "''") + "'"


def _file_rows(year: int) -> str:
    return f"credited_year = {int(year)} AND state = 'credited' AND hours_credited > 0"


def _in_shard(shard: Shard) -> str:
    return f"person_bucket BETWEEN {int(shard.first)} AND {int(shard.last)}"


def _in(column: str, values: Collection[str]) -> str:
    return f"{_quote(column)} IN ({', '.join(_literal(v) for v in values) or 'NULL'})"


def _read_postgres(raw: Any, sql: str, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """COPY the rows out as CSV and parse them with pyarrow (quoted "" is text, bare is NULL)."""
    selected = ", ".join(
        _PG_TIME.format(_quote(c)) if t == TIMESTAMP else _quote(c) for c, t in dtypes.items()
    )
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY (SELECT {selected} {sql}) TO STDOUT (FORMAT csv)") as copy,
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
    return _frame_from_columns({c: table.column(c) for c in dtypes}, dtypes)


def _latest_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per record_key: the latest version (D1), with first/last sighting and bare flag."""
    keyed = frame.assign(record_key=record_key(frame["platform"], frame["source_key"]))
    if not keyed["record_key"].duplicated().any():  # one version each: nothing to choose
        return keyed.assign(
            first_seen_at=keyed["pulled_at"],
            last_seen_at=keyed["pulled_at"],
            **{_BARE: keyed["withdrawn"] & keyed[list(_RAW_DATA_COLUMNS)].isna().all(axis=1)},
        ).reset_index(drop=True)
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


def _check_shard(frames: Mapping[str, pd.DataFrame], shard: Shard) -> None:
    for name, frame in frames.items():
        outside = ~frame["person_bucket"].between(shard.first, shard.last)
        if outside.any():
            raise ValueError(f"shard {shard.label}: {int(outside.sum())} {name} rows outside it")


def _check_scope(frames: Mapping[str, pd.DataFrame], scope: Scope) -> None:
    def person_year(frame: pd.DataFrame) -> pd.Series:
        return frame["id_number"].astype("str") + "|" + frame["year"].astype("str")

    outside = {
        "completion": ~frames["completion"]["record_key"].isin(pd.Index(list(scope.records))),
        "hours_bank": ~person_year(frames["hours_bank"]).isin(person_year(scope.person_years)),
        "name_conflict": ~frames["name_conflict"]["id_number"].isin(pd.Index(list(scope.people))),
    }
    for name, rows in outside.items():
        if rows.any():
            raise ValueError(f"partial replace: {int(rows.sum())} {name} rows outside its scope")

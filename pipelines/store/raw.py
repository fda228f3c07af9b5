"""Raw records, their sightings and the partitions' watermarks.

One row per platform record (`record_key`): its newest version in D1's order, which the upsert
keeps in SQL too, so a stale version pulled late updates the sighting and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, inspect, text

from pipelines.rules.versions import VERSION_ORDER, order_versions
from pipelines.shards import Shard, person_buckets
from pipelines.store.base import in_shard, is_in, literal
from pipelines.store.dialect import Dialect, column_list, quote
from pipelines.store.state import PipelineState
from schemas.raw import RAW_DTYPES, conform, record_key
from schemas.tables import FRAME_DTYPES, TABLES

_STAGE = "raw_record_stage"
_BARE = "_bare"
_SIGHTING = {
    c: FRAME_DTYPES["raw_record"][c]
    for c in ("record_key", "updated_at", "pulled_at", "last_seen_at")
}
"""What `_sighting` needs of a row the upsert left alone."""
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
# What the newest version decides; the sighting columns follow every pull.
_RAW_VERSIONED: tuple[str, ...] = tuple(
    c
    for c in FRAME_DTYPES["raw_record"]
    if c not in {"record_key", "first_seen_at", "last_seen_at"}
)


class RawRecords(PipelineState):
    def store_batch(
        self,
        platform: str,
        year: int,
        records: pd.DataFrame,
        watermark: Mapping[str, Any],
    ) -> int:
        """Upsert a connector batch and its watermark in one transaction; returns rows upserted.

        Versions of one record collapse to the newest (D1), in the batch and against the stored
        row. A stored row keeps its `first_seen_at`; a bare withdrawal flips `withdrawn` and
        keeps the stored values.
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
        with self.transaction() as conn:
            batch = self._next_batch(conn)
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
        """Upsert the batch's rows: new rows and newer versions that say something new are
        written whole, with the batch's number as `batch_seq` when their content changed (a
        platform that sends a whole year again every night changes nothing for the ledger);
        every other row seen again gets only its sighting (`_sighting`), which spares the
        engine rewriting each index of an unchanged row. The sightings go by key lookups: on
        SQLite an `UPDATE … FROM` a stage filled with the four columns it needs (its planner
        probes the key); on PostgreSQL a second upsert from the stage (its planner would
        hash-join a whole `raw_record` for an `UPDATE … FROM`).

        Rows go straight in where the engine upserts in bulk (SQLite) or on a partition's first
        load (`_first_load`); otherwise, or when a bare withdrawal needs the stored values
        first, through a staging table.
        """
        dtypes = FRAME_DTYPES["raw_record"]
        numbers = {"batch_seq": int(batch), "seen_batch": int(batch)}
        upsert = _upsert_clause(self.dialect, batch)
        if not stage[_BARE].any():
            if self.dialect.upsert_in_bulk:
                written = self._bulk_insert(
                    conn,
                    "raw_record",
                    stage,
                    dtypes,
                    "raw_record:rows",
                    constants=numbers,
                    suffix=upsert,
                )
                if written < len(stage):
                    self.dialect.empty_copy(conn, _STAGE, "raw_record", _BARE)
                    self._bulk_insert(conn, _STAGE, stage, _SIGHTING, "raw_record:sightings")
                    conn.exec_driver_sql(
                        f"UPDATE raw_record SET {_sighting(self.dialect, batch, 'seen')} "
                        f"FROM {_STAGE} AS seen WHERE seen.record_key = raw_record.record_key "
                        f"AND raw_record.seen_batch <> {int(batch)}"
                    )
                    conn.exec_driver_sql(f"DROP TABLE {_STAGE}")
                return
            if self._first_load(conn, stage, numbers):
                return
        self.dialect.empty_copy(conn, _STAGE, "raw_record", _BARE)
        self._bulk_insert(conn, _STAGE, stage, {**dtypes, _BARE: "bool"}, "raw_record:rows")
        kept = ", ".join(f"{quote(c)} = stored.{quote(c)}" for c in _RAW_KEPT_ON_WITHDRAWAL)
        conn.exec_driver_sql(
            f"UPDATE {_STAGE} SET {kept} FROM raw_record AS stored "
            f"WHERE {_STAGE}.{_BARE} AND stored.record_key = {_STAGE}.record_key"
        )
        insert = (
            f"INSERT INTO raw_record ({column_list([*dtypes, *numbers])}) "
            f"SELECT {column_list(dtypes)}, {int(batch)}, {int(batch)} FROM {_STAGE} WHERE true "
        )
        written = conn.exec_driver_sql(insert + upsert).rowcount
        if written < len(stage):
            conn.exec_driver_sql(
                f"{insert} ON CONFLICT (record_key) DO UPDATE SET "
                f"{_sighting(self.dialect, batch, 'excluded')} "
                f"WHERE raw_record.seen_batch <> {int(batch)}"
            )
        conn.exec_driver_sql(f"DROP TABLE {_STAGE}")

    def _first_load(
        self, conn: Connection, stage: pd.DataFrame, numbers: Mapping[str, int]
    ) -> bool:
        """On a partition's first load, insert the rows with no upsert (on PostgreSQL, COPY
        straight into `raw_record`, skipping the staging table). Under a savepoint:
        a key another partition stored already (a record seen in two windows) rolls it back,
        and the caller upserts as usual."""
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
        try:
            with conn.begin_nested():
                self._bulk_insert(
                    conn,
                    "raw_record",
                    stage,
                    FRAME_DTYPES["raw_record"],
                    "raw_record:rows",
                    constants=numbers,
                )
        except self.dialect.unique_violation:
            return False
        return True

    def _after_upgrade(self, conn: Connection) -> None:
        """Place the records revision 0003 found stored (marked -1) with their person."""
        super()._after_upgrade(conn)
        if "person_bucket" not in {c["name"] for c in inspect(conn).get_columns("raw_record")}:
            return  # migrated to a revision before 0003
        rows = conn.exec_driver_sql(
            "SELECT record_key, raw_id FROM raw_record WHERE person_bucket < 0"
        ).all()
        for start in range(0, len(rows), self.chunk_rows):
            chunk = pd.DataFrame(
                rows[start : start + self.chunk_rows], columns=["record_key", "raw_id"]
            ).astype("str")
            buckets = person_buckets(chunk["raw_id"], chunk["record_key"])
            conn.execute(
                text("UPDATE raw_record SET person_bucket = :bucket WHERE record_key = :key"),
                [
                    {"bucket": int(b), "key": k}
                    for b, k in zip(buckets, chunk["record_key"], strict=True)
                ],
            )

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
        """Source keys stored for a partition and not withdrawn (a snapshot family's baseline),
        read from an index alone."""
        keys = self._read(
            "raw_record", columns=["source_key"], where=[_live(platform, year)], ordered=False
        )
        return frozenset(keys["source_key"])

    def live_count(self, platform: str, year: int) -> int:
        """How many records a partition holds, not withdrawn (counted from an index alone)."""
        with self.engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    f"SELECT COUNT(*) FROM raw_record WHERE {_live(platform, year)}"
                ).scalar_one()
            )

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
        where = [] if platforms is None else [is_in("platform", platforms)]
        if batches is not None:
            where.append(f"batch_seq > {int(batches[0])} AND batch_seq <= {int(batches[1])}")
        if shard is not None:
            where.append(in_shard(shard))
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

    def live_raw_counts(self) -> pd.Series:
        """Stored records not withdrawn, per platform: what the ledger must hold (D4)."""
        sql = "SELECT platform, COUNT(*) FROM raw_record WHERE NOT withdrawn GROUP BY platform"
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        return pd.Series({str(p): int(n) for p, n in rows}, dtype="int64")


def _live(platform: str, year: int) -> str:
    """SQL: the live records of a partition (the index on platform, year, withdrawn serves)."""
    return f"platform = {literal(platform)} AND pull_year = {int(year)} AND NOT withdrawn"


def _newer(dialect: Dialect) -> str:
    """SQL: the incoming row (`excluded`) is not older than the stored one in D1's order
    (`VERSION_ORDER`, a missing value first); a full tie is the same version seen again."""
    expression = "TRUE"
    for column in reversed(VERSION_ORDER):
        new, old = f"excluded.{quote(column)}", f"raw_record.{quote(column)}"
        collate = dialect.code_point_order if RAW_DTYPES[column] == "str" else ""
        expression = (
            f"CASE WHEN {new} {dialect.is_same} {old} THEN {expression} "
            f"WHEN {old} IS NULL THEN TRUE WHEN {new} IS NULL THEN FALSE "
            f"ELSE {new}{collate} > {old}{collate} END"
        )
    return expression


def _sighting(dialect: Dialect, batch: int, seen: str) -> str:
    """`SET` list of a row the upsert left alone (a version seen again, or a stale one), from
    the incoming row `seen`: `last_seen_at`, `seen_batch`, and the later `pulled_at` when it is
    the same version (D1 orders by `updated_at` first, so only then is the pull the newer)."""
    stored = "raw_record"
    return (
        f"last_seen_at = {seen}.last_seen_at, seen_batch = {int(batch)}, pulled_at = CASE "
        f"WHEN {stored}.updated_at {dialect.is_same} {seen}.updated_at "
        f"AND ({stored}.pulled_at IS NULL OR {seen}.pulled_at > {stored}.pulled_at) "
        f"THEN {seen}.pulled_at ELSE {stored}.pulled_at END"
    )


def _upsert_clause(dialect: Dialect, batch: int) -> str:
    """`ON CONFLICT` for raw rows: a newer version that says something new (or arrives in a
    new payload) replaces the stored row, `batch_seq` moved only for a new content; any other
    row is left to `_sighting`."""
    changed = " OR ".join(
        f"raw_record.{quote(c)} {dialect.is_distinct} excluded.{quote(c)}" for c in _RAW_CONTENT
    )
    updates = [f"{quote(c)} = excluded.{quote(c)}" for c in _RAW_VERSIONED]
    updates += [
        "last_seen_at = excluded.last_seen_at",
        f"seen_batch = {int(batch)}",
        f"batch_seq = CASE WHEN {changed} THEN {int(batch)} ELSE raw_record.batch_seq END",
    ]
    payload = f"raw_record.payload {dialect.is_distinct} excluded.payload"
    return (
        f"ON CONFLICT (record_key) DO UPDATE SET {', '.join(updates)} "
        f"WHERE ({_newer(dialect)}) AND ({changed} OR {payload})"
    )


def _latest_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per record_key: its newest version in D1's order (`order_versions`), withdrawn
    ones kept, with first/last sighting and the bare flag; a bare withdrawal takes the data of
    the version before it in the batch."""
    keyed = frame.assign(record_key=record_key(frame["platform"], frame["source_key"]))
    if not keyed["record_key"].duplicated().any():  # one version each: nothing to choose
        return keyed.assign(
            first_seen_at=keyed["pulled_at"],
            last_seen_at=keyed["pulled_at"],
            **{_BARE: _bare(keyed)},
        ).reset_index(drop=True)
    versions = order_versions(frame, keyed["record_key"])
    ordered = keyed.iloc[versions.order].reset_index(drop=True)
    bare = _bare(ordered)
    if bare.any():
        earlier = ordered.groupby(versions.group)[list(_RAW_DATA_COLUMNS)].ffill()
        ordered.loc[bare, list(_RAW_DATA_COLUMNS)] = earlier.loc[bare]
        bare = _bare(ordered)
    seen = ordered.groupby(versions.group)["pulled_at"]
    latest = ordered.assign(
        first_seen_at=seen.transform("min"),
        last_seen_at=seen.transform("max"),
        **{_BARE: bare},
    )[versions.newest]
    return latest.reset_index(drop=True)


def _bare(frame: pd.DataFrame) -> pd.Series:
    """Withdrawals that carry nothing but their identity (a row gone from a full snapshot)."""
    return frame["withdrawn"] & frame[list(_RAW_DATA_COLUMNS)].isna().all(axis=1)

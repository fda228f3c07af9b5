"""The ledger (`completion`), the hours bank, name conflicts and the D4 reconciliation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, inspect

from pipelines.shards import Shard, id_buckets
from pipelines.store.base import in_shard, literal
from pipelines.store.state import LedgerState, PipelineState
from schemas.ledger import STATES, TIME_BOUND_REASON
from schemas.tables import FRAME_DTYPES, LEDGER_COUNT_KEYS, PRIMARY_KEYS, TABLES, WRITE_ORDER

OUTPUT_TABLES = ("completion", "hours_bank", "name_conflict")
"""What a run writes (`replace_outputs`); `ledger_count` follows the ledger."""
_SCOPE_STAGES = ("keys_stage", "years_stage", "people_stage")
_IN_SCOPE = "record_key IN (SELECT record_key FROM keys_stage)"
_UNIT = ("city", "employer", "reason")
"""What `ledger_count` keeps of a quarantined row besides its year, platform, state, month."""


@dataclass(frozen=True)
class Scope:
    """What a partial replace rewrites: ledger rows by record key, hours-bank rows by person
    and year (`id_number`, `year`), name conflicts by person. Rows given must lie inside it."""

    records: Collection[str]
    person_years: pd.DataFrame
    people: Collection[str]


@dataclass(frozen=True)
class YearCounts:
    """A year's ledger rows counted: per platform and state; quarantined per city, employer
    and reason; per platform and completion month (Asia/Shanghai). Each has `records`."""

    states: pd.DataFrame
    quarantined: pd.DataFrame
    months: pd.DataFrame


class Ledger(PipelineState):
    def ledger_rows(
        self,
        columns: Sequence[str],
        *,
        keys: Collection[str] | None = None,
        people: Collection[str] | None = None,
        time_bound: bool = False,
    ) -> pd.DataFrame:
        """`columns` of the ledger rows with one of `keys`, of one of `people`, or quarantined
        for their date (`time_bound`, R12: from a partial index, not a scan), whichever are
        given; a row matching several comes once."""
        columns = list(dict.fromkeys(["record_key", *columns]))
        reads = [
            {"keys": {"record_key": keys}} if keys is not None else None,
            {"keys": {"id_number": people}} if people is not None else None,
            {"where": [f"reason = {literal(TIME_BOUND_REASON)}"]} if time_bound else None,
        ]
        found = [self._read("completion", columns=columns, **r) for r in reads if r is not None]
        if not found:
            raise ValueError("ledger_rows needs keys, people or reasons")
        return pd.concat(found, ignore_index=True).drop_duplicates("record_key", ignore_index=True)

    def bank_rows(self, columns: Sequence[str], people: Collection[str]) -> pd.DataFrame:
        """`columns` of the hours-bank rows of `people` (every year)."""
        return self._read("hours_bank", columns=columns, keys={"id_number": people})

    def file_sizes(
        self, year: int, unknown: str, files: Collection[str] | None = None
    ) -> dict[str, int]:
        """Hours rows per provincial file of `year` (or of those of `files` that have rows):
        credited ledger rows with hours, by their person-year's employer (`unknown` for none,
        or for a row with no bank row, which the files refuse). Rows are counted per person
        from an index alone, then each person's count goes to their employer's file."""
        per_person = (
            "SELECT id_number, COUNT(*) AS n FROM completion WHERE {rows} GROUP BY id_number"
        )
        if files is None:
            sql = (
                f"SELECT COALESCE(b.employer, {literal(unknown)}) AS file, SUM(c.n) "
                f"FROM ({per_person.format(rows=_file_rows(year))}) AS c LEFT JOIN hours_bank AS b "
                f"ON b.id_number = c.id_number AND b.year = {int(year)} GROUP BY 1"
            )
            with self.engine.connect() as conn:
                return {str(f): int(n) for f, n in conn.exec_driver_sql(sql).all()}
        with self.engine.connect() as conn, conn.begin():
            self._stage_keys(conn, "files_stage", "value", files)
            people = (
                f"{_file_rows(year)} AND id_number IN ({_people_of_files(year, unknown in files)})"
            )
            sql = (
                f"SELECT COALESCE(b.employer, {literal(unknown)}) AS file, SUM(c.n) "
                f"FROM ({per_person.format(rows=people)}) AS c JOIN hours_bank AS b "
                f"ON b.id_number = c.id_number AND b.year = {int(year)} "
                f"WHERE {_of_files('b', unknown in files)} GROUP BY 1"
            )
            sizes = {str(f): int(n) for f, n in conn.exec_driver_sql(sql).all()}
            if unknown in files:
                orphans = conn.exec_driver_sql(
                    f"SELECT COUNT(*) FROM completion AS c WHERE {_file_rows(year, 'c')} "
                    "AND NOT EXISTS (SELECT 1 FROM hours_bank AS b "
                    "WHERE b.id_number = c.id_number AND b.year = c.credited_year)"
                ).scalar_one()
                if orphans:
                    sizes[unknown] = sizes.get(unknown, 0) + int(orphans)
            conn.exec_driver_sql("DROP TABLE files_stage")
        return sizes

    def file_rows(
        self, year: int, files: Collection[str], unknown: str, columns: Collection[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The credited ledger rows with hours (their `columns`) and the bank rows of the
        person-years whose employer (or `unknown`) is one of `files`, in no order (the files
        sort their rows)."""
        employer = _of_files("hours_bank", unknown in files)
        people = f"id_number IN ({_people_of_files(year, unknown in files)})"
        if unknown in files:  # rows without a bank row land in `unknown`'s file, which refuses them
            people += (
                f" OR id_number NOT IN (SELECT id_number FROM hours_bank WHERE year = {int(year)})"
            )
        credited = self._read(
            "completion",
            columns=columns,
            where=(_file_rows(year), people),
            staged={"files_stage": files},
            ordered=False,
        )
        bank = self._read(
            "hours_bank",
            columns=("id_number", "year", "name", "employer"),
            where=(f"year = {int(year)}", employer),
            staged={"files_stage": files},
        )
        return credited, bank

    def year_counts(self, year: int) -> YearCounts:
        """The ledger rows of `year` (credited year, else pull year, as D4) counted: read from
        `ledger_count`, so a report reads a few thousand counts, not a year of rows."""
        rows = self._read("ledger_count", where=(f"year = {int(year)}", "records > 0"))
        found = rows.assign(
            month=rows["month"].astype("Int64").replace(0, pd.NA),
            **{c: rows[c].replace("", pd.NA) for c in _UNIT},
        )
        quarantined = found.loc[found["state"].eq("quarantined")]
        return YearCounts(
            states=_summed(found, ["platform", "state"]),
            quarantined=_summed(quarantined, list(_UNIT)),
            months=_summed(found.dropna(subset=["month"]), ["platform", "month"]).astype(
                {"month": "int64"}
            ),
        )

    def latest_bank_year(self) -> int | None:
        """The last year the hours bank has rows for."""
        with self.engine.connect() as conn:
            year = conn.exec_driver_sql("SELECT MAX(year) FROM hours_bank").scalar_one()
        return None if year is None else int(year)

    def state_counts(self) -> pd.DataFrame:
        """D4 over the whole ledger: records per platform, year and state (the SQL twin of
        `pipelines.rules.bank.reconciliation_counts`), summed from `ledger_count`, so it costs
        the same after a night at any size of the history."""
        states = list(STATES)
        sums = ", ".join(
            f"SUM(CASE WHEN state = {literal(s)} THEN records ELSE 0 END) AS {s}" for s in states
        )
        sql = (
            f"SELECT platform, year, SUM(records) AS raw, {sums} FROM ledger_count "
            "GROUP BY platform, year HAVING SUM(records) > 0 ORDER BY platform, year"
        )
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        frame = pd.DataFrame(rows, columns=["platform", "year", "raw", *states])
        return frame.astype({"platform": "str"} | dict.fromkeys(["year", "raw", *states], "int64"))

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
        what a `Scope` names, or one shard's people in the tables a full refresh fills
        (`begin_full`). Ledger rows carry their record's `person_bucket`; bank and conflict
        rows get their ID number's. `state` is recorded in the same transaction, and the
        ledger rows of records seen again by batches `first < n <= last` (`sightings`) get
        their new `last_seen_at`.

        A shard's write leaves the counts and the years' write numbers to `finish_full`: every
        shard would otherwise update the same few rows, and on PostgreSQL wait for each
        other's commits.
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
        with self.transaction() as conn:
            if isinstance(scope, Scope):
                self._replace_scope(conn, frames, scope)
            elif scope is None:
                self.dialect.clear(conn, [*frames, "ledger_count"])
                self._insert_outputs(conn, frames)
                self._count(conn, "TRUE", ())
            else:  # a step run again finds its shard's rows of the first try
                for name in frames:
                    conn.exec_driver_sql(f"DELETE FROM {_next(name)} WHERE {in_shard(scope)}")
                self._insert_outputs(conn, frames, into=_next)
            if scope is None:
                years = {int(y) for y in frames["hours_bank"]["year"]}
                years |= {int(y) for y in frames["completion"]["credited_year"].dropna()}
                self._mark_years(conn, years, every=True)
            if sightings is not None:
                conn.exec_driver_sql(
                    "UPDATE completion SET last_seen_at = seen.last_seen_at "
                    "FROM raw_record AS seen WHERE seen.record_key = completion.record_key "
                    f"AND seen.seen_batch > {int(sightings[0])} "
                    f"AND seen.seen_batch <= {int(sightings[1])}"
                )
            if state is not None:
                self._record_state(conn, state)

    def _insert_outputs(
        self,
        conn: Connection,
        frames: Mapping[str, pd.DataFrame],
        into: Callable[[str], str] = str,
    ) -> None:
        for name, frame in frames.items():
            order = WRITE_ORDER.get(name, PRIMARY_KEYS[name])
            ordered = frame.sort_values(list(order), kind="stable")
            self._bulk_insert(conn, into(name), ordered, FRAME_DTYPES[name], name)

    def begin_full(self) -> None:
        """Empty tables beside the outputs for a full refresh's shards to fill (each with an
        index on `person_bucket` alone, so a shard's rows are found again). Filling unindexed
        tables and indexing them once in `finish_full` costs a fraction of replacing every
        row in place through every index: at 1M records on PostgreSQL, 2.3 s to insert and
        3.8 s to index against about 6 s per shard of 250,000 rows."""
        with self.transaction() as conn:
            for name in OUTPUT_TABLES:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_next(name)}")
                self.dialect.create_unindexed(conn, _next(name), TABLES[name])
                conn.exec_driver_sql(
                    f"CREATE INDEX {_next(name)}_bucket ON {_next(name)} (person_bucket)"
                )

    def finish_full(self, state: LedgerState) -> None:
        """After every shard of a full refresh, in one transaction: the filled tables replace
        the outputs and get their keys and indexes, the ledger is counted again, every year
        gets a new write number and `state` is recorded (until then the outputs are the old
        ones, and the next run starts over). The tables' statistics are taken again, so that
        the nights' planners pick the narrow indexes (a person's rows, not a year's)."""
        with self.transaction() as conn:
            for name in OUTPUT_TABLES:
                table = TABLES[name]
                conn.exec_driver_sql(f"DROP TABLE {name}")
                conn.exec_driver_sql(f"ALTER TABLE {_next(name)} RENAME TO {name}")
                conn.exec_driver_sql(f"DROP INDEX {_next(name)}_bucket")
                self.dialect.add_primary_key(conn, table)
                for index in sorted(table.indexes, key=lambda i: str(i.name)):
                    index.create(conn)
            self.dialect.clear(conn, ["ledger_count"])
            self._count(conn, "TRUE", ())
            found = conn.exec_driver_sql(
                "SELECT DISTINCT year FROM hours_bank UNION "
                "SELECT DISTINCT credited_year FROM completion WHERE credited_year IS NOT NULL"
            ).scalars()
            self._mark_years(conn, {int(y) for y in found}, every=True)
            self._record_state(conn, state)
            conn.exec_driver_sql("ANALYZE")

    def _replace_scope(
        self, conn: Connection, frames: Mapping[str, pd.DataFrame], scope: Scope
    ) -> None:
        """Replace what the scope names, and number the write for the years and employer-year
        files its rows fell in before the delete or fall in after the insert."""
        self._stage_scope(conn, scope)
        files = self._scope_files(conn)
        before = self._counted(conn, _IN_SCOPE)
        self._delete_scope(conn)
        self._insert_outputs(conn, frames)
        self._count(conn, _IN_SCOPE, before)
        files |= self._scope_files(conn)
        for name in _SCOPE_STAGES:
            conn.exec_driver_sql(f"DROP TABLE {name}")
        years = {int(y) for y in scope.person_years["year"]} | {y for y, _ in files}
        self._mark_years(conn, years, every=False, files=files, people=scope.people)

    def _stage_scope(self, conn: Connection, scope: Scope) -> None:
        keys = pd.DataFrame({"record_key": pd.Series(list(scope.records), dtype="str")})
        years = scope.person_years[["id_number", "year"]].astype({"id_number": "str"})
        people = pd.DataFrame({"id_number": pd.Series(list(scope.people), dtype="str")})
        self._stage(conn, "keys_stage", keys, {"record_key": "str"})
        self._stage(conn, "years_stage", years, {"id_number": "str", "year": "int64"})
        self._stage(conn, "people_stage", people, {"id_number": "str"})

    def _scope_files(self, conn: Connection) -> set[tuple[int, str]]:
        """The employer-year files (`''`: no employer) that the staged scope's ledger and bank
        rows fall in now: asked before the delete and after the insert, what a partial replace
        changed."""
        rows = conn.exec_driver_sql(
            "SELECT c.credited_year, COALESCE(b.employer, '') FROM completion AS c "
            "LEFT JOIN hours_bank AS b ON b.id_number = c.id_number AND b.year = c.credited_year "
            "WHERE c.record_key IN (SELECT record_key FROM keys_stage) "
            "AND c.credited_year IS NOT NULL "
            "UNION SELECT b.year, COALESCE(b.employer, '') FROM hours_bank AS b "
            "JOIN years_stage AS s ON s.id_number = b.id_number AND s.year = b.year"
        ).all()
        return {(int(year), str(employer)) for year, employer in rows}

    def _counted(self, conn: Connection, where: str) -> list[tuple[Any, ...]]:
        """The ledger rows meeting `where` counted as `ledger_count` counts them."""
        month = self.dialect.local_month.format("completed_at")
        unit = ", ".join(
            f"CASE WHEN state = 'quarantined' THEN COALESCE({c}, '') ELSE '' END" for c in _UNIT
        )
        sql = (
            f"SELECT COALESCE(credited_year, pull_year), platform, state, COALESCE({month}, 0), "
            f"{unit}, COUNT(*) FROM completion WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6, 7"
        )
        return [tuple(row) for row in conn.exec_driver_sql(sql).all()]

    def _count(self, conn: Connection, where: str, before: Collection[tuple[Any, ...]]) -> None:
        """Move `ledger_count` by what the rows meeting `where` count now less what they
        counted `before` the write: as many groups as the written rows fall in (a few hundred
        for a night), whatever the ledger's size. Groups are moved in key order, and a group
        that falls to zero stays (the reads skip it). A full refresh's shards move nothing:
        `finish_full` counts the swapped-in ledger once."""
        delta: Counter[tuple[Any, ...]] = Counter()
        for *key, records in self._counted(conn, where):
            delta[tuple(key)] += int(records)
        for *key, records in before:
            delta[tuple(key)] -= int(records)
        rows = [
            dict(zip(LEDGER_COUNT_KEYS, key, strict=True)) | {"records": n}
            for key, n in sorted(delta.items())
            if n
        ]
        if not rows:
            return
        table = TABLES["ledger_count"]
        insert = self.dialect.insert(table)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=list(LEDGER_COUNT_KEYS),
                set_={"records": table.c.records + insert.excluded.records},
            ),
            rows,
        )

    def _after_upgrade(self, conn: Connection) -> None:
        """Count a ledger stored before `ledger_count` existed (revision 0009)."""
        super()._after_upgrade(conn)
        if "ledger_count" not in inspect(conn).get_table_names():
            return  # migrated to a revision before 0009
        counted = conn.exec_driver_sql("SELECT 1 FROM ledger_count LIMIT 1").first()
        stored = conn.exec_driver_sql("SELECT 1 FROM completion LIMIT 1").first()
        if counted is None and stored is not None:
            self._count(conn, "TRUE", ())

    def _delete_scope(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"DELETE FROM completion WHERE {_IN_SCOPE}")
        conn.exec_driver_sql(
            "DELETE FROM hours_bank WHERE EXISTS (SELECT 1 FROM years_stage AS s "
            "WHERE s.id_number = hours_bank.id_number AND s.year = hours_bank.year)"
        )
        conn.exec_driver_sql(
            "DELETE FROM name_conflict WHERE id_number IN (SELECT id_number FROM people_stage)"
        )

    def run_counts(self, run_id: str) -> pd.DataFrame | None:
        """The D4 counts a run stored (`append_reconciliation`), or None when it stored none."""
        rows = self._read("reconciliation", where=(f"run_id = {literal(run_id)}",))
        if rows.empty:
            return None
        return rows.drop(columns=["run_id", "run_at"]).reset_index(drop=True)

    def append_reconciliation(
        self, run_id: str, run_at: datetime | pd.Timestamp, counts: pd.DataFrame
    ) -> None:
        """Store a run's D4 counts (platform, year, raw, …); a repeated run_id replaces its rows."""
        frame = counts.assign(run_id=run_id, run_at=pd.Timestamp(run_at))
        with self.transaction() as conn:
            conn.execute(
                TABLES["reconciliation"].delete().where(TABLES["reconciliation"].c.run_id == run_id)
            )
            self._bulk_insert(
                conn, "reconciliation", frame, FRAME_DTYPES["reconciliation"], "reconciliation"
            )


def _next(name: str) -> str:
    """The table a full refresh fills in place of output table `name`."""
    return f"{name}_next"


def _summed(counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`records` summed per `keys` (a missing key is a group of its own)."""
    return counts.groupby(keys, dropna=False, sort=True)["records"].sum().reset_index()


def _file_rows(year: int, table: str = "completion") -> str:
    return (
        f"{table}.credited_year = {int(year)} AND {table}.state = 'credited' "
        f"AND {table}.hours_credited > 0"
    )


def _people_of_files(year: int, unknown: bool) -> str:
    """SQL: the ID numbers of the year's bank rows in `files_stage`'s files."""
    return (
        f"SELECT id_number FROM hours_bank WHERE year = {int(year)} "
        f"AND {_of_files('hours_bank', unknown)}"
    )


def _of_files(bank: str, unknown: bool) -> str:
    """SQL: the bank row's employer is one of `files_stage` (or missing, when the unknown
    employer's file is one of them), in a form an index on (year, employer) serves."""
    condition = f"{bank}.employer IN (SELECT value FROM files_stage)"
    return f"({condition} OR {bank}.employer IS NULL)" if unknown else condition


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

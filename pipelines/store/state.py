"""Pipeline state: which batch the outputs hold, the write number of each output year, and
what each shard step of a run computed."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from pipelines.store.base import Database, literal

_OUTPUT_YEARS = "substr(name, 1, 8) = 'outputs:'"
"""`pipeline_state` rows of output years (not `LIKE`: psycopg reads `%` as a placeholder)."""


@dataclass(frozen=True)
class LedgerState:
    """The outputs hold every batch up to `batch`, computed by rules with `fingerprint`."""

    batch: int
    fingerprint: str


class PipelineState(Database):
    def last_batch(self) -> int:
        """The number of the last batch stored (0 before any)."""
        return int(self._seq("raw") or 0)

    def _seq(self, name: str) -> int | None:
        """The number `pipeline_state` keeps under `name`, or None when it keeps none."""
        with self.engine.connect() as conn:
            seq = conn.exec_driver_sql(
                f"SELECT seq FROM pipeline_state WHERE name = {literal(name)}"
            ).scalar_one_or_none()
        return None if seq is None else int(seq)

    def ledger_state(self) -> LedgerState | None:
        """The batch the outputs were last brought up to, and the rules that computed them."""
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT seq, fingerprint FROM pipeline_state WHERE name = 'ledger'"
            ).one_or_none()
        return None if row is None else LedgerState(int(row[0]), str(row[1]))

    def output_years(self) -> dict[int, int]:
        """Each year that has had outputs, with the number of the write that last changed it."""
        sql = f"SELECT name, seq FROM pipeline_state WHERE {_OUTPUT_YEARS}"
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        return {int(name.split(":", 1)[1]): int(seq) for name, seq in rows}

    def put_shard_result(self, run_id: str, shard: int, summary: Mapping[str, Any]) -> None:
        """Keep what a shard step computed for the steps after it (they may run elsewhere)."""
        text = json.dumps(dict(summary), ensure_ascii=False, sort_keys=True)
        with self.transaction() as conn:
            self._upsert(
                conn, "shard_result", {"run_id": run_id, "shard": int(shard), "summary": text}
            )

    def shard_results(self, run_id: str) -> list[dict[str, Any]]:
        """The summaries the shard steps of `run_id` kept, in shard order."""
        rows = self.read_table("shard_result", where=(f"run_id = {literal(run_id)}",))
        return [json.loads(s) for s in rows["summary"]]

    def _next_batch(self, conn: Connection) -> int:
        """Number a raw batch (the row lock on the counter makes numbers follow commit order)."""
        return int(
            conn.exec_driver_sql(
                "UPDATE pipeline_state SET seq = seq + 1 WHERE name = 'raw' RETURNING seq"
            ).scalar_one()
        )

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

    def changed_files(self, year: int, since: int) -> set[str] | None:
        """Employers (`''`: none) whose file of `year` writes after `since` changed; None when
        a write after `since` replaced everything (every file must be compared)."""
        return self._changed_since("employer", "output_file", since, f"year = {int(year)}")

    def changed_people(self, since: int) -> set[str] | None:
        """ID numbers whose rows writes after `since` changed; None when a write after `since`
        replaced everything."""
        return self._changed_since("id_number", "changed_person", since)

    def _changed_since(
        self, column: str, table: str, since: int, where: str = "TRUE"
    ) -> set[str] | None:
        """`column` of the `table` rows that writes after `since` marked, or None when one of
        those writes replaced every output (or none was ever recorded)."""
        full = self._seq("outputs_full")
        if full is None or full > since:
            return None
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                f"SELECT {column} FROM {table} WHERE {where} AND seq > {int(since)}"
            ).scalars()
            return {str(value) for value in rows}

    def outputs_write(self) -> int:
        """The number of the last write of the outputs (0 before any)."""
        return int(self._seq("outputs") or 0)

    def _mark_years(
        self,
        conn: Connection,
        years: Collection[int],
        *,
        every: bool,
        files: Collection[tuple[int, str]] = (),
        people: Collection[str] = (),
    ) -> None:
        """Number this write of the outputs and give that number to the years it changed
        (`every` year that ever had outputs, on a full replace), to the employer-year `files`
        and to the `people` it changed. The provincial files read a year only when its number
        moved (`output_years`), and then only its changed files (`changed_files`); R3's
        verdicts are computed again for the changed people (`changed_people`)."""
        write = int(
            conn.exec_driver_sql(
                "UPDATE pipeline_state SET seq = seq + 1 WHERE name = 'outputs' RETURNING seq"
            ).scalar_one()
        )
        if every:
            conn.exec_driver_sql(f"UPDATE pipeline_state SET seq = {write} WHERE {_OUTPUT_YEARS}")
            self._upsert(conn, "pipeline_state", {"name": "outputs_full", "seq": write})
        self._upsert(
            conn, "pipeline_state", *({"name": f"outputs:{y}", "seq": write} for y in sorted(years))
        )
        self._upsert(
            conn,
            "output_file",
            *({"year": y, "employer": e, "seq": write} for y, e in sorted(files)),
        )
        self._upsert(
            conn, "changed_person", *({"id_number": p, "seq": write} for p in sorted(people))
        )

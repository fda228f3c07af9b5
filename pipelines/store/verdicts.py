"""R3's verdicts per person (`title_verdict`), kept so that a night recomputes only the people
it changed and counts the rest in SQL."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from pipelines.shards import Shard, id_buckets
from pipelines.store.base import in_shard
from pipelines.store.state import PipelineState
from schemas.tables import FRAME_DTYPES

_STATE = "title_verdicts"


class Verdicts(PipelineState):
    def verdicts_as_of(self) -> int | None:
        """The write of the outputs the verdicts reflect; None before any were computed."""
        return self._seq(_STATE)

    def replace_verdicts(
        self,
        verdicts: pd.DataFrame,
        scope: Shard | Collection[str],
        *,
        as_of: int | None = None,
    ) -> None:
        """Replace the verdicts of a shard's people or of the people named (one who has no
        verdict now loses the old one), in one transaction; with `as_of`, record the write of
        the outputs they reflect."""
        frame = verdicts.assign(person_bucket=id_buckets(verdicts["id_number"]))
        with self.transaction() as conn:
            if isinstance(scope, Shard):
                conn.exec_driver_sql(f"DELETE FROM title_verdict WHERE {in_shard(scope)}")
            else:
                self._stage_keys(conn, "people_stage", "id_number", scope)
                conn.exec_driver_sql(
                    "DELETE FROM title_verdict "
                    "WHERE id_number IN (SELECT id_number FROM people_stage)"
                )
                conn.exec_driver_sql("DROP TABLE people_stage")
            ordered = frame.sort_values("id_number", kind="stable")
            self._bulk_insert(
                conn, "title_verdict", ordered, FRAME_DTYPES["title_verdict"], "title_verdict"
            )
            if as_of is not None:
                self._upsert(conn, "pipeline_state", {"name": _STATE, "seq": as_of})

    def verdict_counts(self) -> pd.DataFrame:
        """People per employer type and verdict (`eligible`, `not eligible`, `unknown`)."""
        sql = (
            "SELECT employer_type, CASE WHEN eligible IS NULL THEN 'unknown' "
            "WHEN eligible THEN 'eligible' ELSE 'not eligible' END AS verdict, COUNT(*) "
            "FROM title_verdict GROUP BY 1, 2"
        )
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(sql).all()
        found = pd.DataFrame(rows, columns=["employer_type", "verdict", "people"])
        return (
            found.pivot_table(
                index="employer_type", columns="verdict", values="people", aggfunc="sum"
            )
            .fillna(0)
            .astype("int64")
            if len(found)
            else pd.DataFrame(dtype="int64")
        )

"""Person shards: a bucket on every record and output row, and the shard steps' results.

`person_bucket` (0–4095, `pipelines.shards`) places each record with its person, so that a
shard of people is one indexed range query. Records already stored are marked -1 here and get
their bucket from the store right after the upgrade, in the same transaction (the hash is the
pipeline's, and a migration imports nothing of it); the outputs get theirs from the next
refresh, which this revision makes a full one (it forgets the `ledger` state). The provincial
files read the ledger a year and a few employers at a time, by `credited_year`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("raw_record", "completion", "hours_bank", "name_conflict")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("person_bucket", sa.Integer(), nullable=False, server_default="0")
            )
        op.create_index(f"ix_{table}_person_bucket", table, ["person_bucket"])
    op.create_index("ix_completion_credited_year", "completion", ["credited_year"])
    op.create_table(
        "shard_result",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "shard", name=op.f("pk_shard_result")),
    )
    op.execute("UPDATE raw_record SET person_bucket = -1")
    op.execute("DELETE FROM pipeline_state WHERE name = 'ledger'")


def downgrade() -> None:
    op.drop_table("shard_result")
    op.drop_index("ix_completion_credited_year", "completion")
    for table in _TABLES:
        op.drop_index(f"ix_{table}_person_bucket", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("person_bucket")

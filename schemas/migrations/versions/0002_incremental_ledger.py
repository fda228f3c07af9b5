"""Incremental ledger: batch numbers on raw records and the pipeline's own counters.

`raw_record.batch_seq` is the number of the batch that last changed the row, `seen_batch` of
the one that last saw it;
`pipeline_state` holds the last number given out (`raw`), the last number folded into the
outputs (`ledger`, with the rules fingerprint those outputs were computed with), the number of
the last write of the outputs (`outputs`) and, per year, the write that last changed that year's
outputs (`outputs:<year>`, what the provincial files compare with). Rows stored before this
revision get 0 and no `ledger` row exists, so the first ledger run is a full one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from schemas.tables import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("raw_record") as batch:
        for name in ("batch_seq", "seen_batch"):
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index("ix_raw_record_batch_seq", "raw_record", ["batch_seq"])
    op.create_index("ix_raw_record_seen_batch", "raw_record", ["seen_batch"])
    op.create_table(
        "pipeline_state",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_state")),
    )
    op.execute("INSERT INTO pipeline_state (name, seq) VALUES ('raw', 0), ('outputs', 0)")


def downgrade() -> None:
    op.drop_table("pipeline_state")
    op.drop_index("ix_raw_record_seen_batch", "raw_record")
    op.drop_index("ix_raw_record_batch_seq", "raw_record")
    with op.batch_alter_table("raw_record") as batch:
        batch.drop_column("seen_batch")
        batch.drop_column("batch_seq")

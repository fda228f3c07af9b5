"""The ledger counted (`ledger_count`), kept by every write, so that D4 and the compliance
report read counts rather than the ledger; and a partial index on the ledger rows quarantined
for their date (R12), which every refresh reads again. The counts of a ledger already stored
are taken by the store right after the upgrade, in the same transaction (their month in
Asia/Shanghai is the store's SQL, one per engine).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = ("year", "platform", "state", "month", "city", "employer", "reason")
TIME_BOUND = sa.text("reason = 'out_of_range_date'")


def upgrade() -> None:
    op.create_table(
        "ledger_count",
        *(
            sa.Column(key, sa.Integer() if key in {"year", "month"} else sa.Text(), nullable=False)
            for key in KEYS
        ),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*KEYS, name=op.f("pk_ledger_count")),
    )
    op.create_index(
        "ix_completion_time_bound",
        "completion",
        ["reason"],
        sqlite_where=TIME_BOUND,
        postgresql_where=TIME_BOUND,
    )


def downgrade() -> None:
    op.drop_index("ix_completion_time_bound", "completion")
    op.drop_table("ledger_count")

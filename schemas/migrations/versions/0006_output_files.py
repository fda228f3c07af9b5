"""Which employer-year files each write of the outputs changed, so a night rewrites only those.

`output_file` (year, employer, seq): the last write that changed the rows of that year's file
for that employer (`''`: no employer). `pipeline_state` `outputs_full`: the last write that
replaced everything (every file to be compared); it starts at the current write, so the files
written before this revision are compared whole once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "output_file",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("employer", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("year", "employer", name=op.f("pk_output_file")),
    )
    op.execute(
        "INSERT INTO pipeline_state (name, seq) "
        "SELECT 'outputs_full', seq FROM pipeline_state WHERE name = 'outputs'"
    )


def downgrade() -> None:
    op.execute("DELETE FROM pipeline_state WHERE name = 'outputs_full'")
    op.drop_table("output_file")

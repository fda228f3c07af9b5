"""Indexes that let a night read what it changed: a year's files of some employers
(`hours_bank` by year and employer, then the ledger by year and person, which replaces the
index by year alone) and the live records per platform, counted from an index alone
(`raw_record` by platform and withdrawal). Statistics are taken once here, and after
every full refresh, so that the planner prefers a person's rows to a year's.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_hours_bank_year_employer", "hours_bank", ["year", "employer"])
    op.drop_index("ix_completion_credited_year", "completion")
    op.create_index(
        "ix_completion_credited_year_id_number", "completion", ["credited_year", "id_number"]
    )
    op.create_index("ix_raw_record_platform_withdrawn", "raw_record", ["platform", "withdrawn"])
    op.execute("ANALYZE")


def downgrade() -> None:
    op.drop_index("ix_raw_record_platform_withdrawn", "raw_record")
    op.drop_index("ix_completion_credited_year_id_number", "completion")
    op.create_index("ix_completion_credited_year", "completion", ["credited_year"])
    op.drop_index("ix_hours_bank_year_employer", "hours_bank")

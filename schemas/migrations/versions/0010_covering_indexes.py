"""Counts read from indexes alone. A partition's live records counted, and its live keys read:
the index on `raw_record (platform, pull_year)` becomes one on `(platform, pull_year,
withdrawn, source_key)`, so a night no longer reads a year of rows to learn how many it holds.
The rows of a year's files counted per person: the ledger's index on `(credited_year,
id_number)` gains `state` and `hours_credited`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERING = ["platform", "pull_year", "withdrawn", "source_key"]
YEAR_PERSON = ["credited_year", "id_number"]
FILE_ROWS = [*YEAR_PERSON, "state", "hours_credited"]


def upgrade() -> None:
    op.drop_index("ix_raw_record_platform_pull_year", "raw_record")
    op.create_index("ix_raw_record_platform_pull_year_withdrawn_source_key", "raw_record", COVERING)
    op.drop_index("ix_completion_credited_year_id_number", "completion")
    op.create_index(
        "ix_completion_credited_year_id_number_state_hours_credited", "completion", FILE_ROWS
    )


def downgrade() -> None:
    op.drop_index("ix_completion_credited_year_id_number_state_hours_credited", "completion")
    op.create_index("ix_completion_credited_year_id_number", "completion", YEAR_PERSON)
    op.drop_index("ix_raw_record_platform_pull_year_withdrawn_source_key", "raw_record")
    op.create_index("ix_raw_record_platform_pull_year", "raw_record", ["platform", "pull_year"])
